"""The study file: its schema (:data:`SCHEMA`, shown by ``minirai study --help``), its checks, and the
runs it plans (:class:`Run`, each with a fingerprint of the settings its method uses).
``minirai.research.study`` runs them; :mod:`~minirai.research.writer` reports them."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import data
from .methods import DEFAULT_BATCH_SIZE, METHODS, Method, custom

SCHEMA = """\
    [study]
    name = "deep-moons"             # the folder --out holds this study's runs only
    datasets = ["moons"]            # moons, circles, digits, mnist1d, mnist5k, classification
    depths = [100]                  # hidden layers, each `width` wide ...
    width = 100
    # hidden = [[42, 100, 100, 42]] # ... or the hidden widths of each net (instead of depths, width)
    activation = "sigmoid"          # or a list: ["sigmoid", "tanh", "relu"]
    methods = ["rai", "rai-tuned"]  # built in (minirai.research.methods.METHODS) or [methods.NAME]
    seeds = [0, 1, 2]
    iters = 3000                    # optimizer steps (batch steps for mini-batch methods)
    batch_size = 32                 # mini-batch methods only (default 32)
    compare = [["rai-tuned", "rai"]]   # optional: paired differences (each RAI mini-batch method and
                                    # its BP twin are compared without asking)
    fit = 0.95                      # optional: a run "fits" at this chained training accuracy (0.95)

    [methods.rai-every3]            # optional: a method of your own, a base and what differs
    base = "rai"                    # a built-in method, or one defined above
    cuts = "linear[2::3]"           # RAI bases only
    lam = {schedule = "geometric", start = 1, factor = 10, every = 500, maximum = 1e4}  # or a number
    optimizer = "adam"              # rprop, adam, sgd; lr = 1e-3; init = "orthogonal"
    regulariser = {kind = "weight-decay", strength = 1e-4}    # or a list (kinds below)
    # also: iters, batch_size, weight_steps ("per-epoch"), inner_steps, description

    [data.mnist1d]                  # optional: a dataset loader's arguments
    n_samples = 2000

  Regularisers: weight-decay (strength), table-noise (std), table-l2 (strength), weight-average
  (start = 0.5), early-stopping (every, val_fraction = 0.2): minirai.research.regularisers.
"""


STUDY_KEYS = {"name": str, "datasets": list, "depths": list, "width": int, "hidden": list, "activation": (str, list),
              "methods": list, "seeds": list, "iters": int, "batch_size": int, "compare": list, "fit": (int, float)}
REQUIRED = ("name", "datasets", "methods", "seeds", "iters", "activation")
FIT = 0.95


@dataclass(frozen=True)
class Run:
    """One run of a study: what it trains, and the name of its line and file."""
    dataset: str
    hidden: tuple[int, ...]
    activation: str
    method: str
    seed: int
    iters: int
    batch_size: int | None      # None for a full-batch method
    settings: str = ""          # a fingerprint of the method's settings and the dataset's options

    @property
    def depth(self) -> int:
        return len(self.hidden)

    @property
    def width(self) -> int | str:
        """The width of every hidden layer, or the widths joined by '-' where they differ."""
        return self.hidden[0] if len(set(self.hidden)) == 1 else "-".join(map(str, self.hidden))

    @property
    def id(self) -> str:
        batch = f"-b{self.batch_size}" if self.batch_size is not None else ""
        return (f"{self.dataset}-d{self.depth}-w{self.width}-{self.activation}-{self.method}-s{self.seed}"
                f"-i{self.iters}{batch}-{self.settings}")


def fingerprint(method: Method, batch_size: int | None, options: dict[str, Any]) -> str:
    """8 hex digits that change when a setting the method uses, or the dataset's options, change (and
    only then), so a resumed study never takes a result run under other settings for one of its own."""
    import hashlib
    spec = {"method": method.settings(batch_size), "data": options}
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]


@dataclass
class Study:
    name: str
    runs: list[Run]
    data_options: dict[str, dict[str, Any]]
    source: dict[str, Any]
    methods: dict[str, Method] = field(default_factory=dict)
    compare: list[tuple[str, str]] = field(default_factory=list)
    fit: float = FIT


def load_study(path: str | Path) -> Study:
    """Read and check a study file; every mistake is a ValueError naming the key and what it expects."""
    path = Path(path)
    try:
        import tomllib
    except ModuleNotFoundError:          # Python < 3.11
        import tomli as tomllib          # type: ignore[no-redef]
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"study file {str(path)!r} cannot be read: {error.strerror or error}") from None
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"study file {path}: not valid TOML ({error})") from None
    return parse_study(parsed, f"study file {path}")


def parse_study(parsed: dict[str, Any], where: str) -> Study:
    """A study from a parsed study file (as ``study.json`` keeps it too)."""
    table = parsed.get("study")
    if not isinstance(table, dict):
        raise ValueError(f"{where}: needs a [study] table with {', '.join(REQUIRED)}")
    unknown = sorted(set(table) - set(STUDY_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} in [study]; the keys are {sorted(STUDY_KEYS)} "
                         "(see minirai study --help)")
    missing = [k for k in REQUIRED if k not in table]
    if "hidden" not in table:
        missing += [k for k in ("depths", "width") if k not in table]
    if missing:
        raise ValueError(f"{where}: [study] needs {missing}")
    if "hidden" in table and ("depths" in table or "width" in table):
        raise ValueError(f"{where}: [study] takes hidden (the widths of each net) or depths and width, not both")
    for key, kind in STUDY_KEYS.items():
        if key in table and (not isinstance(table[key], kind) or isinstance(table[key], bool)):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " or ".join(("an " if k is int else "a ") + {"str": "string", "float": "number"}.get(k.__name__,
                                                                                                       k.__name__)
                                for k in kinds)
            raise ValueError(f"{where}: [study] {key} must be {names}, got {table[key]!r}")
    activations = table["activation"] if isinstance(table["activation"], list) else [table["activation"]]
    lists = {"datasets": table["datasets"], "methods": table["methods"], "seeds": table["seeds"],
             "activation": activations}
    lists.update({"depths": table["depths"]} if "hidden" not in table else {"hidden": table["hidden"]})
    for key, values in lists.items():
        if not values:
            raise ValueError(f"{where}: [study] {key} is empty")
        if len(set(map(str, values))) != len(values):
            raise ValueError(f"{where}: [study] {key} repeats an entry: {values}")
    custom_tables = parsed.get("methods", {})
    if not isinstance(custom_tables, dict) or not all(isinstance(v, dict) for v in custom_tables.values()):
        raise ValueError(f"{where}: [methods.NAME] tables define methods (base = ..., and what differs)")
    known = dict(METHODS)
    for name, spec in custom_tables.items():
        known[name] = custom(name, spec, known)
    _check_entries(where, "datasets", table["datasets"], str, sorted(data.DATASETS))
    _check_entries(where, "methods", table["methods"], str, sorted(known))
    _check_entries(where, "seeds", table["seeds"], int, None, low=0)
    _check_entries(where, "activation", activations, str, None)
    if "hidden" in table:
        for net in table["hidden"]:
            if not isinstance(net, list) or not net:
                raise ValueError(f"{where}: [study] hidden holds lists of widths, one list per net, got {net!r}")
            _check_entries(where, "hidden", net, int, None, low=1)
        nets = [tuple(net) for net in table["hidden"]]
    else:
        _check_entries(where, "depths", table["depths"], int, None, low=1)
        nets = [(table["width"],) * depth for depth in table["depths"]]
    from ..layers import Activation
    from ..protocol import by_name
    for activation in activations:
        by_name(Activation, activation, f"{where}: [study] activation")
    for key in ("width", "iters", "batch_size"):
        if key in table and table[key] < 1:
            raise ValueError(f"{where}: [study] {key} must be a positive integer, got {table[key]}")
    if not isinstance(table["name"], str) or not table["name"].strip():
        raise ValueError(f"{where}: [study] name must be a non-empty string")
    fit = float(table.get("fit", FIT))
    if not 0 < fit <= 1:
        raise ValueError(f"{where}: [study] fit must lie in (0, 1], got {fit}")
    compare = []
    for pair in table.get("compare", []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(m in table["methods"] for m in pair)):
            raise ValueError(f"{where}: [study] compare holds pairs of the study's methods [\"a\", \"b\"] (a minus b "
                             f"on the same seeds), got {pair!r}")
        compare.append((pair[0], pair[1]))
    options = parsed.get("data", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ValueError(f"{where}: [data.NAME] tables hold a dataset's loader arguments")
    import inspect
    for name, arguments in options.items():
        if name not in table["datasets"]:
            raise ValueError(f"{where}: [data.{name}] is for a dataset the study does not use")
        try:
            inspect.signature(data.DATASETS[name]).bind(**arguments)
        except TypeError as error:
            raise ValueError(f"{where}: [data.{name}]: {error} (the arguments of "
                             f"minirai.data.{data.DATASETS[name].__name__})") from None
    extra = sorted(set(parsed) - {"study", "data", "methods"})
    if extra:
        raise ValueError(f"{where}: unknown table(s) {extra}; a study file has [study], [methods.NAME] and "
                         "[data.NAME]")
    batch_size = table.get("batch_size", DEFAULT_BATCH_SIZE)
    methods = {name: known[name] for name in table["methods"]}
    runs = []
    for d, net, activation, m, seed in itertools.product(table["datasets"], nets, activations, table["methods"],
                                                         table["seeds"]):
        method = methods[m]
        size = (method.batch_size or batch_size) if method.minibatch else None
        runs.append(Run(d, net, activation, m, seed, method.iters or table["iters"], size,
                        fingerprint(method, size, options.get(d, {}))))
    return Study(table["name"], runs, options, parsed, methods, compare, fit)


def _check_entries(where: str, key: str, values: list, kind: type, choices: list | None,
                   low: int | None = None) -> None:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"{where}: [study] {key} must hold {kind.__name__}s, got {value!r}")
        if choices is not None and value not in choices:
            raise ValueError(f"{where}: [study] {key}: unknown {value!r}; choose from {choices}")
        if low is not None and value < low:
            raise ValueError(f"{where}: [study] {key} must be >= {low}, got {value}")
