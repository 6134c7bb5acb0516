"""Type stubs of the extension module jko._jko (the Rust library's wrappers)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "os.PathLike[str]"]

__version__: str
PROGRAM: str

class Scenario:
    """A validated scenario (docs/SPEC.md §3)."""

    @staticmethod
    def from_file(path: _Path) -> Scenario:
        """Read and validate a scenario file (TOML). Raises ScenarioError."""
    @staticmethod
    def from_toml(text: str, name: str = "<string>") -> Scenario:
        """Parse and validate scenario text; ``name`` stands for the file in
        messages and anchors relative paths. Raises ScenarioError."""
    @property
    def path(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def dimension(self) -> int: ...
    @property
    def time_step(self) -> float: ...
    @property
    def steps(self) -> int: ...
    @property
    def output_every(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def species(self) -> List[str]: ...
    @property
    def is_box(self) -> bool: ...

class Simulation:
    """A particle simulation of a scenario, stepped from Python."""

    def __init__(self, scenario: Union[Scenario, _Path]) -> None: ...
    def step(self, n: int = 1) -> Dict[str, Any]:
        """Take ``n`` steps (GIL released; Ctrl-C raises KeyboardInterrupt and
        keeps the last completed step). Returns the last step's report."""
    @property
    def last_report(self) -> Dict[str, Any]: ...
    @property
    def step_index(self) -> int: ...
    @property
    def time(self) -> float: ...
    @property
    def dimension(self) -> int: ...
    @property
    def scenario(self) -> Scenario: ...
    @property
    def species(self) -> List[str]: ...
    @property
    def bandwidths(self) -> List[Tuple[str, float]]: ...
    @property
    def rejected_attempts(self) -> int: ...
    def positions(self, name: str) -> npt.NDArray[np.float64]:
        """Positions of species ``name``, shape (N, d)."""
    def weights(self, name: str) -> npt.NDArray[np.float64]:
        """Weights of species ``name``, shape (N,)."""
    def densities(self, name: str) -> npt.NDArray[np.float64]:
        """Blob density of species ``name`` at its particles, shape (N,)."""
    def energy(self) -> Dict[str, float]:
        """``diffusion``, ``potential``, ``interaction`` and ``total``."""
    def set_positions(self, name: str, positions: npt.ArrayLike) -> None:
        """Replace the positions of species ``name`` (shape (N, d), finite,
        inside the box). Raises ValueError otherwise."""

def run(
    scenario: Union[Scenario, _Path], out: _Path, force: bool = False, resume: bool = False
) -> Dict[str, Any]:
    """``jko run``: the particle run to directory ``out``."""

def eulerian(scenario: Union[Scenario, _Path], out: _Path, force: bool = False) -> Dict[str, Any]:
    """``jko eulerian``: the grid run to directory ``out``."""

def equilibrium(
    scenario: Union[Scenario, _Path],
    out: _Path,
    grid: bool = False,
    force: bool = False,
    resume: bool = False,
) -> Dict[str, Any]:
    """``jko equilibrium``: the least-energy state to directory ``out``."""

def compare(a: _Path, b: _Path, last: bool = False) -> Dict[str, Any]:
    """``jko compare`` as a dict (jko.compare wraps it in a Comparison)."""

