"""Check the classroom exercises against minirai itself.

    python tutorials/check_exercises.py                 # every task, from tutorials/exercises.py
    python tutorials/check_exercises.py 1.1 2.1         # some tasks ("1.1", "task1.1" or "Task 1.1")
    python tutorials/check_exercises.py --solutions     # the reference solutions (tutorials/solutions.py)

Each task prints one line: PASS, FAIL (with what differs and a hint) or NOT DONE (the
function still raises ``NotImplementedError``).

* Task 1.1 ``tanh_backward``: compared with ``minirai.Tanh``'s backward, and a Tanh layer
  using your backward is checked by ``minirai.gradcheck`` (central finite differences).
* Task 1.2 ``sgd_momentum_update``: five steps compared with ``minirai.SGD(momentum=...)``,
  parameters and momentum buffer.
* Task 2.1 ``rai_table_gradient``: compared with ``grad_tables_as_input`` and
  ``grad_tables_as_target`` of a ``minirai.rai.RAI`` trainer on the same 2-block chain, and
  their sum with finite differences of the relaxed objective.

Exit status: 0 when every checked task passes; 1 when any task fails (a wrong result or an
exception in your code); 3 when none fails but some are NOT DONE; 2 for a usage error (an
unknown task name).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import traceback
from types import ModuleType
from typing import Callable

import numpy as np

import minirai
from minirai import backend
from minirai.gradcheck import check_gradients
from minirai.rai import RAI

HERE = os.path.dirname(os.path.abspath(__file__))
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_DONE = 0, 1, 2, 3


class Failed(Exception):
    """A check did not hold; the message says what differs."""


class NotDone(Exception):
    """The function still raises NotImplementedError."""


def call(function: Callable, *args):
    """Run the learner's function; NotImplementedError means NOT DONE, anything else is a failure."""
    try:
        return function(*args)
    except NotImplementedError as error:
        raise NotDone(str(error) or "NotImplementedError") from None
    except Exception as error:   # noqa: BLE001 - any error in the learner's code is reported, not raised
        where = traceback.extract_tb(error.__traceback__)[-1]
        raise Failed(f"your code raised {type(error).__name__}: {error} "
                     f"({os.path.basename(where.filename)}, line {where.lineno})") from None


def compare(name: str, got, expected: np.ndarray, rtol: float = 1e-7, atol: float = 1e-12) -> float:
    """Shape and values of ``got`` against ``expected``; returns the largest absolute difference."""
    if got is None:
        raise Failed(f"{name}: your function returned None (did you forget `return`?)")
    got = np.asarray(got)
    if got.shape != expected.shape:
        raise Failed(f"{name}: shape {got.shape}, expected {expected.shape}")
    error = float(np.abs(got - expected).max()) if got.size else 0.0
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        raise Failed(f"{name}: largest difference {error:.3g} (expected values up to "
                     f"{float(np.abs(expected).max()):.3g})")
    return error


# -- Task 1.1 ---------------------------------------------------------------------------------------
def check_tanh_backward(module: ModuleType) -> str:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 4))
    dy = rng.standard_normal((5, 4))
    reference = minirai.Tanh()
    y = reference.forward(x)
    expected = reference.backward(dy).copy()
    y_in, dy_in = y.copy(), dy.copy()
    error = compare("dx", call(module.tanh_backward, y_in, dy_in), expected)
    if not (np.array_equal(y_in, y) and np.array_equal(dy_in, dy)):
        raise Failed("your function modified y or dy in place; compute dx as a new array")

    class LearnerTanh(minirai.Tanh):
        def backward(self, dy):
            self.grad_output = dy
            self.grad_input = call(module.tanh_backward, self.y, dy)
            return self.grad_input

    result = minirai.gradcheck(LearnerTanh(), x, raise_on_failure=False, verbose=False)
    if not result.ok:
        raise Failed(f"gradcheck failed:\n{result.table()}")
    return f"matches minirai.Tanh (max diff {error:.1e}); gradcheck worst rel. error {result.max_rel_error:.1e}"


# -- Task 1.2 ---------------------------------------------------------------------------------------
def check_sgd_momentum(module: ModuleType) -> str:
    rng = np.random.default_rng(12)
    worst = 0.0
    for lr, momentum in ((0.1, 0.9), (0.05, 0.5), (0.1, 0.0)):
        start = rng.standard_normal((3, 4))
        grads = [rng.standard_normal((3, 4)) for _ in range(5)]
        engine_p, engine_g = start.copy(), np.zeros_like(start)
        optimizer = minirai.SGD([(engine_p, engine_g)], lr=lr, momentum=momentum)
        param, buf = start.copy(), rng.uniform(-100, 100, start.shape)   # the first step must overwrite buf
        for step, g in enumerate(grads):
            engine_g[...] = g
            optimizer.step()
            g_in = g.copy()
            call(module.sgd_momentum_update, param, g_in, buf, lr, momentum, step == 0)
            if not np.array_equal(g_in, g):
                raise Failed("your function modified grad; only param and buf should change")
            if step == 0 and np.array_equal(param, start):
                raise Failed("param did not change: update it in place (param -= ...), "
                             "rebinding the name (param = param - ...) is invisible to the caller")
            what = f"lr={lr}, momentum={momentum}, step {step + 1}"
            try:
                worst = max(worst, compare(f"param ({what})", param, engine_p))
                if momentum:
                    compare(f"momentum buffer ({what})", buf, optimizer.state[0]["momentum_buffer"])
            except Failed as error:
                hint = " (on the first step the buffer is set to the gradient, b ← g)" if step == 0 else ""
                raise Failed(f"{error}{hint}") from None
    return f"5 steps x 3 settings match minirai.SGD (max diff {worst:.1e})"


# -- Task 2.1 ---------------------------------------------------------------------------------------
def check_rai_table_gradient(module: ModuleType) -> str:
    rng = np.random.default_rng(21)
    N, D, H, lam = 6, 3, 4, 0.7
    f64 = np.float64
    model = minirai.Sequential(minirai.Linear(D, H, rng=1, dtype=f64), minirai.Tanh(),
                               minirai.Linear(H, 1, rng=2, dtype=f64), minirai.Sigmoid())
    X = rng.standard_normal((N, D))
    labels = np.array([0, 1, 1, 0, 1, 0])
    trainer = RAI(model, X, labels, minirai.BCE(), cuts=[2], lam=lam)   # cut after the Tanh
    trainer.tables[0] += 0.3 * rng.standard_normal(trainer.tables[0].shape)  # off the forward pass
    trainer.forward()
    trainer.backward()
    expected_input = trainer.grad_tables_as_input[0].copy()
    expected_target = trainer.grad_tables_as_target[0].copy()

    W1, b1 = model.layers[0].params["W"].copy(), model.layers[0].params["b"].copy()
    W2, b2 = model.layers[2].params["W"].copy(), model.layers[2].params["b"].copy()
    Z = trainer.tables[0].copy()
    y = labels.reshape(-1, 1).astype(f64)
    answer = call(module.rai_table_gradient, X.copy(), Z, y, W1, b1, W2, b2, lam)
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise Failed(f"return a pair (as_input, as_target), got {type(answer).__name__}")
    as_input, as_target = answer
    e1 = compare("as_input (vs trainer.grad_tables_as_input)", as_input, expected_input)
    e2 = compare("as_target (vs trainer.grad_tables_as_target)", as_target, expected_target)

    # and their sum against central finite differences of the relaxed objective
    total = np.asarray(as_input) + np.asarray(as_target)
    result = check_gradients(lambda: float(trainer.forward()), {"Z": trainer.tables[0]}, {"Z": total},
                             raise_on_failure=False, verbose=False)
    if not result.ok:
        raise Failed(f"as_input + as_target does not match finite differences:\n{result.table()}")
    return (f"matches the RAI trainer (max diffs {e1:.1e}, {e2:.1e}); "
            f"sum vs finite differences {result.max_rel_error:.1e}")


TASKS: dict[str, tuple[str, Callable[[ModuleType], str]]] = {
    "1.1": ("Tanh backward", check_tanh_backward),
    "1.2": ("SGD with momentum", check_sgd_momentum),
    "2.1": ("RAI table gradient, 2 blocks", check_rai_table_gradient),
}


def load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def task_key(text: str) -> str:
    key = text.lower().replace("task", "").strip(" _-")
    if key not in TASKS:
        raise argparse.ArgumentTypeError(f"unknown task {text!r}; choose from {', '.join(TASKS)}")
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the minirai tutorial exercises (PASS / FAIL / NOT DONE).")
    parser.add_argument("tasks", nargs="*", type=task_key, help=f"tasks to check ({', '.join(TASKS)}); default all")
    parser.add_argument("--solutions", action="store_true", help="check tutorials/solutions.py instead")
    args = parser.parse_args(argv)
    backend.set_device("cpu")           # the exercises are NumPy code
    source = "solutions.py" if args.solutions else "exercises.py"
    module = load(os.path.join(HERE, source), os.path.splitext(source)[0])
    print(f"checking tutorials/{source}")
    statuses = []
    for key in args.tasks or list(TASKS):
        title, check = TASKS[key]
        try:
            detail, status = check(module), "PASS"
        except NotDone as error:
            detail, status = f"still raises NotImplementedError({error})", "NOT DONE"
        except Failed as error:
            detail, status = str(error), "FAIL"
        except Exception as error:   # noqa: BLE001 - a checker bug must not hide the other tasks
            detail, status = f"the checker itself failed: {type(error).__name__}: {error}", "FAIL"
        statuses.append(status)
        first, *rest = detail.splitlines() or [""]
        print(f"Task {key}  {title:<30} {status:<8} {first}")
        for line in rest:
            print("    " + line)
    if "FAIL" in statuses:
        return EXIT_FAIL
    if "NOT DONE" in statuses:
        return EXIT_NOT_DONE
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
