"""minirai.estimators: scikit-learn's estimator checks, pipelines, search, and checkpoints."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import minirai
from minirai.estimators import MLPClassifier, MLPRegressor


@pytest.mark.parametrize("method", ["bp", "rai"])
@pytest.mark.parametrize("make", [MLPClassifier, MLPRegressor], ids=["classifier", "regressor"])
def test_check_estimator_passes_every_check(make, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(make(method=method), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input", "check_classifier_data_not_an_array",
                       "check_regressor_data_not_an_array"}          # (optional libraries that are not installed)
    assert sum(r["status"] == "passed" for r in results) >= 50


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def test_a_digits_pipeline_with_rai_reaches_85_percent_in_3_folds(digits):
    X, y = digits
    scores = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(method="rai", random_state=0)), X, y, cv=3)
    assert scores.mean() >= 0.85 and scores.min() >= 0.8, scores


def test_grid_search_and_the_fitted_attributes(digits):
    X, y = digits[0][:600], digits[1][:600]
    search = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(max_iter=60, random_state=1)),
                          {"mlpclassifier__method": ["bp", "rai"], "mlpclassifier__hidden_layer_sizes": [(16,), (32,)]},
                          cv=2)
    search.fit(X, y)
    assert search.best_score_ > 0.8
    clf = search.best_estimator_[-1]
    assert isinstance(clf.model_, minirai.Sequential) and list(clf.classes_) == list(range(10))
    assert clf.n_iter_ == 60 and np.isfinite(clf.loss_)
    key = "relaxed_loss" if clf.method == "rai" else "train_loss"
    assert key in clf.history_.keys()


def test_binary_string_labels_and_a_multi_output_regressor():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    clf = MLPClassifier(random_state=0).fit(X, labels)
    assert set(clf.predict(X)) <= {"yes", "no"} and clf.score(X, labels) > 0.9
    assert clf.predict_proba(X).shape == (80, 2) and np.allclose(clf.predict_proba(X).sum(axis=1), 1)
    X, y = make_regression(n_samples=100, n_features=4, n_targets=2, noise=0.1, random_state=0)
    y = StandardScaler().fit_transform(y)
    reg = MLPRegressor(method="rai", solver="rprop", learning_rate_init=0.01, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (100, 2) and reg.score(X, y) > 0.8


@pytest.mark.parametrize("method", ["bp", "rai"])
def test_a_saved_estimator_predicts_the_same(tmp_path, digits, method):
    X, y = digits[0][:300], digits[1][:300]
    clf = MLPClassifier((24,), method=method, max_iter=40, random_state=3).fit(X / 16, y)
    minirai.save(clf, tmp_path / "clf.npz")
    loaded = minirai.load(tmp_path / "clf.npz")
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X / 16), clf.predict_proba(X / 16))
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    unfitted = tmp_path / "unfitted.npz"
    minirai.save(MLPRegressor(max_iter=5), unfitted)
    assert minirai.load(unfitted).get_params()["max_iter"] == 5


@pytest.mark.parametrize("params, message", [
    (dict(method="gd"), "method must be one of"), (dict(solver="lbfgs"), "solver must be one of"),
    (dict(activation="no_such_activation"), "activation must be one of"),
    (dict(hidden_layer_sizes=(0,)), "positive integer"),
    (dict(hidden_layer_sizes="big"), "hidden_layer_sizes must be a tuple"), (dict(max_iter=0), "max_iter"),
    (dict(learning_rate_init=-1.0), "learning_rate_init"), (dict(batch_size=0), "batch_size"),
    (dict(device="tpu"), "device must be one of"), (dict(dtype="int8"), "dtype must be float32 or float64"),
])
def test_bad_parameters_are_a_clear_error_at_fit(params, message):
    X, y = np.random.default_rng(0).standard_normal((20, 2)), np.arange(20) % 2
    with pytest.raises((ValueError, TypeError), match=message):
        MLPClassifier(**params).fit(X, y)


@pytest.mark.parametrize("make, kwargs", [(MLPClassifier, {"classes": [0, 1, 2]}), (MLPRegressor, {})],
                         ids=["classifier", "regressor"])
def test_partial_fit_continues_the_run_fit_would_make(make, kwargs):
    """k calls of partial_fit (full batch: one step each) give fit(max_iter=k)'s network, bit for bit."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int) if make is MLPClassifier else X @ [1.0, -2.0, 0.5]
    whole = make((8,), max_iter=5, random_state=4).fit(X, y)
    stepwise = make((8,), max_iter=5, random_state=4)
    for _ in range(5):
        stepwise.partial_fit(X, y, **kwargs)
    assert stepwise.n_iter_ == 5
    for (a, _), (b, _) in zip(whole.model_.parameters(), stepwise.model_.parameters()):
        np.testing.assert_array_equal(a, b)
    assert not hasattr(make(method="rai"), "partial_fit")       # an RAI run has a table row per example


def test_partial_fit_refuses_what_it_cannot_continue():
    X, y = np.random.default_rng(0).standard_normal((20, 2)), np.arange(20) % 2
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    clf = MLPClassifier(max_iter=3).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :1], y)


def test_a_loaded_estimator_continues_with_partial_fit_bit_for_bit(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((30, 2)), rng.integers(0, 2, 30)
    uninterrupted = MLPClassifier((8,), solver="adam", random_state=0)
    for _ in range(6):
        uninterrupted.partial_fit(X, y, classes=[0, 1])
    resumed = MLPClassifier((8,), solver="adam", random_state=0)
    for _ in range(3):
        resumed.partial_fit(X, y, classes=[0, 1])
    minirai.save(resumed, tmp_path / "clf.npz")
    resumed = minirai.load(tmp_path / "clf.npz")
    for _ in range(3):
        resumed.partial_fit(X, y)
    np.testing.assert_array_equal(resumed.predict_proba(X), uninterrupted.predict_proba(X))


def test_a_rejected_fit_leaves_the_fitted_estimator_as_it_was():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), np.arange(40) % 2
    clf = MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)
    before = clf.predict_proba(X)
    with_nan = np.where(X > 2, np.nan, X)
    for bad_X, bad_y in ((X, np.zeros(40, int)), (with_nan, y)):
        with pytest.raises(ValueError):
            clf.fit(bad_X, bad_y)
    clf.set_params(max_iter=0)                           # a bad parameter, found when fitting new data
    with pytest.raises(ValueError, match="max_iter"):
        clf.fit(X[:, :2], y)
    clf.set_params(max_iter=5)
    for bad_X, bad_y in ((X[:, :2], y), (with_nan, y), (X, y + 7)):      # (y + 7: labels it was not given)
        with pytest.raises(ValueError):
            clf.partial_fit(bad_X, bad_y)
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    assert list(clf.classes_) == [0, 1] and clf.n_features_in_ == 3 and clf.n_iter_ == 5


def test_mini_batch_partial_fit_continues_the_batch_order_of_fit():
    """partial_fit with batch_size 16 on 40 examples: 3 steps a call; 2 calls = fit(max_iter=6)."""
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 3, 40)
    whole = MLPClassifier((8,), batch_size=16, max_iter=6, random_state=1).fit(X, y)
    stepwise = MLPClassifier((8,), batch_size=16, random_state=1)
    stepwise.partial_fit(X, y, classes=[0, 1, 2])
    stepwise.partial_fit(X, y)
    assert stepwise.n_iter_ == 6
    np.testing.assert_array_equal(stepwise.predict_proba(X), whole.predict_proba(X))


def test_rai_with_a_batch_size_trains_persistent_tables_by_mini_batch():
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0)
    clf = MLPClassifier((32,), "tanh", method="rai", batch_size=64, max_iter=300, random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.85
    assert not hasattr(clf, "partial_fit")      # tables belong to one training set
    assert "relaxed_loss" in clf.history_.keys()
    assert isinstance(clf.optimizer_.pairs[-1][0], np.ndarray) and clf.optimizer_.pairs[-1][0].shape[0] == len(X_train)
