"""``minirai check``: grade a learner's exercise functions against minirai itself.

    minirai check                       # every task in tutorials/exercises.py
    minirai check 2 7                   # some tasks (by id, or by function name)
    minirai check --file my_answers.py  # another file
    minirai check --list                # one line per task: id, function, what it is
    minirai check --solutions           # the reference solutions (tutorials/solutions.py)

Each task prints one line: PASS, NOT DONE (the function is missing or still raises
``NotImplementedError``) or FAIL, which names the array, the index, the expected and the got
value, and, where it recognises it, the mistake: a flipped sign, a transposition, a missing
or extra factor (1/N, λ, 2, ...), zeros, swapped parts, one-sided differences, an input
changed in place. An exception in the learner's code is reported as the task and the line
that raised it. Exit status: 0 all checked tasks pass, 1 some fail, 3 none fails but some are
not done, 2 a usage error.

Each check compares with minirai's own layers, losses and optimizers (the textbook path), so
a learner's function that passes computes what the engine computes.
"""
from __future__ import annotations

import importlib.util
import math
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_DONE = 0, 1, 2, 3


class Failed(Exception):
    """A check did not hold; the message says what differs (and, if recognised, why)."""


class NotDone(Exception):
    """The function is missing, or still raises NotImplementedError."""


# -- calling the learner's code --------------------------------------------------------------------
def call(module: ModuleType, name: str, *args: Any, **kwargs: Any) -> Any:
    """Run the learner's ``name``; NotImplementedError (or no such function) is NOT DONE, and any
    other exception a failure naming the file and line that raised it."""
    function = getattr(module, name, None)
    if not callable(function):
        raise NotDone(f"there is no function {name}() in {Path(getattr(module, '__file__', '?')).name}")
    try:
        with np.errstate(all="ignore"):       # overflow in the learner's exp is diagnosed, not warned about
            return function(*args, **kwargs)
    except NotImplementedError as error:
        raise NotDone(f"{name}() still raises NotImplementedError({error})") from None
    except KeyboardInterrupt:
        raise
    except BaseException as error:      # noqa: BLE001 - any error in the learner's code (exit() too) is reported
        frames = [f for f in traceback.extract_tb(error.__traceback__)
                  if os.path.abspath(f.filename) == os.path.abspath(getattr(module, "__file__", ""))]
        if not frames and isinstance(error, TypeError):     # raised by the call itself: the parameters
            import inspect
            raise Failed(f"{name}() could not be called as the grader calls it ({error}); it expects the "
                         f"parameters of the stub: {name}{inspect.signature(function)} was given "
                         f"{len(args) + len(kwargs)} arguments") from None
        where = frames[-1] if frames else traceback.extract_tb(error.__traceback__)[-1]
        what = "called exit()" if isinstance(error, SystemExit) else f"raised {type(error).__name__}"
        raise Failed(f"{name}() {what} at {Path(where.filename).name} line {where.lineno}"
                     + (f": {error}" if str(error) and not isinstance(error, SystemExit) else "")) from None


# -- comparing, and recognising the usual mistakes ---------------------------------------------------
def array_of(name: str, got: Any, expected: np.ndarray) -> np.ndarray:
    if got is None:
        raise Failed(f"{name}: your function returned None (a missing `return`?)")
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Failed(f"{name}: expected an array of shape {expected.shape}, got {type(got).__name__}") from None
    if got.shape != expected.shape:
        if got.ndim == 2 and got.T.shape == expected.shape:
            raise Failed(f"{name}: shape {got.shape}, expected {expected.shape}: it is transposed")
        raise Failed(f"{name}: shape {got.shape}, expected {expected.shape}")
    return got


def close(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-6, atol: float = 1e-10) -> bool:
    return bool(np.all(np.isfinite(got))) and np.allclose(got, expected, rtol=rtol, atol=atol)


def diagnosis(got: np.ndarray, expected: np.ndarray, factors: dict[str, float]) -> str:
    """A one-line name for how ``got`` differs from ``expected``, or "" when none is recognised."""
    if not np.all(np.isfinite(got)):
        return "it holds NaN or inf"
    if not np.any(got) and np.any(expected):
        return "you returned zeros"
    if close(got, -expected):
        return "the sign is flipped (you negated it)"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and close(got.T, expected):
        return "it is transposed"
    big = np.abs(expected) > 1e-8 * max(1.0, float(np.abs(expected).max()))
    if big.any():
        ratio = float(np.median(got[big] / expected[big]))
        if ratio and close(got, ratio * expected):
            for label, value in factors.items():
                for sign, signed in ((1, ""), (-1, "the sign is flipped and ")):
                    if math.isclose(ratio, sign * value, rel_tol=1e-6):
                        return (f"{signed}a factor {label} too many, or 1/{label} missing "
                                f"(yours is {abs(ratio):.3g} × the expected)")
                    if math.isclose(ratio, sign / value, rel_tol=1e-6):
                        return (f"{signed}a factor {label} missing, or 1/{label} too many "
                                f"(yours is {abs(ratio):.3g} × the expected)")
            return f"yours is {ratio:.4g} × the expected"
    return ""


def compare(name: str, got: Any, expected: np.ndarray, factors: dict[str, float] | None = None,
            rtol: float = 1e-6, atol: float = 1e-10) -> float:
    """``got`` against ``expected``: a Failed naming the first wrong index, both values and the
    recognised mistake. Returns the largest difference."""
    expected = np.asarray(expected, dtype=np.float64)
    got = array_of(name, got, expected)
    if close(got, expected, rtol, atol):
        return float(np.abs(got - expected).max()) if got.size else 0.0
    wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol) | ~np.isfinite(got)
    index = tuple(int(i) for i in np.argwhere(wrong)[0]) if got.ndim else ()
    what = diagnosis(got, expected, factors or {})
    at = f" at index {index}" if index else ""
    raise Failed(f"{name}{at}: expected {expected[index]:.6g}, got {got[index]:.6g}" + (f": {what}" if what else ""))


def check_updated(name: str, before: np.ndarray, after: np.ndarray, expected: np.ndarray) -> None:
    """An array the function must update in place, which it left as it was (a rebinding)."""
    if np.array_equal(before, after) and not np.array_equal(before, expected):
        raise Failed(f"{name} did not change: update it in place ({name}[...] = ..., {name} -= ...); rebinding "
                     f"the name ({name} = ...) changes nothing outside your function")


def parts(got: Any, count: int, names: str) -> tuple:
    """A returned tuple (or list) of ``count`` parts, or a Failed saying what to return."""
    if not (isinstance(got, (tuple, list)) and len(got) == count):
        raise Failed(f"return {names}, got {type(got).__name__}"
                     + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
    return tuple(got)


def number(name: str, got: Any) -> float:
    """A returned loss as a float (a Python number, a NumPy scalar or a size-1 array)."""
    try:
        value = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Failed(f"{name}: expected a number, got {type(got).__name__}") from None
    if value.size != 1:
        raise Failed(f"{name}: expected a number, got an array of shape {value.shape}")
    return float(value.reshape(-1)[0])


def check_unchanged(name: str, before: np.ndarray, after: np.ndarray) -> None:
    if not np.array_equal(before, after, equal_nan=True):
        raise Failed(f"your function changed its input {name} in place; leave it as you found it")


# -- the tasks -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    id: str
    function: str
    chapter: str
    title: str
    check: Callable[[ModuleType], str]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def check_linear_forward(module: ModuleType) -> str:
    import minirai
    x = _rng(1).standard_normal((5, 3))
    layer = minirai.Linear(3, 4, rng=2, dtype=np.float64)
    W, b = layer.params["W"].copy(), layer.params["b"].copy()
    expected = layer.forward(x)
    got = call(module, "linear_forward", x.copy(), W.copy(), b.copy())
    error = compare("y", got, expected)
    return f"matches minirai.Linear.forward (max diff {error:.1e})"


def check_linear_backward(module: ModuleType) -> str:
    import minirai
    rng = _rng(3)
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    layer = minirai.Linear(3, 4, rng=4, dtype=np.float64)
    layer.forward(x)
    dx = layer.backward(dy)
    expected = {"dx": dx, "dW": layer.grads["W"], "db": layer.grads["b"]}
    inputs = (x.copy(), layer.params["W"].copy(), dy.copy())
    got = parts(call(module, "linear_backward", *inputs), 3, "the triple (dx, dW, db)")
    names = list(expected)
    for i, name in enumerate(names):           # parts in the wrong places?
        value = np.asarray(got[i], dtype=np.float64) if got[i] is not None else None
        if value is not None and value.shape != expected[name].shape:
            for other in names:
                if other != name and value.shape == expected[other].shape and close(value, expected[other]):
                    raise Failed(f"{name}: you returned {other} in its place (the parts are swapped; "
                                 "return (dx, dW, db))")
    worst = max(compare(name, got[i], expected[name], {"N": 5.0}) for i, name in enumerate(names))
    for name, before, after in zip(("x", "W", "dy"), (x, layer.params["W"], dy), inputs):
        check_unchanged(name, before, after)
    return f"dx, dW, db match minirai.Linear.backward (max diff {worst:.1e})"


def check_activation_backward(module: ModuleType, name: str, layer_class: str) -> str:
    import minirai
    rng = _rng(5)
    x, dy = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    layer = getattr(minirai, layer_class)()
    y = layer.forward(x)
    expected = layer.backward(dy).copy()
    y_in, dy_in = y.copy(), dy.copy()
    error = compare("dx", call(module, name, y_in, dy_in), expected, {"2": 2.0})
    check_unchanged("y", y, y_in)
    check_unchanged("dy", dy, dy_in)

    class Learner(getattr(minirai, layer_class)):
        def backward(self, grad):
            return call(module, name, self.y, grad)

    result = minirai.gradcheck(Learner(), x, raise_on_failure=False, verbose=False)
    if not result.ok:
        raise Failed(f"a {layer_class} with your backward fails minirai.gradcheck:\n{result.table()}")
    return (f"matches minirai.{layer_class} (max diff {error:.1e}); "
            f"gradcheck worst rel. error {result.max_rel_error:.1e}")


def check_bce_backward(module: ModuleType) -> str:
    import minirai
    rng = _rng(6)
    p = rng.uniform(0.05, 0.95, (8, 1))
    t = rng.integers(0, 2, (8, 1)).astype(np.float64)
    loss = minirai.BCE()
    loss.forward(p, t)
    expected = loss.backward()
    p_in, t_in = p.copy(), t.copy()
    error = compare("dp", call(module, "bce_backward", p_in, t_in), expected, {"M": 8.0})   # M = N·D entries
    check_unchanged("p", p, p_in)
    return f"matches minirai.BCE.backward (max diff {error:.1e})"


def check_numerical_gradient(module: ModuleType) -> str:
    rng = _rng(7)
    x = rng.standard_normal((3, 4))
    A = rng.standard_normal((3, 4))
    eps = 1e-5

    def f() -> float:
        return float(np.sum(np.sin(x) * A) + np.sum(x ** 3))

    exact = np.cos(x) * A + 3 * x ** 2
    before = x.copy()
    got = call(module, "numerical_gradient", f, x, eps)
    if not np.array_equal(x, before):
        raise Failed("x is not as you found it after your function: put back each entry you perturbed "
                     "(x[i] = original, not x[i] -= eps after a + eps, which rounds)")
    got = array_of("grad", got, exact)
    one_sided = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        original = x[index]
        x[index] = original + eps
        plus = f()
        x[index] = original
        one_sided[index] = (plus - f()) / eps
    if not close(got, exact, rtol=1e-7, atol=1e-8):
        if close(got, one_sided, rtol=1e-9, atol=1e-9):
            raise Failed("grad: these are one-sided differences (f(x+eps) - f(x)) / eps; central differences "
                         "(f(x+eps) - f(x-eps)) / (2 eps) are far more accurate")
    error = compare("grad", got, exact, {"2": 2.0}, rtol=1e-7, atol=1e-8)
    return f"central differences match the exact gradient (max diff {error:.1e})"


def check_softmax_cross_entropy(module: ModuleType) -> str:
    import minirai
    rng = _rng(8)
    worst = 0.0
    for scale in (1.0, 1000.0):                 # the second: logits large enough to overflow exp
        logits = scale * rng.standard_normal((6, 4))
        if scale > 1:
            logits += rng.uniform(-5e4, 5e4, (6, 1))    # and rows far apart: one global max is not enough
        labels = rng.integers(0, 4, 6)
        loss = minirai.SoftmaxCrossEntropy()
        value = float(loss.forward(logits, labels))
        expected_grad = loss.backward()
        got_loss, got_grad = parts(call(module, "softmax_cross_entropy", logits.copy(), labels.copy()), 2,
                                   "the pair (loss, dlogits)")
        if np.ndim(got_loss) == 2 and np.ndim(got_grad) == 0:
            raise Failed("the parts are swapped: return (loss, dlogits)")
        for part, what in ((got_loss, "loss"), (got_grad, "dlogits")):
            if part is None:
                raise Failed(f"{what} is None: return (loss, dlogits)")
        large = " with large logits" if scale > 1 else ""
        loss_value = number(f"loss{large}", got_loss)
        grad = array_of(f"dlogits{large}", got_grad, expected_grad)
        if not np.all(np.isfinite(grad)):
            raise Failed(f"dlogits holds NaN or inf{large}: exp overflowed; subtract each row's maximum from its "
                         "logits first (softmax does not change)")
        if not np.isfinite(loss_value):
            raise Failed(f"the loss is {loss_value}{large}: a probability underflowed to 0 before the log; "
                         "compute log-softmax as shifted - log Σ exp(shifted), not log(softmax)")
        worst = max(worst, compare(f"loss{large}", np.array(loss_value), np.array(value), {"N": 6.0}),
                    compare(f"dlogits{large}", grad, expected_grad, {"N": 6.0}))
    return f"loss and dlogits match minirai.SoftmaxCrossEntropy, large logits included (max diff {worst:.1e})"


def check_sgd_momentum(module: ModuleType) -> str:
    import minirai
    rng = _rng(12)
    worst = 0.0
    for lr, momentum in ((0.1, 0.9), (0.05, 0.5), (0.1, 0.0)):
        start = rng.standard_normal((3, 4))
        grads = [rng.standard_normal((3, 4)) for _ in range(4)]
        engine_p, engine_g = start.copy(), np.zeros_like(start)
        optimizer = minirai.SGD([(engine_p, engine_g)], lr=lr, momentum=momentum)
        param, buf = start.copy(), rng.uniform(-100, 100, start.shape)   # the first step must overwrite buf
        for step, g in enumerate(grads):
            engine_g[...] = g
            garbage, before, engine_before = buf.copy(), param.copy(), engine_p.copy()
            optimizer.step()
            g_in = g.copy()
            call(module, "sgd_momentum_update", param, g_in, buf, lr, momentum, step == 0)
            check_unchanged("grad", g, g_in)
            check_updated("param", before, param, engine_p)
            what = f"lr={lr}, momentum={momentum}, step {step + 1}"
            if momentum:
                check_updated("buf", garbage, buf, optimizer.state[0]["momentum_buffer"])
                if step == 0 and close(buf, momentum * garbage + g):
                    raise Failed(f"momentum buffer ({what}): on the first step the buffer is the gradient "
                                 "itself; it held garbage, which you kept")
            worst = max(worst, compare(f"the step param moved ({what})", param - before, engine_p - engine_before,
                                       {"lr": lr}))
            if momentum:
                compare(f"momentum buffer ({what})", buf, optimizer.state[0]["momentum_buffer"], {"lr": lr})
    return f"4 steps x 3 settings match minirai.SGD (max diff {worst:.1e})"


def check_adam(module: ModuleType) -> str:
    import minirai
    rng = _rng(13)
    start = rng.standard_normal((3, 4))
    engine_p, engine_g = start.copy(), np.zeros_like(start)
    lr, betas, eps = 0.01, (0.8, 0.99), 1e-3         # not the defaults, and an ε large enough to matter
    optimizer = minirai.Adam([(engine_p, engine_g)], lr=lr, betas=betas, eps=eps)
    param, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    worst = 0.0
    for t in range(1, 6):
        g = 0.05 * rng.standard_normal(start.shape)
        engine_g[...] = g
        before, engine_before, m_before, v_before = param.copy(), engine_p.copy(), m.copy(), v.copy()
        optimizer.step()
        call(module, "adam_update", param, g.copy(), m, v, t, lr, betas, eps)
        state = optimizer.state[0]
        for name, old, new, expected in (("param", before, param, engine_p), ("m", m_before, m, state["m"]),
                                         ("v", v_before, v, state["v"])):
            check_updated(name, old, new, expected)
        no_correction = -lr * state["m"] / (np.sqrt(state["v"]) + eps)
        if t == 1 and close(param - before, no_correction, rtol=1e-5):
            raise Failed("param at step 1: these are the steps without bias correction; divide m by (1 - β1^t) "
                         "and v by (1 - β2^t)")
        worst = max(worst, compare(f"the step param moved (step {t})", param - before, engine_p - engine_before,
                                   {"lr": lr}))
        compare(f"m (step {t})", m, state["m"])
        compare(f"v (step {t})", v, state["v"])
    return f"5 steps match minirai.Adam: the steps, m and v (max diff {worst:.1e})"


def check_rprop(module: ModuleType) -> str:
    import minirai
    rng = _rng(14)
    etas, step_sizes = (0.4, 1.3), (0.05, 0.15)      # not the defaults: the clip is reached within 6 steps
    start = rng.standard_normal(12)
    engine_p, engine_g = start.copy(), np.zeros(12)
    optimizer = minirai.Rprop([(engine_p, engine_g)], lr=0.1, etas=etas, step_sizes=step_sizes)
    param, prev_grad, step = start.copy(), np.zeros(12), np.full(12, 0.1)
    signs = rng.choice([-1.0, 1.0], size=(6, 12))
    signs[:, :3] = 1.0                                   # some entries keep their sign (their Δ grows)
    signs[2:4, 3] = 0.0                                  # and one gradient is exactly 0 for two steps
    worst = 0.0
    for k in range(6):
        g = signs[k] * rng.uniform(0.5, 2.0, 12)
        engine_g[...] = g
        before, step_before = param.copy(), step.copy()
        optimizer.step()
        call(module, "rprop_update", param, g.copy(), prev_grad, step, etas, step_sizes)
        state = optimizer.state[0]
        check_updated("param", before, param, engine_p)
        check_updated("step", step_before, step, state["step_size"])
        flipped = state["prev_sign"] == 0
        if k and (flipped & (signs[k] != 0)).any() and not np.allclose(param[flipped], before[flipped]):
            raise Failed(f"param (step {k + 1}): an entry whose gradient changed sign moved; on a sign flip "
                         "Rprop skips that entry's move, and the next step treats it as having no previous sign")
        worst = max(worst, compare(f"step sizes (step {k + 1})", step, state["step_size"],
                                   {"η+": etas[1], "η-": etas[0]}))
        compare(f"param (step {k + 1})", param, engine_p)
        compare(f"sign of prev_grad (step {k + 1})", np.sign(prev_grad), state["prev_sign"])
    return f"6 steps match minirai.Rprop: param and step sizes (max diff {worst:.1e})"


def _two_blocks(lam: float) -> tuple[Any, ...]:
    """The 2-block RAI chain of tasks 11 and 12, its trainer, and the arrays the learner gets."""
    import minirai
    from .rai import RAI
    rng = _rng(21)
    N, D, H = 6, 3, 4
    model = minirai.Sequential(minirai.Linear(D, H, rng=1, dtype=np.float64), minirai.Tanh(),
                               minirai.Linear(H, 1, rng=2, dtype=np.float64), minirai.Sigmoid())
    X = rng.standard_normal((N, D))
    labels = np.array([0, 1, 1, 0, 1, 0])
    trainer = RAI(model, X, labels, minirai.BCE(), cuts=[2], lam=lam)       # cut after the Tanh
    trainer.tables[0] += 0.3 * rng.standard_normal(trainer.tables[0].shape)  # off the forward pass
    arrays = (X.copy(), trainer.tables[0].copy(), labels.reshape(-1, 1).astype(np.float64),
              model.layers[0].params["W"].copy(), model.layers[0].params["b"].copy(),
              model.layers[2].params["W"].copy(), model.layers[2].params["b"].copy())
    return trainer, arrays


def check_relaxed_loss(module: ModuleType) -> str:
    lam = 0.7
    trainer, arrays = _two_blocks(lam)
    expected = float(trainer.forward())
    got = number("L", call(module, "rai_relaxed_loss", *arrays, lam))
    output, hidden = float(trainer.output_loss), float(trainer.hidden_values[0])
    N, H = arrays[1].shape
    if not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12):
        for value, what in ((output + hidden, "you forgot λ on the hidden loss"),
                            (output, "the hidden loss is missing"),
                            (output + lam * hidden * N * H, "the hidden loss is a sum; MSE is the mean over N·H"),
                            (output * N + lam * hidden, "the output loss is a sum; BCE is the mean over N"),
                            (output - lam * hidden, "the sign of the hidden term is flipped")):
            if math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-12):
                raise Failed(f"L: expected {expected:.6g}, got {got:.6g}: {what}")
        raise Failed(f"L: expected {expected:.6g}, got {got:.6g}")
    return f"matches the RAI trainer's relaxed loss ({expected:.6f})"


def check_rai_table_gradient(module: ModuleType) -> str:
    from .gradcheck import check_gradients
    lam = 0.7
    trainer, arrays = _two_blocks(lam)
    trainer.forward()
    trainer.backward()
    expected_input = trainer.grad_tables_as_input[0].copy()
    expected_target = trainer.grad_tables_as_target[0].copy()
    got = parts(call(module, "rai_table_gradient", *arrays, lam), 2, "the pair (as_input, as_target)")
    as_input, as_target = (array_of(name, value, expected_input) for name, value in
                           zip(("as_input", "as_target"), got))
    if close(as_input, expected_target) and close(as_target, expected_input):
        raise Failed("as_input and as_target are swapped: return (as_input, as_target)")
    N, H = arrays[1].shape
    e1 = compare("as_input", as_input, expected_input, {"N": N})
    e2 = compare("as_target", as_target, expected_target, {"λ": lam, "N·H": N * H, "2": 2.0, "H": H, "N": N})
    total = as_input + as_target
    result = check_gradients(lambda: float(trainer.forward()), {"Z": trainer.tables[0]}, {"Z": total},
                             raise_on_failure=False, verbose=False)
    if not result.ok:
        raise Failed(f"as_input + as_target does not match finite differences:\n{result.table()}")
    return f"matches the RAI trainer (max diffs {e1:.1e}, {e2:.1e}); the sum matches finite differences"


TASKS: list[Task] = [
    Task("1", "linear_forward", "01 backprop by hand", "Linear forward", check_linear_forward),
    Task("2", "linear_backward", "01 backprop by hand", "Linear backward: dx, dW, db", check_linear_backward),
    Task("3", "sigmoid_backward", "01 backprop by hand", "Sigmoid backward",
         lambda m: check_activation_backward(m, "sigmoid_backward", "Sigmoid")),
    Task("4", "tanh_backward", "01 backprop by hand", "Tanh backward",
         lambda m: check_activation_backward(m, "tanh_backward", "Tanh")),
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


def find_task(text: str) -> Task:
    """A task by id ("7", "task7", "Task 7") or function name."""
    key = text.lower().replace("task", "").strip(" _-")
    for task in TASKS:
        if key in (task.id, task.function):
            return task
    raise ValueError(f"unknown task {text!r}; `minirai check --list` lists them")


def load_module(path: str | Path) -> ModuleType:
    """Import the learner's file; a syntax or import error there is a clear ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no exercise file at {str(path)!r} (give one with --file)")
    spec = importlib.util.spec_from_file_location(f"exercises_{abs(hash(str(path.resolve())))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        with np.errstate(all="ignore"):
            spec.loader.exec_module(module)    # type: ignore[union-attr]
    except KeyboardInterrupt:
        raise
    except BaseException as error:          # noqa: BLE001 - the learner's file, reported (exit() too)
        where = [f for f in traceback.extract_tb(error.__traceback__)
                 if os.path.abspath(f.filename) == os.path.abspath(path)]
        line = where[-1].lineno if where else getattr(error, "lineno", "?")
        what = "calls exit()" if isinstance(error, SystemExit) else f"does not import: {type(error).__name__}"
        raise ValueError(f"{path.name} {what} at line {line}"
                         + (f": {error}" if not isinstance(error, SystemExit) else "")) from None
    return module


def tutorials_folder() -> Path:
    """``tutorials/`` of the working directory, else of the minirai checkout this package is in."""
    here = Path("tutorials")
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "tutorials"


def run(tasks: list[str], file: str | None = None, solutions: bool = False, out: Any = None) -> int:
    """Grade ``tasks`` (all if empty) of ``file``; print one line per task; return the exit status."""
    out = out or sys.stdout
    from . import backend
    chosen = [find_task(t) for t in tasks] or TASKS
    path = Path(file) if file else tutorials_folder() / ("solutions.py" if solutions else "exercises.py")
    module = load_module(path)
    previous = backend.use_module(np)      # the exercises are NumPy code
    statuses = []
    try:
        print(f"checking {path}", file=out)
        for task in chosen:
            try:
                detail, status = task.check(module), "PASS"
            except NotDone as error:
                detail, status = str(error), "NOT DONE"
            except Failed as error:
                detail, status = str(error), "FAIL"
            except Exception as error:      # noqa: BLE001 - a checker bug must not hide the other tasks
                detail, status = f"the checker itself failed: {type(error).__name__}: {error}", "FAIL"
            statuses.append(status)
            first, *rest = detail.splitlines() or [""]
            print(f"{task.id:>2} {task.function:<22} {status:<8} {first}", file=out)
            for line in rest:
                print("      " + line, file=out)
    finally:
        backend.use_module(previous)
    if "FAIL" in statuses:
        return EXIT_FAIL
    return EXIT_NOT_DONE if "NOT DONE" in statuses else EXIT_PASS


def list_tasks(out: Any = None) -> None:
    for task in TASKS:
        print(f"{task.id} {task.function}  ({task.title}; chapter {task.chapter})", file=out or sys.stdout)
