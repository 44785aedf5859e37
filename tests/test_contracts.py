"""Every built-in layer and optimizer, found by subclassing (no list of today's inventory), through the
generic checks of ``tests/contracts.py``: gradcheck, both paths byte for byte, the orthogonal init, save
and load with a resumed run equal to an uninterrupted one."""
from __future__ import annotations

import numpy as np
import pytest

from contracts import (built_in, check_both_paths, check_gradcheck, check_optimizer_on_both_paths,
                       check_orthogonal_init, check_save_and_load_a_layer, check_save_and_load_an_optimizer)
from minirai.layers import Activation, Layer
from minirai.optim import Optimizer

LAYERS = built_in(Layer, "minirai.layers")
ACTIVATIONS = [cls for cls in LAYERS if issubclass(cls, Activation)]
OPTIMIZERS = built_in(Optimizer, "minirai.optim")
LR = {"SGD": 0.1, "Adam": 1e-2, "Rprop": 0.05}      # a step size each rule trains this small net with


def test_the_inventory_is_found():
    """The discovery these tests rely on sees the built-in classes (a check of the checker)."""
    names = {cls.__name__ for cls in LAYERS}
    assert {"Linear", "Sigmoid", "Tanh", "ReLU"} <= names and "Activation" not in names
    assert {"SGD", "Adam", "Rprop"} <= {cls.__name__ for cls in OPTIMIZERS}


@pytest.mark.parametrize("cls", LAYERS, ids=lambda cls: cls.__name__)
def test_every_layer_passes_gradcheck(cls):
    check_gradcheck(cls)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", LAYERS, ids=lambda cls: cls.__name__)
def test_every_layer_gives_the_same_bytes_on_both_paths(cls, dtype):
    check_both_paths(cls, dtype)


@pytest.mark.parametrize("cls", ACTIVATIONS, ids=lambda cls: cls.__name__)
def test_every_activation_has_a_critical_orthogonal_init(cls):
    check_orthogonal_init(cls)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda cls: cls.__name__)
def test_every_layer_saves_and_loads_with_its_settings(cls, tmp_path):
    check_save_and_load_a_layer(cls, tmp_path)


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda cls: cls.__name__)
def test_every_optimizer_gives_the_same_bytes_on_both_paths(cls):
    check_optimizer_on_both_paths(cls, LR.get(cls.__name__, 1e-2))


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda cls: cls.__name__)
def test_every_optimizer_saves_and_loads_with_its_settings_and_state(cls, tmp_path):
    check_save_and_load_an_optimizer(cls, tmp_path, LR.get(cls.__name__, 1e-2))
