"""jko: mesh-free particle JKO schemes for multi-species Wasserstein gradient
flows (Poisson-Nernst-Planck, Keller-Segel, porous media), from Python.

The numerics are the Rust library's (the extension module ``jko._jko``);
this package adds :func:`read_run`, which reads a run directory back.

- :class:`Scenario`: ``Scenario.from_file(path)``, ``Scenario.from_toml(text)``;
- :class:`Simulation`: ``Simulation(scenario)``, ``.step(n)``, ``.positions(name)``,
  ``.weights(name)``, ``.densities(name)``, ``.energy()``, ``.set_positions(name, x)``;
- :func:`run`, :func:`eulerian`, :func:`equilibrium`, :func:`compare`: the
  ``jko`` commands, writing and reading the same directories;
- :func:`read_run`: a run directory's CSV files as pandas DataFrames (numpy
  record arrays without pandas), with the exact numbers written;
- :class:`JkoError` and its subclasses: the library's errors, with the
  messages the ``jko`` command prints.

Long calls release the GIL; Ctrl-C stops them cleanly (KeyboardInterrupt).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Union

import numpy as np

from . import _jko
from ._errors import (
    FileError,
    JkoError,
    NotConvergedError,
    NumericalError,
    ScenarioError,
    StoppedError,
)
from ._jko import Scenario, Simulation, equilibrium, eulerian, run

__version__: str = _jko.__version__

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "Scenario",
    "Simulation",
    "run",
    "eulerian",
    "equilibrium",
    "compare",
    "Comparison",
    "read_run",
    "RunData",
    "JkoError",
    "ScenarioError",
    "NumericalError",
    "FileError",
    "StoppedError",
    "NotConvergedError",
    "__version__",
]


@dataclass
class Comparison:
    """What :func:`compare` found: one row per written step and species
    (``rows``, dicts with mass, mean, cov, l1, w1, w2, energy_a/b ...), the
    energy curves of both runs (``energy``), ``notes``, and ``table``, the
    text ``jko compare`` prints (also ``str(comparison)``)."""

    dimension: int
    a: Dict[str, Any]
    b: Dict[str, Any]
    rows: List[Dict[str, Any]]
    energy: List[Dict[str, Any]]
    notes: List[str]
    table: str

    def __str__(self) -> str:
        return self.table

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def compare(a: PathLike, b: PathLike, last: bool = False) -> Comparison:
    """Distances between the runs in directories ``a`` and ``b``, as
    ``jko compare`` computes them, for every step both wrote (``last=True``:
    each run's last written step). Raises ScenarioError for a malformed run
    file, NumericalError for a non-finite distance."""
    return Comparison(**_jko.compare(os.fspath(a), os.fspath(b), last))


# Column types of the run files (docs/SPEC.md §5; events.csv: README,
# "Events"). Any other column is read as float64.
_INTS = frozenset({"step", "id", "iterations"})
_STRS = frozenset({"species", "event", "message"})


@dataclass
class RunData:
    """The files of a run directory, as read by :func:`read_run`.

    ``particles`` (particle runs and equilibria) or ``density`` (grid runs)
    is the data file, ``energy`` energy.csv, ``events`` events.csv (None
    where the run writes none); each is a pandas DataFrame, or a numpy
    record array without pandas. ``scenario`` is the text of the copy of the
    scenario in the directory (None if absent)."""

    dir: str
    kind: str
    particles: Any = None
    density: Any = None
    energy: Any = None
    events: Any = None
    scenario: Optional[str] = None
    files: Dict[str, str] = field(default_factory=dict)


def _have_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def _read_csv(path: str, as_pandas: bool) -> Any:
    """One CSV file of a run, column by column with the types above: every
    float through Python's float(), which reads the shortest round-trip
    form the library writes back to the same float64."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ScenarioError(f"{path}: header: the file is empty") from None
        columns: List[List[Any]] = [[] for _ in header]
        kinds = [int if n in _INTS else str if n in _STRS else float for n in header]
        for line, record in enumerate(reader, start=2):
            if len(record) != len(header):
                raise ScenarioError(
                    f"{path}: row {line}: {len(record)} fields, the header has {len(header)}"
                )
            for col, kind, text in zip(columns, kinds, record):
                try:
                    col.append(kind(text))
                except ValueError:
                    raise ScenarioError(
                        f"{path}: row {line}: {text!r} is not a valid {kind.__name__}"
                    ) from None
    arrays = {}
    for name, kind, col in zip(header, kinds, columns):
        if kind is int:
            arrays[name] = np.array(col, dtype=np.int64)
        elif kind is float:
            arrays[name] = np.array(col, dtype=np.float64)
        else:
            arrays[name] = np.array(col, dtype=object if as_pandas else str)
    if as_pandas:
        import pandas as pd

        return pd.DataFrame(arrays, columns=header)
    n = len(columns[0]) if columns else 0
    dtype = []
    for name, kind in zip(header, kinds):
        if kind is str:
            width = max((len(s) for s in arrays[name]), default=0)
            dtype.append((name, f"U{max(width, 1)}"))
        else:
            dtype.append((name, arrays[name].dtype))
    out = np.recarray(n, dtype=dtype)
    for name in header:
        out[name] = arrays[name]
    return out


def read_run(
    dir: PathLike, partial: bool = False, pandas: Optional[bool] = None
) -> RunData:
    """Read the run in directory ``dir`` (of :func:`run`, :func:`eulerian`,
    :func:`equilibrium` or the ``jko`` command).

    Returns a :class:`RunData` with particles.csv (or density.csv),
    energy.csv and events.csv as pandas DataFrames when pandas is installed
    (``pandas=False`` forces numpy record arrays), holding exactly the
    numbers of the files. ``partial=True`` reads the ``.partial`` files of a
    run that has not finished (interrupted, or still running) where the
    final ones are absent; their last rows may be past the last checkpoint.
    """
    root = os.fspath(dir)
    as_pandas = _have_pandas() if pandas is None else bool(pandas)
    if not os.path.isdir(root):
        raise FileError(f"{root}: not a directory holding a run")

    def locate(name: str) -> Optional[str]:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            return path
        if partial and os.path.isfile(path + ".partial"):
            return path + ".partial"
        return None

    files = {}
    for name in ("particles.csv", "density.csv", "energy.csv", "events.csv", "scenario.toml"):
        found = locate(name)
        if found is not None:
            files[name] = found
    data_name = "particles.csv" if "particles.csv" in files else "density.csv"
    if data_name not in files or "energy.csv" not in files:
        unfinished = [
            n
            for n in ("particles.csv", "density.csv", "energy.csv")
            if os.path.isfile(os.path.join(root, n + ".partial"))
        ]
        hint = (
            f"; it has {', '.join(n + '.partial' for n in unfinished)}: an unfinished run "
            "(read_run(dir, partial=True) reads it)"
            if unfinished and not partial
            else ""
        )
        raise FileError(
            f"{root}: no complete run here (particles.csv or density.csv, and energy.csv){hint}"
        )
    out = RunData(
        dir=root,
        kind="particles" if data_name == "particles.csv" else "grid",
        files=files,
    )
    data = _read_csv(files[data_name], as_pandas)
    if data_name == "particles.csv":
        out.particles = data
    else:
        out.density = data
    out.energy = _read_csv(files["energy.csv"], as_pandas)
    if "events.csv" in files:
        out.events = _read_csv(files["events.csv"], as_pandas)
    if "scenario.toml" in files:
        with open(files["scenario.toml"], encoding="utf-8") as f:
            out.scenario = f.read()
    return out
