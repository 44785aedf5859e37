"""The course's graded tasks: each compares a student's function with minirai's own layers, losses,
optimizers and RAI trainer (the textbook path), on inputs drawn from the grading seed.

Every task tries several shapes (and, for the optimizers, several settings over several steps),
checks that each input array is left as it was sent before it compares values (so an input changed in
place is the diagnosis where it also explains a wrong value), and names the usual mistakes: a flipped
sign, a transposition, a factor (1/N, λ, 2, ...) missing or too many, zeros, swapped parts,
one-sided differences, an ignored ``eps``, ``x`` not restored, an array rebound instead of updated,
garbage kept in the first momentum step, a missing bias correction, a sign flip Rprop should skip,
exp overflowing, whole rows of exponentials underflowing, a probability underflowing before the log,
λ forgotten, a sum where a mean is meant.

:func:`load_tasks_file` reads a teacher's own tasks (``minirai grade --tasks-file``).
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np

from .judge import (Arg, Call, Closure, Failed, Task, array_of, check_unchanged, check_updated, close, compare,
                    number, parts)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2 ** 31))


def _linear(rng: np.random.Generator, n_in: int, n_out: int):
    import minirai
    return minirai.Linear(n_in, n_out, rng=_seed(rng), dtype=np.float64)


def _as_float64(value: Any) -> np.ndarray | None:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


# -- chapter 1 ----------------------------------------------------------------------------------------------
def check_linear_forward(rng: np.random.Generator):
    worst = 0.0
    for _ in range(3):
        N, d_in, d_out = (int(v) for v in (rng.integers(2, 9), rng.integers(1, 6), rng.integers(1, 6)))
        layer = _linear(rng, d_in, d_out)
        x = rng.standard_normal((N, d_in))
        expected = layer.forward(x).copy()
        got = yield Call(x, layer.params["W"].copy(), layer.params["b"].copy())
        check_unchanged(got, x=0, W=1, b=2)
        worst = max(worst, compare("y", got.value, expected))
    return f"matches minirai.Linear.forward on 3 shapes (max diff {worst:.1e})"


def check_linear_backward(rng: np.random.Generator):
    worst = 0.0
    for _ in range(2):
        N = int(rng.integers(5, 9))
        d_in, d_out = (int(v) for v in rng.choice([2, 3, 4], size=2, replace=False))
        layer = _linear(rng, d_in, d_out)
        x, dy = rng.standard_normal((N, d_in)), rng.standard_normal((N, d_out))
        layer.forward(x)
        expected = {"dx": layer.backward(dy).copy(), "dW": layer.grads["W"].copy(), "db": layer.grads["b"].copy()}
        got = yield Call(x, layer.params["W"].copy(), dy)
        check_unchanged(got, x=0, W=1, dy=2)
        answer = parts(got.value, 3, "the triple (dx, dW, db)")
        names = list(expected)
        for i, name in enumerate(names):           # parts in the wrong places?
            value = _as_float64(answer[i])
            if value is not None and value.shape != expected[name].shape:
                for other in names:
                    if other != name and value.shape == expected[other].shape and close(value, expected[other]):
                        raise Failed(f"{name}: you returned {other} in its place (the parts are swapped; "
                                     "return (dx, dW, db))")
        worst = max(worst, *(compare(name, answer[i], expected[name], {"N": float(N)})
                             for i, name in enumerate(names)))
    return f"dx, dW, db match minirai.Linear.backward on 2 shapes (max diff {worst:.1e})"


def check_activation_backward(rng: np.random.Generator, layer_class: str):
    import minirai
    from minirai.gradcheck import check_gradients
    worst = worst_relative = 0.0
    for _ in range(2):
        N, D = int(rng.integers(3, 8)), int(rng.integers(2, 6))
        x, dy = rng.standard_normal((N, D)), rng.standard_normal((N, D))
        layer = getattr(minirai, layer_class)()
        y = layer.forward(x).copy()
        expected = layer.backward(dy).copy()
        got = yield Call(y, dy)
        check_unchanged(got, y=0, dy=1)
        worst = max(worst, compare("dx", got.value, expected, {"2": 2.0}))
        result = check_gradients(lambda: float(np.sum(layer.forward(x) * dy)), {"x": x},
                                 {"x": np.asarray(got.value, dtype=np.float64)}, raise_on_failure=False,
                                 verbose=False)
        if not result.ok:
            raise Failed(f"dx does not match finite differences of a {layer_class}:\n{result.table()}")
        worst_relative = max(worst_relative, result.max_rel_error)
    return (f"matches minirai.{layer_class} on 2 shapes (max diff {worst:.1e}); "
            f"finite differences agree (worst rel. error {worst_relative:.1e})")


def check_bce_backward(rng: np.random.Generator):
    import minirai
    worst = 0.0
    for N in rng.choice(np.arange(5, 13), size=2, replace=False):
        N = int(N)
        p = rng.uniform(0.05, 0.95, (N, 1))
        t = rng.integers(0, 2, (N, 1)).astype(np.float64)
        loss = minirai.BCE()
        loss.forward(p, t)
        expected = loss.backward().copy()
        got = yield Call(p, t)
        check_unchanged(got, p=0, t=1)
        worst = max(worst, compare("dp", got.value, expected, {"M": float(N)}))     # M = all entries of p
    return f"matches minirai.BCE.backward on 2 shapes (max diff {worst:.1e})"


#: task 6's function of x, built in the sandbox around the very array the student's code perturbs
F_SOURCE = "lambda x, A: float(np.sum(np.sin(x) * A) + np.sum(x ** 3))"


def _f(x: np.ndarray, A: np.ndarray) -> float:
    return float(np.sum(np.sin(x) * A) + np.sum(x ** 3))


def _differences(x: np.ndarray, A: np.ndarray, eps: float, central: bool = True) -> np.ndarray:
    x, grad = x.copy(), np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        original = x[index]
        x[index] = original + eps
        plus = _f(x, A)
        x[index] = original - eps if central else original
        minus = _f(x, A)
        x[index] = original
        grad[index] = (plus - minus) / (2 * eps if central else eps)
    return grad


def check_numerical_gradient(rng: np.random.Generator):
    cases = [((int(rng.integers(2, 5)), int(rng.integers(2, 5))), None),         # the default eps
             ((int(rng.integers(3, 8)),), float(10 ** rng.uniform(-3, -2.5))),   # 1-D, eps given
             ((2, int(rng.integers(2, 4)), int(rng.integers(2, 4))), None)]      # 3-D
    worst = 0.0
    for shape, eps in cases:
        x, A = rng.standard_normal(shape), rng.standard_normal(shape)
        f = Closure(F_SOURCE, Arg(1), A)
        got = yield (Call(f, x) if eps is None else Call(f, x, eps))
        what = "grad" + (f" (x of shape {shape}, eps={eps:.3g})" if eps else f" (x of shape {shape})")
        if not np.array_equal(np.asarray(got.args[1]), x):
            raise Failed(f"x is not as you found it after your function (x of shape {shape}): put back each entry "
                         "you perturbed (x[i] = original, not x[i] -= eps after a + eps, which rounds)")
        step = 1e-5 if eps is None else eps
        exact = np.cos(x) * A + 3 * x ** 2
        reference, rtol, atol = ((exact, 1e-7, 1e-8) if eps is None else (_differences(x, A, eps), 1e-9, 1e-9))
        grad = array_of(what, got.value, reference)
        if not close(grad, reference, rtol, atol):
            if close(grad, _differences(x, A, step, central=False), 1e-9, 1e-9):
                raise Failed(f"{what}: these are one-sided differences (f(x+eps) - f(x)) / eps; central differences "
                             "(f(x+eps) - f(x-eps)) / (2 eps) are far more accurate")
            if eps is not None and close(grad, _differences(x, A, 1e-5), 1e-7, 1e-8):
                raise Failed(f"{what}: these are central differences with eps=1e-5, not with the eps you were given "
                             f"({eps:.3g}): use your eps argument")
        worst = max(worst, compare(what, grad, reference, {"2": 2.0}, rtol, atol))
    return f"central differences on 1-D, 2-D and 3-D x, eps given or not, match (max diff {worst:.1e})"


# -- chapter 5 ----------------------------------------------------------------------------------------------
def check_softmax_cross_entropy(rng: np.random.Generator):
    import minirai
    cases = []
    for kind in ("", "", " with logits near 1000", " with rows far apart", " with large logits"):
        N, C = int(rng.integers(4, 9)), int(rng.integers(3, 7))
        labels = rng.integers(0, C, N)
        if kind == " with logits near 1000":          # exp(logits) overflows
            logits = 1000 + 3 * rng.standard_normal((N, C))
        elif kind == " with rows far apart":          # one maximum for the whole array underflows whole rows
            logits = 3 * rng.standard_normal((N, C)) + np.where(np.arange(N) % 2, 1, -1)[:, None] * \
                rng.uniform(2e3, 5e4, (N, 1))
        elif kind == " with large logits":            # a label's probability underflows to 0
            logits = 1000 * rng.standard_normal((N, C))
            labels = logits.argmin(axis=1)
        else:
            logits = 2 * rng.standard_normal((N, C))
        cases.append((kind, logits, labels))
    worst = 0.0
    for kind, logits, labels in cases:
        N = logits.shape[0]
        loss = minirai.SoftmaxCrossEntropy()
        value = float(loss.forward(logits, labels))
        expected_grad = loss.backward().copy()
        got = yield Call(logits, labels)
        check_unchanged(got, logits=0, labels=1)
        got_loss, got_grad = parts(got.value, 2, "the pair (loss, dlogits)")
        if np.ndim(got_loss) == 2 and np.ndim(got_grad) == 0:
            raise Failed("the parts are swapped: return (loss, dlogits)")
        for part, what in ((got_loss, "loss"), (got_grad, "dlogits")):
            if part is None:
                raise Failed(f"{what} is None: return (loss, dlogits)")
        loss_value = number(f"loss{kind}", got_loss)
        grad = array_of(f"dlogits{kind}", got_grad, expected_grad)
        finite_grad, finite_loss = bool(np.all(np.isfinite(grad))), math.isfinite(loss_value)
        if kind == " with logits near 1000" and not (finite_grad and finite_loss):
            raise Failed(f"{'dlogits holds NaN or inf' if not finite_grad else f'the loss is {loss_value}'}{kind}: "
                         "exp overflowed; subtract each row's maximum from its logits first (softmax does not "
                         "change)")
        if kind == " with rows far apart" and not (finite_grad and finite_loss):
            raise Failed(f"{'dlogits holds NaN or inf' if not finite_grad else f'the loss is {loss_value}'}{kind}: "
                         "a whole row's exponentials underflowed to 0; one maximum for the whole array is not "
                         "enough: subtract each row's own maximum")
        if finite_grad and not finite_loss:
            raise Failed(f"the loss is {loss_value}{kind}: a probability underflowed to 0 before the log; "
                         "compute log-softmax as shifted - log Σ exp(shifted), not log(softmax)")
        worst = max(worst, compare(f"loss{kind}", np.array(loss_value), np.array(value), {"N": float(N)}),
                    compare(f"dlogits{kind}", grad, expected_grad, {"N": float(N)}))
    return ("loss and dlogits match minirai.SoftmaxCrossEntropy on 5 cases, large logits included "
            f"(max diff {worst:.1e})")


# -- chapter 4 ----------------------------------------------------------------------------------------------
def check_sgd_momentum(rng: np.random.Generator):
    import minirai
    settings = [(float(rng.uniform(0.02, 0.2)), float(rng.uniform(0.5, 0.95)), (3, 4)),
                (float(rng.uniform(0.02, 0.2)), float(rng.uniform(0.1, 0.5)), (int(rng.integers(3, 9)),)),
                (float(rng.uniform(0.02, 0.2)), 0.0, (2, int(rng.integers(2, 5))))]
    worst = 0.0
    for lr, momentum, shape in settings:
        start = rng.standard_normal(shape)
        engine_p, engine_g = start.copy(), np.zeros(shape)
        optimizer = minirai.SGD([(engine_p, engine_g)], lr=lr, momentum=momentum)
        param, buf = start.copy(), rng.uniform(-100, 100, shape)       # the first step must overwrite buf
        for step in range(4):
            g = rng.standard_normal(shape)
            engine_g[...] = g
            engine_before = engine_p.copy()
            optimizer.step()
            got = yield Call(param, g, buf, lr, momentum, step == 0)
            check_unchanged(got, grad=1)
            new_param, new_buf = np.asarray(got.args[0]), np.asarray(got.args[2])
            what = f"lr={lr:.3g}, momentum={momentum:.3g}, step {step + 1}"
            check_updated("param", param, new_param, engine_p)
            if momentum:
                expected_buf = optimizer.state[0]["momentum_buffer"]
                check_updated("buf", buf, new_buf, expected_buf)
                if step == 0 and close(new_buf, momentum * buf + g):
                    raise Failed(f"momentum buffer ({what}): on the first step the buffer is the gradient "
                                 "itself; it held garbage, which you kept")
            worst = max(worst, compare(f"the step param moved ({what})", new_param - param,
                                       engine_p - engine_before, {"lr": lr}))
            if momentum:
                compare(f"momentum buffer ({what})", new_buf, expected_buf, {"lr": lr})
            param, buf = new_param, new_buf
    return f"4 steps x 3 settings match minirai.SGD (max diff {worst:.1e})"


def check_adam(rng: np.random.Generator):
    import minirai
    worst = 0.0
    for run, (shape, steps) in enumerate((((3, int(rng.integers(2, 6))), 5), ((int(rng.integers(4, 9)),), 3))):
        lr = float(10 ** rng.uniform(-2.5, -1.5))
        betas = (float(rng.uniform(0.7, 0.9)), float(rng.uniform(0.95, 0.995)))
        eps = float(10 ** rng.uniform(-4, -2.5))           # not the defaults, and an ε large enough to matter
        start = rng.standard_normal(shape)
        engine_p, engine_g = start.copy(), np.zeros(shape)
        optimizer = minirai.Adam([(engine_p, engine_g)], lr=lr, betas=betas, eps=eps)
        param, m, v = start.copy(), np.zeros(shape), np.zeros(shape)
        for t in range(1, steps + 1):
            g = 0.05 * rng.standard_normal(shape)
            engine_g[...] = g
            engine_before = engine_p.copy()
            optimizer.step()
            got = yield Call(param, g, m, v, t, lr, betas, eps)
            check_unchanged(got, grad=1)
            new_param, new_m, new_v = (np.asarray(got.args[i]) for i in (0, 2, 3))
            state = optimizer.state[0]
            for name, old, new, expected in (("param", param, new_param, engine_p), ("m", m, new_m, state["m"]),
                                             ("v", v, new_v, state["v"])):
                check_updated(name, old, new, expected)
            when = f"step {t}" if run == 0 else f"second run, step {t}"
            no_correction = -lr * state["m"] / (np.sqrt(state["v"]) + eps)
            if t == 1 and close(new_param - param, no_correction, rtol=1e-5):
                raise Failed(f"param at {when}: these are the steps without bias correction; divide m by (1 - β1^t) "
                             "and v by (1 - β2^t)")
            worst = max(worst, compare(f"the step param moved ({when})", new_param - param,
                                       engine_p - engine_before, {"lr": lr}))
            compare(f"m ({when})", new_m, state["m"])
            compare(f"v ({when})", new_v, state["v"])
            param, m, v = new_param, new_m, new_v
    return f"5 + 3 steps match minirai.Adam: the steps, m and v (max diff {worst:.1e})"


def check_rprop(rng: np.random.Generator):
    import minirai
    worst = 0.0
    for run, (shape, steps) in enumerate((((12,), 6), ((3, 4), 5))):
        lr = float(rng.uniform(0.05, 0.15))
        etas = (float(rng.uniform(0.3, 0.6)), float(rng.uniform(1.15, 1.4)))       # not the defaults
        step_sizes = (lr * float(rng.uniform(0.3, 0.6)), lr * float(rng.uniform(1.3, 1.7)))  # clips reached soon
        start = rng.standard_normal(shape)
        engine_p, engine_g = start.copy(), np.zeros(shape)
        optimizer = minirai.Rprop([(engine_p, engine_g)], lr=lr, etas=etas, step_sizes=step_sizes)
        param, prev_grad, step = start.copy(), np.zeros(shape), np.full(shape, lr)
        signs = rng.choice([-1.0, 1.0], size=(steps, 12))
        signs[:, :3] = 1.0                                   # some entries keep their sign (their Δ grows)
        signs[2:4, 3] = 0.0                                  # and one gradient is exactly 0 for two steps
        for k in range(steps):
            sign = signs[k].reshape(shape)
            g = sign * rng.uniform(0.5, 2.0, shape)
            engine_g[...] = g
            optimizer.step()
            got = yield Call(param, g, prev_grad, step, etas, step_sizes)
            check_unchanged(got, grad=1)
            new_param, new_prev, new_step = (np.asarray(got.args[i]) for i in (0, 2, 3))
            state = optimizer.state[0]
            when = f"step {k + 1}" if run == 0 else f"second run, step {k + 1}"
            check_updated("param", param, new_param, engine_p)
            check_updated("step", step, new_step, state["step_size"])
            flipped = state["prev_sign"] == 0
            if k and (flipped & (sign != 0)).any() and not np.allclose(new_param[flipped], param[flipped]):
                raise Failed(f"param ({when}): an entry whose gradient changed sign moved; on a sign flip "
                             "Rprop skips that entry's move, and the next step treats it as having no previous sign")
            worst = max(worst, compare(f"step sizes ({when})", new_step, state["step_size"],
                                       {"η+": etas[1], "η-": etas[0]}))
            compare(f"param ({when})", new_param, engine_p)
            compare(f"sign of prev_grad ({when})", np.sign(new_prev), state["prev_sign"])
            param, prev_grad, step = new_param, new_prev, new_step
    return f"6 + 5 steps match minirai.Rprop: param and step sizes (max diff {worst:.1e})"


# -- chapters 3 and 7 ---------------------------------------------------------------------------------------
def _two_blocks(rng: np.random.Generator) -> tuple:
    """A 2-block RAI chain (tasks 11 and 12), its trainer, λ, and the arguments the student gets."""
    import minirai
    from minirai.rai import RAI
    N, D, H = int(rng.integers(5, 9)), int(rng.integers(2, 5)), int(rng.integers(3, 6))
    lam = float(rng.uniform(0.55, 0.95))             # 1/λ is then none of 2, N, H
    model = minirai.Sequential(minirai.Linear(D, H, rng=_seed(rng), dtype=np.float64), minirai.Tanh(),
                               minirai.Linear(H, 1, rng=_seed(rng), dtype=np.float64), minirai.Sigmoid())
    X = rng.standard_normal((N, D))
    labels = rng.integers(0, 2, N)
    labels[:2] = (0, 1)                              # both classes
    trainer = RAI(model, X, labels, minirai.BCE(), cuts=[2], lam=lam)       # cut after the Tanh
    trainer.tables[0] += 0.3 * rng.standard_normal(trainer.tables[0].shape)  # off the forward pass
    arrays = (X.copy(), trainer.tables[0].copy(), labels.reshape(-1, 1).astype(np.float64),
              model.layers[0].params["W"].copy(), model.layers[0].params["b"].copy(),
              model.layers[2].params["W"].copy(), model.layers[2].params["b"].copy())
    return trainer, lam, arrays


INPUTS_11 = {name: i for i, name in enumerate(("X", "Z", "y", "W1", "b1", "W2", "b2"))}


def check_relaxed_loss(rng: np.random.Generator):
    values = []
    for _ in range(2):
        trainer, lam, arrays = _two_blocks(rng)
        expected = float(trainer.forward())
        got = yield Call(*arrays, lam)
        check_unchanged(got, **INPUTS_11)
        value = number("L", got.value)
        output, hidden = float(trainer.output_loss), float(trainer.hidden_values[0])
        N, H = arrays[1].shape
        if not math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
            for candidate, what in (
                    (output + hidden, "you forgot λ on the hidden loss"),
                    (output, "the hidden loss is missing"),
                    (output + lam * hidden * N * H, "the hidden loss is a sum; MSE is the mean over N·H"),
                    (output * N + lam * hidden, "the output loss is a sum; BCE is the mean over N"),
                    (output - lam * hidden, "the sign of the hidden term is flipped")):
                if math.isclose(value, candidate, rel_tol=1e-9, abs_tol=1e-12):
                    raise Failed(f"L: expected {expected:.6g}, got {value:.6g}: {what}")
            raise Failed(f"L: expected {expected:.6g}, got {value:.6g}")
        values.append(expected)
    return f"matches the RAI trainer's relaxed loss on 2 chains ({values[0]:.6f}, {values[1]:.6f})"


def check_rai_table_gradient(rng: np.random.Generator):
    from minirai.gradcheck import check_gradients
    worst = 0.0
    for _ in range(2):
        trainer, lam, arrays = _two_blocks(rng)
        trainer.forward()
        trainer.backward()
        expected_input = trainer.grad_tables_as_input[0].copy()
        expected_target = trainer.grad_tables_as_target[0].copy()
        got = yield Call(*arrays, lam)
        check_unchanged(got, **INPUTS_11)
        answer = parts(got.value, 2, "the pair (as_input, as_target)")
        as_input, as_target = (array_of(name, value, expected_input) for name, value in
                               zip(("as_input", "as_target"), answer))
        if close(as_input, expected_target) and close(as_target, expected_input):
            raise Failed("as_input and as_target are swapped: return (as_input, as_target)")
        N, H = arrays[1].shape
        e1 = compare("as_input", as_input, expected_input, {"N": float(N)})
        e2 = compare("as_target", as_target, expected_target,
                     {"λ": lam, "N·H": float(N * H), "2": 2.0, "H": float(H), "N": float(N)})
        result = check_gradients(lambda: float(trainer.forward()), {"Z": trainer.tables[0]},
                                 {"Z": as_input + as_target}, raise_on_failure=False, verbose=False)
        if not result.ok:
            raise Failed(f"as_input + as_target does not match finite differences:\n{result.table()}")
        worst = max(worst, e1, e2)
    return f"matches the RAI trainer on 2 chains (max diff {worst:.1e}); the sum matches finite differences"


TASKS: list[Task] = [
    Task("1", "linear_forward", "01 backprop by hand", "Linear forward", check_linear_forward),
    Task("2", "linear_backward", "01 backprop by hand", "Linear backward: dx, dW, db", check_linear_backward),
    Task("3", "sigmoid_backward", "01 backprop by hand", "Sigmoid backward",
         lambda rng: check_activation_backward(rng, "Sigmoid")),
    Task("4", "tanh_backward", "01 backprop by hand", "Tanh backward",
         lambda rng: check_activation_backward(rng, "Tanh")),
    Task("5", "bce_backward", "01 backprop by hand", "BCE backward", check_bce_backward),
    Task("6", "numerical_gradient", "01 backprop by hand", "central differences", check_numerical_gradient),
    Task("7", "softmax_cross_entropy", "05 softmax and multi-class", "softmax cross-entropy, stable",
         check_softmax_cross_entropy),
    Task("8", "sgd_momentum_update", "04 optimizers", "SGD with momentum", check_sgd_momentum),
    Task("9", "adam_update", "04 optimizers", "Adam", check_adam),
    Task("10", "rprop_update", "04 optimizers", "Rprop, minirai's rule", check_rprop),
    Task("11", "rai_relaxed_loss", "03 relaxed activation identity, 07 relaxation gap", "the relaxed loss, 2 blocks",
         check_relaxed_loss),
    Task("12", "rai_table_gradient", "03 relaxed activation identity", "a table's two gradient parts",
         check_rai_table_gradient),
]


def find_task(text: str, tasks: list[Task] | None = None) -> Task:
    """A task by id ("7", "task7", "Task 7") or function name."""
    tasks = TASKS if tasks is None else tasks
    key = text.strip()
    for task in tasks:
        if key in (task.id, task.function):
            return task
    short = key.lower().replace("task", "").strip(" _-")
    for task in tasks:
        if short in (task.id.lower(), task.function.lower()):
            return task
    raise ValueError(f"unknown task {text!r}; the tasks are {', '.join(t.id for t in tasks)} "
                     "(`minirai check --list` lists them)")


def load_tasks_file(path: str | Path) -> list[Task]:
    """The ``TASKS`` list of a teacher's tasks file (run here, in the grader: it is the teacher's code,
    not a student's). A ValueError names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--tasks-file: no file at {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"minirai_teacher_tasks_{abs(hash(str(path.resolve())))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)       # type: ignore[union-attr]
    except Exception as error:     # noqa: BLE001 - reported with the file's name
        raise ValueError(f"--tasks-file {path}: it raised {type(error).__name__}: {error}") from None
    tasks = getattr(module, "TASKS", None)
    if not isinstance(tasks, (list, tuple)) or not tasks or not all(isinstance(t, Task) for t in tasks):
        raise ValueError(f"--tasks-file {path}: expected a non-empty list TASKS of minirai.course.Task, got "
                         f"{type(tasks).__name__ if tasks is not None else 'no TASKS'}")
    return list(tasks)


def all_tasks(tasks_file: str | Path | None = None) -> list[Task]:
    """The built-in tasks, then a teacher's (a ValueError when an id is taken twice)."""
    tasks = list(TASKS) + (load_tasks_file(tasks_file) if tasks_file else [])
    ids = [t.id for t in tasks]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"--tasks-file: the task ids {twice} are taken twice (the built-in tasks are "
                         f"{', '.join(t.id for t in TASKS)})")
    return tasks
