"""The CuPy-like stand-in (tests/fake_device.py) is as strict as CuPy with NumPy."""
import numpy as np
import pytest

import fake_device as fake
from minirai import backend


@pytest.fixture
def device():
    """Make the stand-in the active array module; restore NumPy afterwards."""
    backend.use_module(fake)
    yield fake
    backend.use_module(np)


def dev(values, dtype=np.float64):
    return fake.asarray(np.asarray(values, dtype=dtype))


# --- refusing NumPy -------------------------------------------------------------------

def test_implicit_conversion_to_numpy_is_refused():
    a = dev([1.0, 2.0])
    for convert in (np.asarray, np.array, lambda x: np.ascontiguousarray(x)):
        with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
            convert(a)
    assert not isinstance(a, np.ndarray)


@pytest.mark.parametrize("op", [
    lambda a, h: a + h, lambda a, h: h + a, lambda a, h: a * h, lambda a, h: a @ h,
    lambda a, h: np.maximum(a, h), lambda a, h: fake.maximum(a, h),
    lambda a, h: np.concatenate([a, h]), lambda a, h: fake.concatenate([a, h]),
    lambda a, h: fake.where(a > 0, a, h), lambda a, h: fake.exp(h),
])
def test_mixing_with_numpy_arrays_is_refused(op):
    with pytest.raises(TypeError, match=r"Unsupported type <class 'numpy.ndarray'>"):
        op(dev([1.0, 2.0]), np.ones(2))


def test_inplace_op_with_numpy_array_is_refused():
    a = dev([1.0, 2.0])
    with pytest.raises(TypeError, match="Unsupported type"):
        a += np.ones(2)


def test_scalars_and_0d_numpy_arrays_are_allowed():
    a = dev([1.0, 2.0])
    for s in (2, 2.0, np.float32(2), np.float64(2), np.array(2.0)):
        for r in (a + s, s * a, fake.maximum(a, s)):
            assert isinstance(r, fake.ndarray)
    np.testing.assert_allclose((a + np.array(2.0)).get(), [3.0, 4.0])


def test_get_and_asnumpy_return_numpy_copies():
    a = dev([1.0, 2.0])
    for host in (a.get(), fake.asnumpy(a)):
        assert type(host) is np.ndarray
        host[0] = 99.0
    assert a[0].item() == 1.0


def test_asarray_and_array_copy_host_data_to_the_device():
    host = np.arange(3.0)
    for a in (fake.asarray(host), fake.array(host), fake.asarray([0.0, 1.0, 2.0])):
        assert isinstance(a, fake.ndarray)
        np.testing.assert_array_equal(a.get(), host)
    a = fake.asarray(host)
    host[0] = 42.0
    assert a[0].item() == 0.0                       # a copy, not a view of host memory
    assert fake.asarray(a) is a
    assert fake.asarray(a, dtype=np.float32).dtype == np.float32


# --- computing on the device ------------------------------------------------------------

def test_device_arithmetic_stays_on_the_device():
    a, b = dev([[1.0, 2.0], [3.0, 4.0]]), dev([[1.0, 0.0], [0.0, 1.0]])
    for r in (a + b, a - b, a * b, a / 2, -a, abs(a), a ** 2, a @ b, a > b, a.T):
        assert isinstance(r, fake.ndarray)
    np.testing.assert_allclose((a @ b).get(), a.get())
    assert "device" in repr(a)


def test_numpy_functions_dispatch_to_the_device():
    a = dev([[0.0, 1.0], [2.0, 3.0]])
    for r in (np.exp(a), np.tanh(a), np.sum(a, axis=0), np.concatenate([a, a]), np.where(a > 1, a, 0),
              np.linalg.norm(a), np.add.reduce(a, axis=1), np.mean(a)):
        assert isinstance(r, fake.ndarray)
    np.testing.assert_allclose(np.exp(a).get(), np.exp(a.get()))


def test_module_functions_mirror_numpy():
    a = dev([[0.0, -1.0], [2.0, 3.0]])
    assert isinstance(fake.zeros((2, 3), dtype=fake.float32), fake.ndarray)
    assert fake.zeros((2, 3), dtype=fake.float32).dtype == np.float32
    results = [fake.exp(a), fake.log(abs(a) + 1), fake.sign(a), fake.clip(a, 0, 1), fake.matmul(a, a),
               fake.empty_like(a), fake.ones(3), fake.full((2,), 3.0), fake.arange(4), fake.stack([a, a]),
               fake.einsum("ij,jk->ik", a, a), fake.sqrt(abs(a)), fake.isfinite(a), fake.argmax(a),
               fake.take(a, dev([1], dtype=np.int64), axis=0), fake.exp(1.0)]
    for r in results:
        assert isinstance(r, fake.ndarray)
    np.testing.assert_allclose(fake.einsum("ij,jk->ik", a, a).get(), a.get() @ a.get())
    assert fake.float32 is np.float32 and fake.float64 is np.float64 and fake.int64 is np.int64
    assert fake.newaxis is None and fake.pi == np.pi and fake.inf == np.inf and np.isnan(fake.nan)
    assert fake.dtype is np.dtype
    with pytest.raises(AttributeError):
        fake.no_such_function


def test_out_and_inplace_ops_write_into_the_device_array():
    a, b = dev([1.0, 2.0]), dev([10.0, 20.0])
    out = fake.empty(2)
    assert np.add(a, b, out=out) is out
    assert fake.multiply(a, b, out=out) is out
    np.testing.assert_allclose(out.get(), [10.0, 40.0])
    c = a
    a += b
    assert a is c
    np.testing.assert_allclose(a.get(), [11.0, 22.0])
    z = fake.zeros(3)
    np.add.at(z, dev([0, 0, 2], dtype=np.int64), 1.0)
    np.testing.assert_allclose(z.get(), [2.0, 0.0, 1.0])


def test_reductions_return_0d_device_arrays_that_convert_only_explicitly():
    a = dev([[1.0, 2.0], [3.0, 4.0]])
    for r in (a.sum(), a.mean(), a.max(), a.min(), a.argmax(), a.any(), a.all(), np.sum(a)):
        assert isinstance(r, fake.ndarray) and r.ndim == 0
    assert backend.to_float(a.sum()) == 10.0 and a.argmax().item() == 3 and a.all().item()
    assert a.sum(axis=0).shape == (2,) and a.sum().item() == 10.0
    for implicit in (float, int, bool, complex):       # each would be a hidden wait for the GPU
        with pytest.raises(TypeError, match="host synchronisation"):
            implicit(a.sum())


def test_syncs_kernels_and_memory_attributes_are_as_cupy_has_them():
    fake.reset_counts()
    flat = dev(np.arange(12.0))
    view = flat[2:8].reshape(2, 3)
    assert view.base is flat and view.base is view.base and flat.base is None
    assert view.flags.c_contiguous and not flat[::2].flags.c_contiguous
    assert view.data.ptr == flat.data.ptr + 2 * flat.itemsize
    fake.reset_counts()
    b = view * 2 + 1                                   # two kernels, no sync
    assert fake.counts["kernels"] == 2 and fake.counts["syncs"] == 0
    backend.to_float(b.sum())                          # one reduction, one copy to the host
    assert fake.counts == {"syncs": 1, "kernels": 3, "indexing": 0, "copies": 0}


def test_attributes_and_methods():
    a = dev(np.arange(6.0).reshape(2, 3), dtype=np.float32)
    assert a.shape == (2, 3) and a.ndim == 2 and a.size == 6 and a.dtype == np.float32
    assert a.itemsize == 4 and a.nbytes == 24 and len(a) == 2 and a.T.shape == (3, 2)
    for r in (a.reshape(3, 2), a.reshape(-1), a.ravel(), a.transpose(1, 0), a.swapaxes(0, 1),
              a.astype(np.float64), a.copy(), a.view()):
        assert isinstance(r, fake.ndarray)
    assert a.astype(np.float64).dtype == np.float64
    b = a.copy()
    b.fill(7.0)
    assert a[0, 0].item() == 0.0 and b[0, 0].item() == 7.0
    rows = list(a)
    assert len(rows) == 2 and all(isinstance(r, fake.ndarray) and r.shape == (3,) for r in rows)


def test_indexing_and_setitem():
    a = dev(np.arange(6.0).reshape(2, 3))
    assert isinstance(a[0], fake.ndarray) and isinstance(a[0, 1], fake.ndarray) and a[0, 1].ndim == 0
    np.testing.assert_array_equal(a[np.array([1, 0])].get(), a.get()[[1, 0]])          # host int index
    np.testing.assert_array_equal(a[dev([1], dtype=np.int64)].get(), a.get()[[1]])    # device index
    np.testing.assert_array_equal(a[a > 3].get(), [4.0, 5.0])
    np.testing.assert_array_equal(a[:, 1:].get(), [[1.0, 2.0], [4.0, 5.0]])
    a[0] = dev([7.0, 8.0, 9.0])
    a[1, 1] = 0.5
    a[:, 0] = np.float64(-1.0)
    np.testing.assert_array_equal(a.get(), [[-1.0, 8.0, 9.0], [-1.0, 0.5, 5.0]])
    view = a[1]
    view[2] = 100.0                                   # basic slices are views, as in NumPy/CuPy
    assert a[1, 2].item() == 100.0
    with pytest.raises(TypeError, match="Unsupported type"):
        a[0] = np.zeros(3)


# --- the stand-in as a minirai backend ---------------------------------------------------

def test_backend_uses_the_stand_in(device):
    assert backend.xp() is fake
    assert backend.device_name() == fake.__name__
    a = backend.to_device(np.arange(3.0))
    assert isinstance(a, fake.ndarray) and backend.is_device_array(a)
    assert backend.array_module(a) is fake
    assert backend.array_module(a, 2.0, None) is fake
    host = backend.to_numpy(a)
    assert type(host) is np.ndarray
    np.testing.assert_array_equal(host, [0.0, 1.0, 2.0])
    assert backend.to_float(a.sum()) == 3.0
    assert backend.array_module(np.ones(2)) is np


def test_backend_refuses_mixed_devices(device):
    a = backend.to_device(np.arange(3.0))
    with pytest.raises(TypeError, match="different devices"):
        backend.array_module(a, np.ones(3))


def test_use_module_returns_the_previous_module(device):
    assert backend.use_module(np) is fake
    assert backend.use_module(fake) is np
