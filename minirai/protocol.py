"""What every layer, loss and optimizer class provides, and how a class is found again by name.

There is no list of classes to keep up to date. A class is known because it subclasses
:class:`~minirai.layers.Layer`, :class:`~minirai.losses.Loss` or :class:`~minirai.optim.Optimizer`,
and its settings are read the way scikit-learn reads an estimator's: every argument of
``__init__`` is kept as an attribute of the same name. From that one convention:

* ``Layer.config()`` / ``Loss.config()`` / ``Optimizer.hyperparameters()`` return the settings;
* checkpoints save a class by its import path and its settings, and build it again from them;
* ``mlp("softplus")``, ``MLPClassifier(solver="rmsprop")`` find a learner's own class by name;
* the fast path stacks RAI blocks only where every layer's class and settings are equal.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable


def settings_of(obj: Any, init: Callable[..., None], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{name: obj.name}`` for every argument of ``init`` (a class's ``__init__``) except ``self``,
    ``skip`` and ``*args``/``**kwargs``; a TypeError names an argument that is not kept."""
    found = {}
    for name, parameter in inspect.signature(init).parameters.items():
        if name == "self" or name in skip or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if not hasattr(obj, name):
            raise TypeError(f"{type(obj).__name__}: the argument {name!r} of __init__ is not kept as self.{name}; "
                            f"keep it (self.{name} = {name}), or override config() / hyperparameters()")
        found[name] = getattr(obj, name)
    return found


def subclasses(base: type) -> list[type]:
    """Every subclass of ``base`` defined so far (in this process), breadth first."""
    found, pending = [], list(base.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return found


def class_path(cls: type) -> str:
    """``module.QualifiedName``: how a checkpoint names a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def find_class(base: type, path: str) -> type:
    """The subclass of ``base`` (or ``base`` itself) called ``path`` (see :func:`class_path`); where a class
    was defined again (a notebook cell run twice), the newest definition.

    Only classes already defined are found: nothing is imported, so a checkpoint cannot make
    minirai run a module. A ValueError says to import the module that defines a missing class.
    """
    for cls in reversed([base, *subclasses(base)]):
        if class_path(cls) == path:
            return cls
    raise ValueError(f"no {base.__name__} class {path!r} is defined in this process; import the module that "
                     f"defines it before loading")


def snake_case(name: str) -> str:
    """``LeakyReLU`` -> ``leaky_relu``, ``Softplus`` -> ``softplus``, ``ReLU`` -> ``relu``,
    ``RMSprop`` -> ``rmsprop``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name).lower()


def name_of(cls: type) -> str:
    """A class's name for lookups: its own ``name`` attribute if it sets one, else :func:`snake_case`."""
    own = cls.__dict__.get("name")
    return own if isinstance(own, str) else snake_case(cls.__name__)


def named(base: type) -> dict[str, type]:
    """The subclasses of ``base`` by name (:func:`name_of`). Where two share a name, minirai's own class
    wins, and otherwise the newest definition (a notebook cell run again replaces its class)."""
    found: dict[str, type] = {}
    for cls in subclasses(base):
        key = name_of(cls)
        if key not in found or not found[key].__module__.startswith("minirai."):
            found[key] = cls
    return found


def by_name(base: type, name: Any, what: str, known: dict[str, type] | None = None) -> type:
    """The subclass of ``base`` called ``name`` (underscores and case do not matter), or a ValueError
    naming ``what`` and listing the names."""
    known = named(base) if known is None else known
    squeezed = {key.replace("_", ""): cls for key, cls in known.items()}
    key = name.replace("_", "").lower() if isinstance(name, str) else None
    if key not in squeezed:
        raise ValueError(f"{what} must be one of {sorted(known)} (or the name of a subclass of {base.__name__} "
                         f"defined before), got {name!r}")
    return squeezed[key]
