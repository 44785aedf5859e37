"""``minirai check``: the stubs are NOT DONE, the solutions PASS, and typical mistakes FAIL with the
right one-line diagnosis (at least two per task)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minirai import grading
from minirai.cli import main

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = (ROOT / "tutorials" / "solutions.py").read_text()

# (task id, a wrong version of its function, what the one-line diagnosis must say)
MISTAKES = [
    ("1", "def linear_forward(x, W, b):\n    return x @ W", "y at index (0, 0): expected"),
    ("1", "def linear_forward(x, W, b):\n    return -(x @ W + b)", "the sign is flipped"),
    ("2", "def linear_backward(x, W, dy):\n    return dy @ W.T, dy.T @ x, dy.sum(axis=0)",
     "dW: shape (4, 3), expected (3, 4): it is transposed"),
    ("2", "def linear_backward(x, W, dy):\n    return x.T @ dy, dy @ W.T, dy.sum(axis=0)",
     "you returned dW in its place (the parts are swapped"),
    ("2", "def linear_backward(x, W, dy):\n    return dy @ W.T, x.T @ dy, dy.mean(axis=0)",
     "db at index (0,): expected"),
    ("2", "def linear_backward(x, W, dy):\n    return dy @ W.T, x.T @ dy / len(x), dy.sum(axis=0)",
     "a factor N missing, or 1/N too many (yours is 0.2 × the expected)"),
    ("3", "def sigmoid_backward(y, dy):\n    return dy * (1 - y)", "dx at index"),
    ("3", "def sigmoid_backward(y, dy):\n    return -dy * y * (1 - y)", "the sign is flipped"),
    ("4", "def tanh_backward(y, dy):\n    return dy * (1 - y)", "dx at index"),
    ("4", "def tanh_backward(y, dy):\n    return 2 * dy * (1 - y * y)",
     "a factor 2 too many, or 1/2 missing (yours is 2 × the expected)"),
    ("4", "def tanh_backward(y, dy):\n    y *= y\n    return dy * (1 - y)", "changed its input y in place"),
    ("5", "def bce_backward(p, t):\n    return (p - t) / (p * (1 - p))",
     "a factor M too many, or 1/M missing (yours is 8 × the expected)"),
    ("5", "def bce_backward(p, t):\n    return (t - p) / (p * (1 - p)) / p.size", "the sign is flipped"),
    ("6", textwrap.dedent("""\
        def numerical_gradient(f, x, eps=1e-5):
            import numpy as np
            grad = np.zeros(x.shape)
            for i in np.ndindex(*x.shape):
                original = x[i]
                x[i] = original + eps
                plus = f()
                x[i] = original - eps
                grad[i] = (plus - f()) / (2 * eps)
            return grad"""), "x is not as you found it"),
    ("6", textwrap.dedent("""\
        def numerical_gradient(f, x, eps=1e-5):
            import numpy as np
            grad = np.zeros(x.shape)
            for i in np.ndindex(*x.shape):
                original = x[i]
                base = f()
                x[i] = original + eps
                grad[i] = (f() - base) / eps
                x[i] = original
            return grad"""), "one-sided differences"),
    ("6", textwrap.dedent("""\
        def numerical_gradient(f, x, eps=1e-5):
            import numpy as np
            grad = np.zeros(x.shape)
            for i in np.ndindex(*x.shape):
                original = x[i]
                x[i] = original + eps
                plus = f()
                x[i] = original - eps
                minus = f()
                x[i] = original
                grad[i] = (plus - minus) / eps
            return grad"""), "a factor 2 too many"),
    ("7", textwrap.dedent("""\
        def softmax_cross_entropy(logits, labels):
            import numpy as np
            e = np.exp(logits)
            s = e / e.sum(axis=1, keepdims=True)
            n = len(labels)
            d = s.copy()
            d[np.arange(n), labels] -= 1
            return float(-np.log(s[np.arange(n), labels]).mean()), d / n"""), "exp overflowed"),
    ("7", textwrap.dedent("""\
        def softmax_cross_entropy(logits, labels):
            import numpy as np
            z = logits - logits.max(axis=1, keepdims=True)
            log_s = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            n = len(labels)
            d = np.exp(log_s)
            d[np.arange(n), labels] -= 1
            return float(-log_s[np.arange(n), labels].mean()), d"""), "dlogits at index (0, 0)"),
    ("7", "def softmax_cross_entropy(logits, labels):\n    return 0.0 * logits, 1.0", "the parts are swapped"),
    ("8", textwrap.dedent("""\
        def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):
            buf *= momentum
            buf += grad
            param -= lr * buf"""), "on the first step the buffer is the gradient itself"),
    ("8", "def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):\n    param = param - lr * grad",
     "param did not change: update it in place"),
    ("8", textwrap.dedent("""\
        def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):
            buf = grad if first_step else momentum * buf + grad
            param -= lr * buf"""), "buf did not change: update it in place"),
    ("7", textwrap.dedent("""\
        def softmax_cross_entropy(logits, labels):
            import numpy as np
            z = logits - logits.max(axis=1, keepdims=True)
            s = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            n = len(labels)
            d = s.copy()
            d[np.arange(n), labels] -= 1
            return float(-np.log(s[np.arange(n), labels]).mean()), d / n"""), "a probability underflowed to 0"),
    ("9", textwrap.dedent("""\
        def adam_update(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
            import numpy as np
            m[...] = betas[0] * m + (1 - betas[0]) * grad
            v[...] = betas[1] * v + (1 - betas[1]) * grad * grad
            param -= lr * (m / (1 - betas[0] ** t)) / np.sqrt(v / (1 - betas[1] ** t) + eps)"""),
     "the step param moved (step 1) at index (0, 0)"),
    ("8", textwrap.dedent("""\
        def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):
            buf[...] = grad if first_step else momentum * buf + grad
            param += lr * buf"""), "the step param moved (lr=0.1, momentum=0.9, step 1) at index (0, 0): expected"),
    ("9", textwrap.dedent("""\
        def adam_update(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
            import numpy as np
            m[...] = betas[0] * m + (1 - betas[0]) * grad
            v[...] = betas[1] * v + (1 - betas[1]) * grad * grad
            param -= lr * m / (np.sqrt(v) + eps)"""), "without bias correction"),
    ("9", textwrap.dedent("""\
        def adam_update(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
            import numpy as np
            m[...] = betas[0] * m + (1 - betas[0]) * grad
            v[...] = betas[1] * v + (1 - betas[1]) * grad * grad
            param += lr / (1 - betas[0] ** t) * m / (np.sqrt(v) / np.sqrt(1 - betas[1] ** t) + eps)"""),
     "the sign is flipped"),
    ("10", textwrap.dedent("""\
        def rprop_update(param, grad, prev_grad, step, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
            import numpy as np
            agreement = np.sign(grad) * np.sign(prev_grad)
            step[...] = np.clip(np.where(agreement > 0, step * etas[1], np.where(agreement < 0, step * etas[0], step)), *step_sizes)
            param -= np.sign(grad) * step
            prev_grad[...] = grad"""), "on a sign flip Rprop skips that entry's move"),  # noqa: E501 (the submission's line 4 is 124 long)
    ("10", textwrap.dedent("""\
        def rprop_update(param, grad, prev_grad, step, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
            import numpy as np
            agreement = np.sign(grad) * np.sign(prev_grad)
            g = np.where(agreement < 0, 0.0, grad)
            param -= np.sign(g) * step
            prev_grad[...] = g"""), "step did not change: update it in place"),
    ("10", textwrap.dedent("""\
        def rprop_update(param, grad, prev_grad, step, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
            import numpy as np
            agreement = np.sign(grad) * np.sign(prev_grad)
            step[...] = np.where(agreement > 0, step * 1.2, np.where(agreement < 0, step * 0.5, step))
            g = np.where(agreement < 0, 0.0, grad)
            param -= np.sign(g) * step
            prev_grad[...] = g"""), "step sizes (step 2) at index"),
    ("11", SOLUTIONS.split("def rai_relaxed_loss")[0] + textwrap.dedent("""\
        def rai_relaxed_loss(X, Z, y, W1, b1, W2, b2, lam):
            o = np.tanh(X @ W1 + b1)
            p = sigmoid(Z @ W2 + b2)
            return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean() + ((o - Z) ** 2).mean())"""),
     "you forgot λ on the hidden loss"),
    ("11", SOLUTIONS.split("def rai_relaxed_loss")[0] + textwrap.dedent("""\
        def rai_relaxed_loss(X, Z, y, W1, b1, W2, b2, lam):
            o = np.tanh(X @ W1 + b1)
            p = sigmoid(Z @ W2 + b2)
            return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean() + lam * ((o - Z) ** 2).sum())"""),
     "the hidden loss is a sum; MSE is the mean over N·H"),
    ("12", SOLUTIONS.split("def rai_table_gradient")[0] + textwrap.dedent("""\
        def rai_table_gradient(X, Z, y, W1, b1, W2, b2, lam):
            N, H = Z.shape
            o = np.tanh(X @ W1 + b1)
            p = sigmoid(Z @ W2 + b2)
            return -lam * 2 * (o - Z) / (N * H), ((p - y) / N) @ W2.T"""), "swapped"),
    ("12", SOLUTIONS.split("def rai_table_gradient")[0] + textwrap.dedent("""\
        def rai_table_gradient(X, Z, y, W1, b1, W2, b2, lam):
            N, H = Z.shape
            o = np.tanh(X @ W1 + b1)
            p = sigmoid(Z @ W2 + b2)
            return ((p - y) / N) @ W2.T, -2 * (o - Z) / (N * H)"""),
     "a factor λ missing, or 1/λ too many (yours is 1.43 × the expected)"),
    ("12", SOLUTIONS.split("def rai_table_gradient")[0] + textwrap.dedent("""\
        def rai_table_gradient(X, Z, y, W1, b1, W2, b2, lam):
            N, H = Z.shape
            o = np.tanh(X @ W1 + b1)
            p = sigmoid(Z @ W2 + b2)
            return ((p - y) / N) @ W2.T, lam * 2 * (o - Z) / (N * H)"""), "the sign is flipped"),
]


def grade(tmp_path: Path, task: str, source: str, capsys) -> tuple[int, str]:
    path = tmp_path / "answers.py"
    path.write_text(source + "\n")
    capsys.readouterr()
    status = grading.run([task], str(path))
    return status, capsys.readouterr().out


@pytest.mark.parametrize("task,source,diagnosis", MISTAKES,
                         ids=[f"task{t}-{k}" for k, (t, _, _) in enumerate(MISTAKES)])
def test_typical_mistakes_fail_with_the_right_diagnosis(tmp_path, capsys, task, source, diagnosis):
    status, out = grade(tmp_path, task, source, capsys)
    line = out.splitlines()[1]
    assert status == grading.EXIT_FAIL and " FAIL " in line, out
    assert diagnosis in line, out


def test_every_task_has_at_least_two_graded_mistakes():
    counts = {task.id: 0 for task in grading.TASKS}
    for task, _, _ in MISTAKES:
        counts[task] += 1
    assert len(counts) >= 12 and min(counts.values()) >= 2, counts


def test_stubs_are_not_done_and_solutions_pass(capsys):
    assert main(["check"]) == grading.EXIT_NOT_DONE
    out = capsys.readouterr().out
    assert out.count(" NOT DONE ") == len(grading.TASKS) and "Traceback" not in out
    assert main(["check", "--solutions"]) == grading.EXIT_PASS
    assert capsys.readouterr().out.count(" PASS ") == len(grading.TASKS)


def test_the_required_functions_have_their_signatures():
    import inspect
    exercises = grading.load_module(ROOT / "tutorials" / "exercises.py")
    def parameters(name):
        return [(p.name, p.default) for p in inspect.signature(getattr(exercises, name)).parameters.values()]
    empty = inspect.Parameter.empty
    assert parameters("linear_backward") == [("x", empty), ("W", empty), ("dy", empty)]
    assert parameters("softmax_cross_entropy") == [("logits", empty), ("labels", empty)]
    assert parameters("numerical_gradient") == [("f", empty), ("x", empty), ("eps", 1e-5)]
    assert parameters("rprop_update") == [("param", empty), ("grad", empty), ("prev_grad", empty),
                                          ("step", empty), ("etas", (0.5, 1.2)), ("step_sizes", (1e-6, 50.0))]


def test_correct_answers_written_differently_pass(capsys):
    assert main(["check", "--file", str(ROOT / "tests" / "data" / "correct_variants.py")]) == grading.EXIT_PASS
    assert capsys.readouterr().out.count(" PASS ") == len(grading.TASKS)


def test_exit_wrong_signatures_and_import_errors_are_reported_not_obeyed(tmp_path, capsys, monkeypatch):
    answers = tmp_path / "answers.py"
    answers.write_text("def linear_forward(x, W, b):\n    exit()\n"
                       "def numerical_gradient(f, x):\n    return x\n")
    assert main(["check", "1", "6", "--file", str(answers)]) == grading.EXIT_FAIL
    out = capsys.readouterr().out
    assert "linear_forward() called exit() at answers.py line 2" in out
    assert "numerical_gradient() could not be called as the grader calls it" in out
    answers.write_text("import sys\nsys.exit(0)\n")
    assert main(["check", "--file", str(answers)]) == grading.EXIT_USAGE
    assert "answers.py calls exit() at line 2" in capsys.readouterr().err
    answers.write_text("x = 1\ny = undefined_name\n")
    monkeypatch.chdir(tmp_path)                 # a relative path, as the default tutorials/exercises.py is
    assert main(["check", "--file", "answers.py"]) == grading.EXIT_USAGE
    assert "answers.py does not import: NameError at line 2" in capsys.readouterr().err


def test_list_missing_functions_errors_and_bad_names(tmp_path, capsys):
    assert main(["check", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(grading.TASKS) and lines[1].startswith("2 linear_backward")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert main(["check", "3", "--file", str(empty)]) == grading.EXIT_NOT_DONE
    assert "there is no function sigmoid_backward()" in capsys.readouterr().out
    crash = tmp_path / "crash.py"
    crash.write_text("def sigmoid_backward(y, dy):\n    return y[99, 99]\n")
    assert main(["check", "sigmoid_backward", "--file", str(crash)]) == grading.EXIT_FAIL
    out = capsys.readouterr().out
    assert "sigmoid_backward() raised IndexError at crash.py line 2" in out and "Traceback" not in out
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    assert main(["check", "--file", str(broken)]) == grading.EXIT_USAGE
    assert "broken.py does not import: SyntaxError" in capsys.readouterr().err
    assert main(["check", "99"]) == grading.EXIT_USAGE
    assert "unknown task '99'" in capsys.readouterr().err


def test_the_command_runs_from_a_shell():
    result = subprocess.run([sys.executable, "-m", "minirai", "check", "--solutions", "1", "12"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.count(" PASS ") == 2, result.stdout + result.stderr
