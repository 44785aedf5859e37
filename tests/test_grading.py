"""The graded tasks: the stubs are NOT DONE, the reference solutions and correct variants PASS on any
seed, and typical mistakes FAIL with the right one-line diagnosis (at least two per task), each
mistake graded as a student's file is, in its own sandbox (``grade_submission``)."""
from __future__ import annotations

import inspect
import re
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from minirai.course import Call, Returned, check_unchanged, compare, diagnosis
from minirai.course.grade import grade_submission
from minirai.course.judge import Failed
from minirai.course.tasks import TASKS, find_task

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = (ROOT / "teachers" / "solutions.py").read_text()
SEED = 20240917           # any seed works: tests/test_grade_cli.py grades the solutions on fresh ones

# (task id, a wrong version of its function, what the one-line diagnosis must say: a substring, or a pattern)
MISTAKES = [
    ("1", "def linear_forward(x, W, b):\n    return x @ W", "y at index (0, 0): expected"),
    ("1", "def linear_forward(x, W, b):\n    return -(x @ W + b)", "the sign is flipped"),
    ("2", "def linear_backward(x, W, dy):\n    return dy @ W.T, dy.T @ x, dy.sum(axis=0)",
     re.compile(r"dW: shape \(\d, \d\), expected \(\d, \d\): it is transposed")),
    ("2", "def linear_backward(x, W, dy):\n    return x.T @ dy, dy @ W.T, dy.sum(axis=0)",
     re.compile(r"you returned dW in its place \(the parts are swapped")),
    ("2", "def linear_backward(x, W, dy):\n    return dy @ W.T, x.T @ dy, dy.mean(axis=0)",
     re.compile(r"db at index \(0,\): expected")),
    ("2", "def linear_backward(x, W, dy):\n    return dy @ W.T, x.T @ dy / len(x), dy.sum(axis=0)",
     re.compile(r"a factor N missing, or 1/N too many \(yours is 0\.\d+ × the expected\)")),
    ("3", "def sigmoid_backward(y, dy):\n    return dy * (1 - y)", "dx at index"),
    ("3", "def sigmoid_backward(y, dy):\n    return -dy * y * (1 - y)", "the sign is flipped"),
    ("4", "def tanh_backward(y, dy):\n    return dy * (1 - y)", "dx at index"),
    ("4", "def tanh_backward(y, dy):\n    return 2 * dy * (1 - y * y)",
     re.compile(r"a factor 2 too many, or 1/2 missing \(yours is 2 × the expected\)")),
    ("4", "def tanh_backward(y, dy):\n    y *= y\n    return dy * (1 - y)", "changed its input y in place"),
    ("5", "def bce_backward(p, t):\n    return (p - t) / (p * (1 - p))",
     re.compile(r"a factor M too many, or 1/M missing \(yours is \d+ × the expected\)")),
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
            return float(-log_s[np.arange(n), labels].mean()), d"""),
     re.compile(r"dlogits at index \(0, 0\): expected")),
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
     re.compile(r"the step param moved \(step 1\) at index \(0, 0\)")),
    ("8", textwrap.dedent("""\
        def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):
            buf[...] = grad if first_step else momentum * buf + grad
            param += lr * buf"""),
     re.compile(r"the step param moved \(lr=[\d.]+, momentum=[\d.]+, step 1\) at index \(0, 0\): expected")),
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
            prev_grad[...] = g"""), re.compile(r"step sizes \(step 2\) at index")),
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
     re.compile(r"a factor λ missing, or 1/λ too many \(yours is 1\.\d+ × the expected\)")),
    ("12", SOLUTIONS.split("def rai_table_gradient")[0] + textwrap.dedent("""\
        def rai_table_gradient(X, Z, y, W1, b1, W2, b2, lam):
            N, H = Z.shape
            o = np.tanh(X @ W1 + b1)
            p = sigmoid(Z @ W2 + b2)
            return ((p - y) / N) @ W2.T, lam * 2 * (o - Z) / (N * H)"""), "the sign is flipped"),

    # an input changed in place is caught in every task, and is the diagnosis even where values are right
    ("7", textwrap.dedent("""\
        def softmax_cross_entropy(logits, labels):
            import numpy as np
            logits -= logits.max(axis=1, keepdims=True)
            log_s = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            n = len(labels)
            d = np.exp(log_s)
            d[np.arange(n), labels] -= 1
            return float(-log_s[np.arange(n), labels].mean()), d / n"""), "changed its input logits in place"),
    ("9", textwrap.dedent("""\
        def adam_update(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
            import numpy as np
            m[...] = betas[0] * m + (1 - betas[0]) * grad
            g2 = grad
            g2 *= grad
            v[...] = betas[1] * v + (1 - betas[1]) * g2
            param -= lr / (1 - betas[0] ** t) * m / (np.sqrt(v) / np.sqrt(1 - betas[1] ** t) + eps)"""),
     "changed its input grad in place"),
    ("10", textwrap.dedent("""\
        def rprop_update(param, grad, prev_grad, step, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
            import numpy as np
            agreement = np.sign(grad) * np.sign(prev_grad)
            step[...] = np.clip(np.where(agreement > 0, step * etas[1],
                                         np.where(agreement < 0, step * etas[0], step)), *step_sizes)
            grad[agreement < 0] = 0.0
            param -= np.sign(grad) * step
            prev_grad[...] = grad"""), "changed its input grad in place"),
    ("11", SOLUTIONS.split("def rai_relaxed_loss")[0] + textwrap.dedent("""\
        def rai_relaxed_loss(X, Z, y, W1, b1, W2, b2, lam):
            p = sigmoid(Z @ W2 + b2)
            Z -= np.tanh(X @ W1 + b1)
            return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean() + lam * (Z ** 2).mean())"""),
     "changed its input Z in place"),
    ("12", SOLUTIONS.split("def rai_table_gradient")[0] + textwrap.dedent("""\
        def rai_table_gradient(X, Z, y, W1, b1, W2, b2, lam):
            N, H = Z.shape
            p = sigmoid(Z @ W2 + b2)
            Z -= np.tanh(X @ W1 + b1)
            return ((p - y) / N) @ W2.T, lam * 2 * Z / (N * H)"""), "changed its input Z in place"),
    ("2", "def linear_backward(x, W, dy):\n    dy /= len(x)\n    return dy @ W.T, x.T @ dy, dy.sum(axis=0)",
     "changed its input dy in place"),
    # task 6 on 1-D and 3-D arrays, and with the eps it is given
    ("6", textwrap.dedent("""\
        def numerical_gradient(f, x, eps=1e-5):
            import numpy as np
            grad = np.zeros(x.shape)
            for i in range(x.shape[0]):
                for j in range(x.shape[1]):
                    original = x[i, j]
                    x[i, j] = original + eps
                    plus = f()
                    x[i, j] = original - eps
                    minus = f()
                    x[i, j] = original
                    grad[i, j] = (plus - minus) / (2 * eps)
            return grad"""),
     re.compile(r"numerical_gradient\(\) raised IndexError at answers\.py line 5: tuple index")),
    ("6", textwrap.dedent("""\
        def numerical_gradient(f, x, eps=1e-5):
            import numpy as np
            grad = np.zeros(x.shape)
            for i in np.ndindex(*x.shape):
                original = x[i]
                x[i] = original + 1e-5
                plus = f()
                x[i] = original - 1e-5
                minus = f()
                x[i] = original
                grad[i] = (plus - minus) / 2e-5
            return grad"""), "not with the eps you were given"),
    # a missing return, an underflow told from an overflow, ratios only where they hold
    ("11", SOLUTIONS.split("def rai_relaxed_loss")[0] + textwrap.dedent("""\
        def rai_relaxed_loss(X, Z, y, W1, b1, W2, b2, lam):
            o = np.tanh(X @ W1 + b1)
            p = sigmoid(Z @ W2 + b2)
            loss = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean() + lam * ((o - Z) ** 2).mean()"""),
     "L: your function returned None (a missing `return`?)"),
    ("1", "def linear_forward(x, W, b):\n    y = x @ W + b", "y: your function returned None (a missing `return`?)"),
    ("7", textwrap.dedent("""\
        def softmax_cross_entropy(logits, labels):
            import numpy as np
            z = logits - logits.max()
            s = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            n = len(labels)
            d = s.copy()
            d[np.arange(n), labels] -= 1
            return float(-np.log(s[np.arange(n), labels]).mean()), d / n"""),
     "a whole row's exponentials underflowed to 0; one maximum for the whole array is not enough"),
    ("7", SOLUTIONS.split("def linear_forward")[0] + "\n" + SOLUTIONS[SOLUTIONS.index("def softmax_cross_entropy"):
                                                                     SOLUTIONS.index("def sgd_momentum_update")]
     + "\n\nright = softmax_cross_entropy\n\n\ndef softmax_cross_entropy(logits, labels):\n"
       "    loss, grad = right(logits, labels)\n    return 1.1 * loss, grad\n",
     re.compile(r"^ 7 softmax_cross_entropy  FAIL     loss: expected [-\d.e+]+, got [-\d.e+]+$")),
]


@pytest.fixture(scope="module")
def graded_mistakes(tmp_path_factory):
    """Every mistake in its own file, each graded on its task in its own sandbox, two at a time."""
    folder = tmp_path_factory.mktemp("mistakes")

    def one(item):
        k, (task, source, _) = item
        path = folder / f"m{k}" / "answers.py"
        path.parent.mkdir()
        path.write_text(source + "\n")
        graded = grade_submission(path, [find_task(task)], SEED)
        return "\n".join(line for line in _lines(graded))

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, enumerate(MISTAKES)))


def _lines(graded):
    from minirai.course.grade import feedback_lines
    return feedback_lines(graded)


@pytest.mark.parametrize("k", range(len(MISTAKES)), ids=[f"task{t}-{k}" for k, (t, _, _) in enumerate(MISTAKES)])
def test_typical_mistakes_fail_with_the_right_diagnosis(graded_mistakes, k):
    task, _, expected = MISTAKES[k]
    out = graded_mistakes[k]
    line = next(line for line in out.splitlines() if re.match(rf"^ *{task} ", line))
    assert " FAIL " in line, out
    if isinstance(expected, re.Pattern):
        assert expected.search(line), out
    else:
        assert expected in line, out


def test_every_task_has_at_least_two_graded_mistakes():
    counts = {task.id: 0 for task in TASKS}
    for task, _, _ in MISTAKES:
        counts[task] += 1
    assert len(counts) >= 12 and min(counts.values()) >= 2, counts


def test_an_input_changed_in_place_is_caught_in_every_task_that_takes_arrays():
    caught = {task for task, _, expected in MISTAKES if isinstance(expected, str) and "in place" in expected
              and "changed its input" in expected}
    assert {"2", "4", "7", "9", "10", "11", "12"} <= caught, caught


@pytest.mark.parametrize("path", [ROOT / "teachers" / "solutions.py", ROOT / "tests" / "data" / "correct_variants.py"],
                         ids=["solutions", "correct_variants"])
def test_the_solutions_and_correct_answers_written_differently_pass(path):
    graded = grade_submission(path, TASKS, SEED)
    assert [r.status for r in graded.results] == ["PASS"] * len(TASKS), "\n".join(_lines(graded))
    assert graded.status == "ok"


def test_the_stubs_are_not_done():
    graded = grade_submission(ROOT / "tutorials" / "exercises.py", TASKS, SEED)
    assert [r.status for r in graded.results] == ["NOT DONE"] * len(TASKS)
    assert all("still raises NotImplementedError(Task " in r.message for r in graded.results)


def test_the_required_functions_have_their_signatures():
    import ast
    tree = ast.parse((ROOT / "tutorials" / "exercises.py").read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}

    def parameters(name):
        node = functions[name]
        defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + [ast.literal_eval(d) for d in
                                                                               node.args.defaults]
        return [(a.arg, d) for a, d in zip(node.args.args, defaults)]

    assert {task.function for task in TASKS} <= set(functions)
    assert parameters("linear_backward") == [("x", None), ("W", None), ("dy", None)]
    assert parameters("softmax_cross_entropy") == [("logits", None), ("labels", None)]
    assert parameters("numerical_gradient") == [("f", None), ("x", None), ("eps", 1e-5)]
    assert parameters("rprop_update") == [("param", None), ("grad", None), ("prev_grad", None),
                                          ("step", None), ("etas", (0.5, 1.2)), ("step_sizes", (1e-6, 50.0))]


def test_a_ratio_is_named_only_where_the_arrays_are_a_multiple_of_each_other():
    expected = np.array([1.0, -2.0, 3.0])
    assert diagnosis(1.5 * expected, expected, {}) == "yours is 1.5 × the expected"
    assert diagnosis(expected + [0.1, 0, 0], expected, {}) == ""                   # not a scale
    assert diagnosis(np.array(1.1), np.array(1.0), {}) == ""                       # one number: any ratio fits
    assert diagnosis(np.array(6.0), np.array(1.0), {"N": 6.0}).startswith("a factor N too many")   # named: it may
    assert diagnosis(np.full(3, 2.0), np.full(3, 1.0), {}) == ""                   # equal entries: a shift too
    assert diagnosis(-2.342e-17 * expected, expected, {}).startswith("yours is nearly zero everywhere")
    assert diagnosis(np.array([np.nan, 1, 1]), expected, {}) == "it holds NaN or inf"


def test_check_unchanged_names_the_argument_and_the_entry():
    sent = np.array([[1.0, 2.0], [3.0, 4.0]])
    call = Call(sent, 0.5)
    Returned(call, None, (sent.copy(), 0.5), {})
    check_unchanged(Returned(call, None, (sent.copy(), 0.5), {}), x=0, lr=1)          # as sent: nothing to say
    changed = sent.copy()
    changed[1, 0] = 9.0
    with pytest.raises(Failed, match=r"changed its input x in place \(x at index \(1, 0\) was 3, it is now 9\)"):
        check_unchanged(Returned(call, None, (changed, 0.5), {}), x=0)
    with pytest.raises(Failed, match="its shape became"):
        check_unchanged(Returned(call, None, (sent[:1], 0.5), {}), x=0)
    with pytest.raises(Failed, match="y: your function returned None"):
        compare("y", None, sent)


def test_find_task_by_id_or_function_name():
    assert find_task("7").function == "softmax_cross_entropy"
    assert find_task("Task 7").id == find_task("task7").id == find_task("softmax_cross_entropy").id == "7"
    with pytest.raises(ValueError, match="unknown task '99'"):
        find_task("99")
    assert all(inspect.isgeneratorfunction(t.check) or callable(t.check) for t in TASKS)
