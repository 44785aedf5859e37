"""Save and load networks, RAI trainers, optimizer states, histories and estimators:
``minirai.save`` / ``minirai.load``.

A checkpoint is one ``.npz`` file (NumPy's zip of arrays), read with ``allow_pickle=False``:
nothing in it can run code. It holds the arrays (weights, tables, optimizer state, recorded
values) and one more entry, ``__meta__``, the JSON text that says what the arrays are: the
format name and version, the layers, the loss, the cuts, the optimizer's settings.

    minirai.save(model, "net.npz")                        # a Sequential
    minirai.save({"trainer": trainer, "optimizer": opt, "history": history}, "run.npz")
    run = minirai.load("run.npz")                         # {"trainer": RAI, "optimizer": Rprop, ...}

A dict saves several objects together; an optimizer in it is restored over the parameters of
the model or trainer in the same dict that it was made for, so a run saved at step k and
resumed (``run["trainer"].fit(run["optimizer"], ...)``, or for BP
``fit(run["model"], loss, run["optimizer"], X, y, iters=..., seed=..., start_step=k)``, which
skips the mini-batches the first k steps took) gives the numbers of an uninterrupted run, bit
for bit on the CPU. An optimizer saved alone is loaded with ``load(path, pairs=...)``.

What can be saved: any layer, loss or optimizer whose settings are plain values (numbers,
strings, lists), saved as its class's import path and its ``config()`` / ``hyperparameters()``
(:mod:`minirai.protocol`): a learner's own class too, which is found again on loading if its
module was imported first (loading never imports a module). λ can be a number or a
:func:`minirai.rai.constant` / :func:`minirai.rai.geometric` schedule (another schedule is
code: it is refused). A file of another format version, a truncated file, a file with an
object array in it, or one whose arrays do not fit what its metadata says is a ``ValueError``
that says which. The file is written to a temporary name and renamed, so an interrupted save
never leaves half a checkpoint behind the name.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import backend
from .layers import Layer
from .losses import Loss
from .network import Sequential
from .optim import Optimizer
from .protocol import class_path, find_class
from .train import History
from .validate import check_number

FORMAT = "minirai-checkpoint"
VERSION = 2           # 2: classes by import path and their settings (config / hyperparameters)
READS = (1, 2)        # version 1: the built-in classes by name, read as before
META = "__meta__"

Arrays = dict[str, np.ndarray]


# -- saving ------------------------------------------------------------------------------------
def save(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` (a Sequential, an RAI trainer, an optimizer, a History, an estimator of
    :mod:`minirai.estimators`, or a dict of them) to ``path``.

    Everything is checked before anything is written: an object that cannot be saved is a
    ``ValueError`` or ``TypeError`` and leaves no file. Returns the path written.
    """
    path = Path(path)
    arrays: Arrays = {}
    if isinstance(obj, dict):
        for name in obj:
            if not isinstance(name, str) or not name or "/" in name:
                raise ValueError(f"save: the names of a dict of objects must be non-empty strings without '/', "
                                 f"got {name!r}")
        items = {name: _describe_shared(value, obj) or _describe(value, arrays, f"{name}/", obj)
                 for name, value in obj.items()}
        meta: dict[str, Any] = {"kind": "bundle", "items": items}
    else:
        meta = _describe(obj, arrays, "", None)
    meta.update(format=FORMAT, version=VERSION)
    arrays[META] = np.frombuffer(json.dumps(meta, default=_plain).encode(), dtype=np.uint8)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"save: {str(path)!r} is a folder; give a file name such as {str(path / 'run.npz')!r}")
    if not folder.is_dir():
        raise ValueError(f"save: the folder {str(folder)!r} does not exist")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _describe_shared(obj: Any, bundle: dict[str, Any]) -> dict[str, Any] | None:
    """A model that an RAI trainer of the same bundle trains is saved once, as that trainer's model."""
    from .rai import RAI   # noqa: PLC0415
    if isinstance(obj, Sequential):
        for name, other in bundle.items():
            if isinstance(other, RAI) and other.model is obj:
                return {"kind": "model-of", "of": name}
    return None


def _plain(value: Any) -> Any:
    """NumPy scalars as the Python numbers JSON holds (a schedule or setting given as np.float32(0.5))."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"save: a setting of type {type(value).__name__} ({value!r}) cannot be written to a checkpoint")


def _describe(obj: Any, arrays: Arrays, prefix: str, bundle: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON description of ``obj``; its arrays go into ``arrays`` under ``prefix``."""
    from .rai import RAI   # noqa: PLC0415 - rai imports this module's neighbours
    if isinstance(obj, Sequential):
        return _describe_sequential(obj, arrays, prefix)
    if isinstance(obj, RAI):
        return _describe_rai(obj, arrays, prefix)
    if isinstance(obj, Optimizer):
        return _describe_optimizer(obj, arrays, prefix, bundle)
    if isinstance(obj, History):
        return _describe_history(obj, arrays, prefix)
    from .estimators import _MLP   # noqa: PLC0415 - scikit-learn is imported only for estimators
    if isinstance(obj, _MLP):
        return _describe_estimator(obj, arrays, prefix)
    if type(obj).__name__ == "MiniBatchRAI":
        raise TypeError("save: a MiniBatchRAI cannot be saved (its batch order is not kept); save its model "
                        "(trainer.model), its optimizer or its history instead")
    raise TypeError(f"save: cannot save a {type(obj).__name__}; expected a Sequential, an RAI trainer, an "
                    "optimizer, a History, or a dict of them")


def _host(a: Any) -> np.ndarray:
    return np.ascontiguousarray(backend.to_numpy(a))


def _settings(obj: Any, settings: dict[str, Any], what: str) -> dict[str, Any]:
    """``settings`` if JSON can hold them (plain numbers, strings, bools, None, lists), else a TypeError."""
    try:
        json.dumps(settings, default=_plain, allow_nan=False)
    except (TypeError, ValueError):
        raise TypeError(f"save: {what} ({type(obj).__name__}) has settings a checkpoint cannot hold: {settings!r}; "
                        "settings must be plain numbers, strings or lists") from None
    return settings


def _describe_sequential(model: Sequential, arrays: Arrays, prefix: str) -> dict[str, Any]:
    layers = []
    for i, layer in enumerate(model.layers):
        layers.append({"class": class_path(type(layer)), "config": _settings(layer, layer.config(), f"layer {i}"),
                       "params": {key: list(value.shape) for key, value in layer.params.items()}})
        for key, value in layer.params.items():
            arrays[f"{prefix}layer{i}.{key}"] = _host(value)
    return {"kind": "sequential", "layers": layers, "dtype": str(model.dtype), "packed": model.packed is not None,
            "training": model.training}


def _describe_loss(loss: Loss, what: str) -> dict[str, Any]:
    return {"class": class_path(type(loss)), "config": _settings(loss, loss.config(), what)}


def _describe_rai(trainer: Any, arrays: Arrays, prefix: str) -> dict[str, Any]:
    from .rai import Constant, Geometric   # noqa: PLC0415
    schedule = getattr(trainer.lam, "schedule", trainer.lam)
    if isinstance(schedule, Constant):
        lam = {"type": "constant", "value": schedule.value}
    elif isinstance(schedule, Geometric):
        lam = {"type": "geometric", "start": schedule.start, "factor": schedule.factor, "every": schedule.every,
               "maximum": schedule.maximum}
    else:
        raise TypeError("save: this trainer's λ schedule is a function, which a checkpoint cannot hold; use a "
                        "number, minirai.rai.constant or minirai.rai.geometric")
    from .losses import MSE   # noqa: PLC0415
    hidden = [_describe_loss(h, "the hidden loss") for h in trainer.hidden_losses] or [_describe_loss(MSE(), "")]
    meta = {"kind": "rai", "model": _describe_sequential(trainer.model, arrays, f"{prefix}model."),
            "loss": _describe_loss(trainer.loss, "the output loss"), "hidden_loss": hidden[0], "cuts": trainer.cuts,
            "lam": lam, "reinit_period": trainer.reinit_period, "steps": trainer.steps,
            "keep_activations": trainer.keep_activations,
            "tables": len(trainer.tables)}
    arrays[f"{prefix}X"], arrays[f"{prefix}y"] = _host(trainer.X), _host(trainer.y)
    for k, table in enumerate(trainer.tables):
        arrays[f"{prefix}table{k}"] = _host(table)
    return meta


def _describe_optimizer(optimizer: Optimizer, arrays: Arrays, prefix: str,
                        bundle: dict[str, Any] | None) -> dict[str, Any]:
    settings = _settings(optimizer, optimizer.hyperparameters(), "the optimizer")
    over = None
    for owner_name, owner in (bundle or {}).items():
        if hasattr(owner, "parameters") and not isinstance(owner, Optimizer):
            owned = owner.parameters()
            if len(owned) == len(optimizer.pairs) and all(p is q for (p, _), (q, _) in zip(owned, optimizer.pairs)):
                over = owner_name
    if bundle is not None and over is None:
        raise ValueError("save: the optimizer's parameters are not those of a model or trainer saved with it; "
                         "put the model or trainer it was made on in the same dict")
    for i, state in enumerate(optimizer.state):
        for key, value in state.items():
            arrays[f"{prefix}state{i}.{key}"] = _host(value)
    return {"kind": "optimizer", "class": class_path(type(optimizer)), "steps": optimizer.steps,
            "pairs": len(optimizer.pairs), "shapes": [list(p.shape) for p, _ in optimizer.pairs], "over": over,
            "settings": settings, "state": [sorted(state) for state in optimizer.state]}


def _describe_history(history: History, arrays: Arrays, prefix: str) -> dict[str, Any]:
    from .rai import RAIHistory   # noqa: PLC0415
    names = list(history.values)
    for k, name in enumerate(names):
        arrays[f"{prefix}column{k}"] = history[name]
    meta: dict[str, Any] = {"kind": "history", "columns": names}
    if isinstance(history, RAIHistory):
        meta.update(rai=True, n_cuts=history.n_cuts, per_cut=list(history.per_cut))
        for k, name in enumerate(history.per_cut):
            arrays[f"{prefix}per_cut{k}"] = history[name]
    return meta


def _describe_estimator(estimator: Any, arrays: Arrays, prefix: str) -> dict[str, Any]:
    params = estimator.get_params()
    try:
        json.dumps(params, default=_plain)
    except TypeError:
        raise TypeError(f"save: the {type(estimator).__name__}'s parameters must be plain numbers, strings and "
                        f"lists to be saved, got {params!r}") from None
    meta: dict[str, Any] = {"kind": "estimator", "class": type(estimator).__name__, "params": params,
                            "tuples": sorted(k for k, v in params.items() if isinstance(v, tuple)),  # (JSON has lists)
                            "fitted": hasattr(estimator, "model_")}
    if meta["fitted"]:
        meta.update(model=_describe_sequential(estimator.model_, arrays, f"{prefix}model."),
                    history=_describe_history(estimator.history_, arrays, f"{prefix}history."),
                    n_features_in=int(estimator.n_features_in_), n_iter=int(estimator.n_iter_),
                    loss=float(estimator.loss_), one_target=bool(getattr(estimator, "_one_target", True)))
        if estimator.method == "bp":            # so that partial_fit continues where the run stopped
            meta["optimizer"] = _describe_optimizer(estimator.optimizer_, arrays, f"{prefix}optimizer.",
                                                    {"model": estimator.model_})
        if hasattr(estimator, "classes_"):
            classes = np.asarray(estimator.classes_)
            if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes):
                classes = classes.astype(str)             # strings from pandas: stored as a string array
            if classes.dtype.kind == "O":
                raise TypeError("save: this classifier's classes are Python objects; a checkpoint holds numbers "
                                "or strings as classes")
            arrays[f"{prefix}classes"] = classes
    return meta


# -- loading -----------------------------------------------------------------------------------
def load(path: str | os.PathLike, *, pairs: list[tuple[Any, Any]] | None = None) -> Any:
    """Read what :func:`save` wrote. ``pairs``: the (param, grad) pairs an optimizer saved alone is for.

    Arrays come back on the active device (``minirai.backend``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load: no checkpoint file at {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable minirai checkpoint (not an .npz archive; truncated or damaged?)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if META not in names:
                raise ValueError(f"{path}: not a minirai checkpoint (it has no {META} entry)")
            meta = json.loads(bytes(npz[META]).decode())
            arrays = {name: npz[name] for name in names if name != META}
    except Exception as error:          # whatever a damaged zip makes NumPy or zipfile raise
        if "Object arrays" in str(error) or "allow_pickle" in str(error):
            raise ValueError(f"{path}: holds an object array, which minirai never writes and will not unpickle; "
                             "refused") from None
        raise ValueError(f"{path}: not a readable minirai checkpoint (truncated or damaged?): "
                         f"{type(error).__name__}: {error}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a minirai checkpoint "
                         f"(format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") not in READS:
        raise ValueError(f"{path}: checkpoint format version {meta.get('version')!r}; this minirai reads versions "
                         f"{', '.join(map(str, READS))}")
    try:
        if meta["kind"] == "bundle":
            loaded: dict[str, Any] = {}
            items = meta["items"]
            for name, item in items.items():   # optimizers last: they attach to a loaded model or trainer
                if item["kind"] not in ("optimizer", "model-of"):
                    loaded[name] = _restore(item, arrays, f"{name}/", None)
            for name, item in items.items():   # a model saved as its trainer's: the trainer's model itself
                if item["kind"] == "model-of":
                    if items.get(item["of"], {}).get("kind") != "rai":
                        raise ValueError(f"the model {name!r} is saved as the model of {item['of']!r}, which is not "
                                         "an RAI trainer in the file")
                    loaded[name] = loaded[item["of"]].model
            for name, item in items.items():
                if item["kind"] == "optimizer":
                    owner = loaded.get(item.get("over"))
                    if owner is None:
                        raise ValueError(f"the optimizer {name!r} belongs to {item.get('over')!r}, "
                                         f"which is not in the file")
                    loaded[name] = _restore(item, arrays, f"{name}/", owner.parameters())
            return {name: loaded[name] for name in items}
        return _restore(meta, arrays, "", pairs)
    except (KeyError, TypeError, IndexError, AttributeError) as error:
        raise ValueError(f"{path}: the checkpoint's metadata is damaged ({type(error).__name__}: {error})") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _array(arrays: Arrays, name: str, shape: tuple[int, ...] | None = None, floating: bool = True) -> np.ndarray:
    if name not in arrays:
        raise ValueError(f"the array {name!r} is missing")
    a = arrays[name]
    if a.dtype.kind == "O":
        raise ValueError(f"the array {name!r} is an object array; refused")
    if floating and a.dtype not in (np.float32, np.float64):
        raise ValueError(f"the array {name!r} has dtype {a.dtype}; expected float32 or float64")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"the array {name!r} has shape {tuple(a.shape)}; its metadata says {tuple(shape)}")
    return a


def _restore(meta: dict[str, Any], arrays: Arrays, prefix: str, pairs: Any) -> Any:
    kind = meta["kind"]
    if kind == "sequential":
        return _restore_sequential(meta, arrays, prefix)
    if kind == "rai":
        return _restore_rai(meta, arrays, prefix)
    if kind == "optimizer":
        return _restore_optimizer(meta, arrays, prefix, pairs)
    if kind == "history":
        return _restore_history(meta, arrays, prefix)
    if kind == "estimator":
        return _restore_estimator(meta, arrays, prefix)
    raise ValueError(f"unknown object kind {kind!r}")


def _restore_estimator(meta: dict[str, Any], arrays: Arrays, prefix: str) -> Any:
    from . import estimators   # noqa: PLC0415
    if meta["class"] not in ("MLPClassifier", "MLPRegressor"):
        raise ValueError(f"unknown estimator class {meta['class']!r}")
    params = {k: tuple(v) if k in meta.get("tuples", []) else v for k, v in meta["params"].items()}
    estimator = getattr(estimators, meta["class"])(**params)
    if meta["fitted"]:
        estimator.model_ = _restore_sequential(meta["model"], arrays, f"{prefix}model.")
        estimator.history_ = _restore_history(meta["history"], arrays, f"{prefix}history.")
        estimator.n_features_in_, estimator.n_iter_ = meta["n_features_in"], meta["n_iter"]
        estimator.loss_ = meta["loss"]
        estimator._one_target = meta["one_target"]
        if meta["class"] == "MLPClassifier":
            estimator.classes_ = _array(arrays, f"{prefix}classes", floating=False)
        if "optimizer" in meta:
            estimator.optimizer_ = _restore_optimizer(meta["optimizer"], arrays, f"{prefix}optimizer.",
                                                      estimator.model_.parameters())
    return estimator


#: version 1 named the built-in classes; what they are now
V1_LAYERS = {name: f"minirai.layers.{name}" for name in ("Linear", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Identity")}
V1_LOSSES = {"mse": "MSE", "bce": "BCE", "bce_with_logits": "BCEWithLogits", "cross_entropy": "SoftmaxCrossEntropy"}


def _layer_spec(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A layer's class path and settings, from a version 2 spec or a version 1 one."""
    if "class" in spec:
        return spec["class"], dict(spec["config"])
    kind = spec["type"]
    if kind not in V1_LAYERS:
        raise ValueError(f"a layer has an unknown type {kind!r}")
    if kind == "Linear":
        return V1_LAYERS[kind], {"in_features": spec["in"], "out_features": spec["out"], "init": spec["init"]}
    return V1_LAYERS[kind], ({"negative_slope": spec["negative_slope"]} if kind == "LeakyReLU" else {})


def _restore_sequential(meta: dict[str, Any], arrays: Arrays, prefix: str) -> Sequential:
    dtype = backend.resolve_dtype(meta["dtype"])
    layers: list[Layer] = []
    for i, spec in enumerate(meta["layers"]):
        path, config = _layer_spec(spec)
        cls = find_class(Layer, path)
        names = sorted(name[len(f"{prefix}layer{i}."):] for name in arrays if name.startswith(f"{prefix}layer{i}."))
        promised = spec.get("params", {"W": None, "b": None} if path.endswith(".Linear") else {})   # (version 1)
        params = {key: _array(arrays, f"{prefix}layer{i}.{key}", shape) for key, shape in promised.items()}
        if sorted(promised) != names:
            raise ValueError(f"layer {i} ({path}) has the arrays {sorted(promised)}; the file has {names} for it")
        for key, value in params.items():
            if value.dtype != dtype:
                raise ValueError(f"the array {prefix}layer{i}.{key} has dtype {value.dtype}; the model's is {dtype}")
        try:
            layer = cls.from_config(config, params)
        except (TypeError, ValueError) as error:
            raise ValueError(f"layer {i} ({path}) cannot be made from its settings {config}: {error}") from None
        layers.append(layer)
    model = Sequential(layers)
    if meta["packed"] is True:
        model.pack()
    elif meta["packed"] is not False:
        raise ValueError(f"'packed' must be true or false, got {meta['packed']!r}")
    training = meta.get("training", True)          # (files written before the flag was saved: training)
    if training is False:
        model.eval()
    elif training is not True:
        raise ValueError(f"'training' must be true or false, got {training!r}")
    return model


def _restore_loss(spec: Any) -> Loss:
    if isinstance(spec, str):                       # version 1: a built-in loss by name
        if spec not in V1_LOSSES:
            raise ValueError(f"unknown loss {spec!r}")
        spec = {"class": f"minirai.losses.{V1_LOSSES[spec]}", "config": {}}
    cls = find_class(Loss, spec["class"])
    try:
        return cls(**spec["config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"the loss {spec['class']} cannot be made from its settings {spec['config']}: "
                         f"{error}") from None


def _restore_rai(meta: dict[str, Any], arrays: Arrays, prefix: str) -> Any:
    from .rai import RAI, geometric   # noqa: PLC0415
    model = _restore_sequential(meta["model"], arrays, f"{prefix}model.")
    lam_meta = meta["lam"]
    if lam_meta["type"] == "constant":
        lam: Any = check_number(lam_meta["value"], "lam", low=0)
    elif lam_meta["type"] == "geometric":
        lam = geometric(check_number(lam_meta["start"], "lam start"), check_number(lam_meta["factor"], "lam factor"),
                        check_number(lam_meta["every"], "lam every", integer=True),
                        check_number(lam_meta["maximum"], "lam maximum", none=True))
    else:
        raise ValueError(f"unknown λ schedule {lam_meta['type']!r}")
    X = _array(arrays, f"{prefix}X")
    y = _array(arrays, f"{prefix}y", floating=False)
    trainer = RAI(model, backend.to_device(X), backend.to_device(y), _restore_loss(meta["loss"]), cuts=meta["cuts"],
                  hidden_loss=_restore_loss(meta["hidden_loss"]), lam=lam, reinit_period=meta["reinit_period"],
                  keep_activations=meta.get("keep_activations", True))   # (files from before the option: True)
    if len(trainer.tables) != meta["tables"]:
        raise ValueError(f"the trainer has {len(trainer.tables)} tables; the file says {meta['tables']}")
    for k, table in enumerate(trainer.tables):
        table[...] = backend.to_device(_array(arrays, f"{prefix}table{k}", table.shape))
    trainer.steps = check_number(meta["steps"], "steps", low=0, integer=True)
    return trainer


def _restore_optimizer(meta: dict[str, Any], arrays: Arrays, prefix: str, pairs: Any) -> Optimizer:
    if pairs is None:
        raise ValueError("an optimizer saved on its own is loaded onto parameters: "
                         "load(path, pairs=model.parameters())")
    pairs = list(pairs)
    shapes = [list(p.shape) for p, _ in pairs]
    if shapes != meta["shapes"]:
        raise ValueError(f"the optimizer was saved for {meta['pairs']} arrays of shapes {meta['shapes']}; "
                         f"the parameters given have shapes {shapes}")
    path = meta["class"] if "." in meta["class"] else f"minirai.optim.{meta['class']}"    # (version 1: a name)
    cls = find_class(Optimizer, path)
    settings = {key: tuple(v) if isinstance(v, list) else v for key, v in meta["settings"].items()}
    try:
        optimizer = cls(pairs, **settings)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the optimizer {path} cannot be made from its settings {settings}: {error}") from None
    for i, state in enumerate(optimizer.state):
        if "state" in meta and sorted(state) != meta["state"][i]:
            raise ValueError(f"the optimizer's state {i} holds {sorted(state)}; the file has {meta['state'][i]}")
        for key, value in state.items():
            value[...] = backend.to_device(_array(arrays, f"{prefix}state{i}.{key}", value.shape))
    optimizer.steps = check_number(meta["steps"], "steps", low=0, integer=True)
    return optimizer


def _restore_history(meta: dict[str, Any], arrays: Arrays, prefix: str) -> History:
    from .rai import RAIHistory   # noqa: PLC0415
    history: History = RAIHistory(meta["n_cuts"]) if meta.get("rai") else History()
    history.values = {}
    for k, name in enumerate(meta["columns"]):
        column = _array(arrays, f"{prefix}column{k}", floating=False)
        if column.ndim != 1:
            raise ValueError(f"the history column {name!r} has shape {column.shape}; expected one value per record")
        history.values[name] = [int(v) for v in column] if name == "step" else [float(v) for v in column]
    if "step" not in history.values:
        raise ValueError("the history has no 'step' column")
    records = len(history.values["step"])
    for name, column in history.values.items():
        if len(column) != records:
            raise ValueError(f"the history column {name!r} has {len(column)} values; 'step' has {records}")
    if meta.get("rai"):
        for k, name in enumerate(meta["per_cut"]):
            stack = _array(arrays, f"{prefix}per_cut{k}", floating=False)
            if stack.shape != (records, history.n_cuts):
                raise ValueError(f"the history's per-cut {name!r} has shape {stack.shape}; expected "
                                 f"({records}, {history.n_cuts})")
            history.per_cut[name] = [row.astype(np.float64) for row in stack]
    return history
