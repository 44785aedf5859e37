"""Sequential: clear shape errors, parameter bookkeeping, and chained gradients equal PyTorch's."""
from __future__ import annotations

import numpy as np
import pytest

import minirai
from minirai import backend
from minirai.layers import Linear, ReLU, Sigmoid, Tanh
from minirai.losses import BCE
from minirai.network import Sequential, mlp


def test_width_mismatch_at_construction_names_both_layers_and_shapes():
    """Linear(2→3), ReLU, Linear(4→1): a ValueError naming layer 0 with (N, 3) and layer 2 with (N, 4)."""
    with pytest.raises(ValueError) as info:
        Sequential(Linear(2, 3, rng=0), ReLU(), Linear(4, 1, rng=0))
    message = str(info.value)
    assert "layer 0" in message and "(N, 3)" in message
    assert "layer 2" in message and "(N, 4)" in message


def test_forward_with_wrong_input_width_names_layer_and_both_shapes(xp):
    """Inputs (5, 3) into a net expecting (N, 2): ValueError naming layer 0, (N, 2) and (5, 3)."""
    model = mlp([2, 4, 1], seed=0)
    with pytest.raises(ValueError) as info:
        model.forward(xp.zeros((5, 3), dtype=np.float32))
    message = str(info.value)
    assert "layer 0" in message and "(N, 2)" in message and "(5, 3)" in message


def test_non_layer_items_are_a_type_error():
    """Anything but a minirai Layer (a NumPy function, a name) is a TypeError naming its position and type."""
    with pytest.raises(TypeError, match="item 1 must be a minirai Layer, got ufunc"):
        Sequential(Linear(2, 2, rng=0), np.tanh)
    with pytest.raises(TypeError, match="item 0 must be a minirai Layer, got str"):
        Sequential(["relu", Linear(2, 2, rng=0)])


def test_a_list_of_layers_is_accepted_and_slicing_shares_layers():
    """Sequential([...]) equals Sequential(*...); a slice is a Sequential over the same layer objects."""
    layers = [Linear(2, 3, rng=0), Tanh(), Linear(3, 1, rng=1), Sigmoid()]
    model = Sequential(layers)
    assert len(model) == 4 and list(model) == layers
    head = model[:2]
    assert isinstance(head, Sequential) and head.layers[0] is layers[0]
    assert model.in_features == 2 and model.out_features == 1 and model[2] is layers[2]


def test_parameters_named_parameters_and_zero_grad(xp):
    """Names are "layer.key"; pairs are the layers' own arrays; zero_grad zeroes them in place."""
    model = mlp([2, 3, 1], "relu", "sigmoid", seed=0)
    named = model.named_parameters()
    assert [name for name, _, _ in named] == ["0.W", "0.b", "2.W", "2.b"]
    assert named[2][1] is model.layers[2].params["W"] and named[2][2] is model.layers[2].grads["W"]
    assert [(p is q, g is h) for (p, g), (_, q, h) in zip(model.parameters(), named)] == [(True, True)] * 4
    x = xp.asarray(np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32))
    model.backward(xp.ones_like(model.forward(x)))
    grads = [g for _, g in model.parameters()]
    assert any(backend.to_numpy(g).any() for g in grads)
    model.zero_grad()
    assert all(not backend.to_numpy(g).any() for g in grads)
    assert all(a is b for (_, a), b in zip(model.parameters(), grads))   # in place, same arrays


def test_train_and_eval_reach_every_layer():
    """eval()/train() return the model and set ``training`` on it and on every layer."""
    model = mlp([2, 3, 1], seed=0)
    assert model.eval() is model
    assert model.training is False and all(layer.training is False for layer in model)
    assert model.train() is model
    assert model.training is True and all(layer.training is True for layer in model)


@pytest.mark.parametrize("sizes,activation,output,message", [
    ([2], "relu", "sigmoid", "at least an input and an output"),
    ([2, 3, 1], "no_such_activation", "sigmoid", "activation must be one of .*got 'no_such_activation'"),
    ([2, 3, 1], "relu", "no_such_output", "output_activation must be one of .*got 'no_such_output'"),
])
def test_mlp_bad_arguments(sizes, activation, output, message):
    """mlp with one size or an unknown activation is a ValueError saying which."""
    with pytest.raises(ValueError, match=message):
        mlp(sizes, activation, output)


def test_mlp_structure():
    """mlp([2, 42, 100, 100, 42, 1], "relu", "sigmoid") is the proposal's shallow net: 5 Linear + ReLUs + Sigmoid."""
    model = mlp([2, 42, 100, 100, 42, 1], "relu", "sigmoid", seed=0)
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Linear", "ReLU"] * 4 + ["Linear", "Sigmoid"]
    assert [tuple(p.shape) for _, p, _ in model.named_parameters()][::2] == [
        (2, 42), (42, 100), (100, 100), (100, 42), (42, 1)]
    assert model.dtype == np.float32


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_chained_gradients_equal_torch(activation):
    """Same weights (minirai W is (in, out), torch's is (out, in)): outputs, loss and all gradients agree."""
    torch = pytest.importorskip("torch")
    model = minirai.mlp([3, 5, 4, 1], activation, "sigmoid", seed=1, dtype=np.float64)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 3))
    y = rng.integers(0, 2, (7, 1)).astype(np.float64)

    torch_layers = []
    for layer in model:
        if isinstance(layer, Linear):
            linear = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor(layer.params["W"].T))
                linear.bias.copy_(torch.tensor(layer.params["b"]))
            torch_layers.append(linear)
        else:
            torch_layers.append({"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
                                 "sigmoid": torch.nn.Sigmoid}[type(layer).__name__.lower()]())
    torch_model = torch.nn.Sequential(*torch_layers)

    loss = BCE()
    pred = model.forward(x)
    value = loss.forward(pred, y)
    dx = model.backward(loss.backward())

    tx = torch.tensor(x, requires_grad=True)
    t_pred = torch_model(tx)
    t_value = torch.nn.functional.binary_cross_entropy(t_pred, torch.tensor(y))
    t_value.backward()

    np.testing.assert_allclose(pred, t_pred.detach().numpy(), rtol=1e-10)
    assert float(value) == pytest.approx(t_value.item(), rel=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-8, atol=1e-14)
    torch_linears = [m for m in torch_model if isinstance(m, torch.nn.Linear)]
    ours = [layer for layer in model if isinstance(layer, Linear)]
    for layer, linear in zip(ours, torch_linears):
        np.testing.assert_allclose(layer.grads["W"], linear.weight.grad.numpy().T, rtol=1e-8, atol=1e-14)
        np.testing.assert_allclose(layer.grads["b"], linear.bias.grad.numpy(), rtol=1e-8, atol=1e-14)


def test_hooks_see_forward_and_backward_and_can_be_removed():
    """A hook gets (layer, event, inputs, outputs) for forward and backward; the remover detaches it."""
    model = mlp([2, 3, 1], seed=0)
    seen = []
    remove = model[1].register_hook(lambda layer, event, i, o: seen.append((event, i.shape, o.shape)))
    x = np.ones((4, 2), dtype=np.float32)
    model.backward(np.ones_like(model.forward(x)))
    assert seen == [("forward", (4, 3), (4, 3)), ("backward", (4, 3), (4, 3))]
    remove()
    model.forward(x)
    assert len(seen) == 2


def test_eval_mode_forward_keeps_no_cache_and_backward_then_says_why():
    """In eval mode no activation is kept (memory stays flat for big grids); backward is a clear error."""
    model = minirai.mlp([2, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
    X = np.random.default_rng(0).standard_normal((5000, 2)).astype(np.float32)
    model.eval()
    out = model.forward(X)
    assert out.shape == (5000, 1)
    assert all(layer.x is None for layer in model.layers)
    assert all(layer.y is None for layer in model.layers[:-1])
    with pytest.raises(RuntimeError, match="eval mode"):
        model.backward(np.ones_like(out))
    model.train()
    model.forward(X[:3])
    assert all(layer.x is not None for layer in model.layers)


def test_to_the_same_device_keeps_the_arrays_so_an_optimizer_still_trains():
    """model.to() on the CPU moves nothing: a packed model keeps its arrays and its optimizer works."""
    from minirai import backend
    model = minirai.mlp([2, 8, 1], "tanh", "sigmoid", seed=0)
    optimizer = minirai.SGD(model.parameters(), lr=0.1)
    before = [p for p, _ in model.parameters()]
    model.to(backend.xp())
    assert all(a is b for a, (b, _) in zip(before, model.parameters()))
    for _, g in model.parameters():
        g[...] = 1.0
    optimizer.step()
    assert not np.array_equal(model.parameters()[0][0], minirai.mlp([2, 8, 1], "tanh", "sigmoid", seed=0)
                              .parameters()[0][0])


def test_critical_gains_are_one_over_the_slope_at_zero():
    """critical() = (1/f'(0), f(0)): 4 and 1/2 for the sigmoid, 1 and 0 for tanh and identity; He's √2 for ReLUs."""
    from minirai.layers import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
    assert Sigmoid().critical() == (4.0, 0.5)
    assert Tanh().critical() == (1.0, 0.0) and Identity().critical() == (1.0, 0.0)
    assert ReLU().critical() == LeakyReLU(0.2).critical() == (np.sqrt(2.0), 0.0)


@pytest.mark.parametrize("name", sorted(minirai.layers.activations()))
def test_orthogonal_init_is_critical_for_each_activation(name):
    """init="orthogonal", for every activation defined (a learner's too): gain of the activation read, bias
    centring its value at 0."""
    cls = minirai.layers.activation(name)
    try:
        gain, mean = cls().critical()
    except (TypeError, ValueError):                 # (a test's own class with required settings, or no slope)
        pytest.skip(f"{name} cannot be made with defaults, or has no critical gain")
    model = mlp([3, 8, 8, 5], name, None, init="orthogonal", seed=0, dtype="float64")
    first, second, third = [layer for layer in model.layers if isinstance(layer, Linear)]
    np.testing.assert_allclose(first.params["W"] @ first.params["W"].T, np.eye(3), atol=1e-12)   # rows orthonormal
    np.testing.assert_allclose(second.params["W"].T @ second.params["W"], gain ** 2 * np.eye(8), atol=1e-12)
    np.testing.assert_allclose(third.params["W"].T @ third.params["W"], gain ** 2 * np.eye(5), atol=1e-12)
    np.testing.assert_allclose(second.params["b"], -mean * second.params["W"].sum(axis=0), atol=1e-12)
    assert not first.params["b"].any()


def test_orthogonal_init_keeps_the_deep_sigmoid_gradient_alive():
    """101 sigmoid layers: from the proposal's init the first layer's gradient vanishes (< 1e-20 of the
    last's); from the critical orthogonal init it stays within a factor 100."""
    from minirai import BCE
    X = np.random.default_rng(0).normal(size=(64, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    ratios = {}
    for init in ("uniform", "orthogonal"):
        model = mlp([2] + [100] * 100 + [1], "sigmoid", "sigmoid", init=init, seed=0, dtype="float64")
        loss = BCE()
        loss.forward(model.forward(X), loss.prepare_target(y, (64, 1), np.float64))
        model.backward(loss.backward())
        linears = [layer for layer in model.layers if isinstance(layer, Linear)]
        ratios[init] = np.linalg.norm(linears[1].grads["W"]) / np.linalg.norm(linears[-2].grads["W"])
    assert ratios["uniform"] < 1e-20
    assert 1e-2 < ratios["orthogonal"] < 1e2
