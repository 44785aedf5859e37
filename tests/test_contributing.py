"""CONTRIBUTING.md, done as it says: its example layer (Softplus, with a setting) and optimizer
(RMSprop) are run exactly as written there, with no other change to minirai, and pass the checks every
built-in class passes (``tests/contracts.py``): gradcheck; the same bytes on both paths in ``fit`` and in
``RAI.fit``, blocks with different settings included; ``init="orthogonal"``; save and load with their
settings. Also found by name (``mlp("softplus")``, ``MLPClassifier(solver="rmsprop")``)."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from contracts import (check_both_paths, check_gradcheck, check_optimizer_on_both_paths, check_orthogonal_init,
                       check_save_and_load_a_layer, check_save_and_load_an_optimizer)

import minirai

GUIDE = Path(__file__).resolve().parent.parent / "CONTRIBUTING.md"


def section_code(title: str) -> str:
    """The python code blocks of the section ``## title`` of CONTRIBUTING.md, joined."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, f"CONTRIBUTING.md's section {title!r} has no python code"
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def contributed():
    """The guide's code, run as the module ``contributed`` (as a learner's own file would be imported)."""
    module = types.ModuleType("contributed")
    sys.modules["contributed"] = module
    exec(compile(section_code("A layer") + "\n" + section_code("An optimizer"), str(GUIDE), "exec"), module.__dict__)
    yield module
    del sys.modules["contributed"]


def test_the_guides_layer_passes_gradcheck(contributed):
    check_gradcheck(contributed.Softplus, beta=1.7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_guides_layer_gives_the_same_bytes_on_both_paths(contributed, dtype):
    check_both_paths(contributed.Softplus, dtype)


def test_the_guides_layer_works_with_the_orthogonal_init(contributed):
    assert contributed.Softplus().critical() == pytest.approx((2.0, np.log(2.0)))   # 1/σ(0), log 2
    check_orthogonal_init(contributed.Softplus)
    model = minirai.mlp([2, 8, 8, 1], "softplus", "sigmoid", init="orthogonal")        # found by its name
    assert isinstance(model.layers[1], contributed.Softplus)


def test_the_guides_layer_saves_and_loads_with_its_settings(contributed, tmp_path):
    check_save_and_load_a_layer(contributed.Softplus, tmp_path)
    model = minirai.Sequential(minirai.Linear(2, 3), contributed.Softplus(beta=2.5))
    minirai.save(model, tmp_path / "net.npz")
    assert minirai.load(tmp_path / "net.npz").layers[1].beta == 2.5


def test_the_guides_optimizer_gives_the_same_bytes_on_both_paths(contributed):
    check_optimizer_on_both_paths(contributed.RMSprop, 1e-2, alpha=0.9)


def test_the_guides_optimizer_saves_and_loads_with_its_settings(contributed, tmp_path):
    check_save_and_load_an_optimizer(contributed.RMSprop, tmp_path, 1e-2, alpha=0.9)


def test_the_guides_optimizer_is_pytorchs_rmsprop(contributed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    param, grad = rng.normal(size=(4, 3)), np.zeros((4, 3))
    tensor = torch.tensor(param.copy(), requires_grad=True)
    ours = contributed.RMSprop([(param, grad)], lr=1e-2, alpha=0.9, eps=1e-8)
    theirs = torch.optim.RMSprop([tensor], lr=1e-2, alpha=0.9, eps=1e-8)
    for _ in range(5):
        grad[...] = rng.normal(size=(4, 3))
        tensor.grad = torch.tensor(grad.copy())
        ours.step()
        theirs.step()
    np.testing.assert_allclose(param, tensor.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_the_estimators_find_the_guides_classes_by_name(contributed):
    from minirai.estimators import MLPClassifier
    X, y = minirai.data.moons(n_samples=60, n_test=5).X_train.astype(np.float64), np.arange(60) % 2
    clf = MLPClassifier((8,), activation="softplus", solver="rmsprop", max_iter=5, random_state=0).fit(X, y)
    assert isinstance(clf.optimizer_, contributed.RMSprop) and isinstance(clf.model_.layers[1], contributed.Softplus)
