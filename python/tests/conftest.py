"""Shared scenarios and helpers of the Python tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import jko

REPO = Path(__file__).resolve().parents[2]

# Two charged species in 2D (Poisson-Nernst-Planck in a well): small and fast,
# but every energy term is there.
PNP_2D = """
dimension = 2
time_step = 0.05
steps = 4
output_every = 2
seed = 3

[coupling]
strength = 1.0
softening = 0.05

[density]
bandwidth = 0.2

[[species]]
name = "cation"
charge = 1.0
diffusion = 0.5
particles = 150
potential = { kind = "quadratic", center = [0.0, 0.0], stiffness = 1.0 }
initial = { kind = "gaussian", mean = [0.3, 0.0], std = 0.5 }

[[species]]
name = "anion"
charge = -1.0
diffusion = 0.5
particles = 120
potential = { kind = "quadratic", center = [0.0, 0.0], stiffness = [1.0, 2.0] }
initial = { kind = "uniform", lower = [-1.0, -1.0], upper = [1.0, 1.0] }
"""

# Ornstein-Uhlenbeck in a 1D box with a grid: for the grid solvers and the
# equilibrium, and for set_positions' box check.
OU_BOX_1D = """
dimension = 1
time_step = 0.05
steps = 3
output_every = 1
seed = 5

[density]
bandwidth = 0.1

[domain]
kind = "box"
lower = [-3.0]
upper = [3.0]

[[species]]
name = "p"
diffusion = 1.0
particles = 200
potential = { kind = "quadratic", center = [0.0], stiffness = 1.0 }
initial = { kind = "gaussian", mean = [0.5], std = 0.5 }

[grid]
cells = 120

[equilibrium]
max_stages = 30
"""


def big_2d(particles: int, bandwidth: float = 0.06) -> str:
    """One species of `particles` particles in a 2D well: at 1e4 particles
    its first step takes ~200 L-BFGS iterations (0.4-0.8 s on two cores),
    the next ones fewer."""
    return f"""
dimension = 2
time_step = 0.05
steps = 100
seed = 11

[density]
bandwidth = {bandwidth}

[[species]]
name = "u"
diffusion = 1.0
particles = {particles}
potential = {{ kind = "quadratic", center = [0.0, 0.0], stiffness = 1.0 }}
initial = {{ kind = "gaussian", mean = [0.5, 0.0], std = 0.5 }}
"""


@pytest.fixture
def pnp_2d() -> jko.Scenario:
    return jko.Scenario.from_toml(PNP_2D, "pnp_2d.toml")


@pytest.fixture
def ou_box_1d() -> jko.Scenario:
    return jko.Scenario.from_toml(OU_BOX_1D, "ou_box_1d.toml")


def jko_bin() -> Path | None:
    """The release binary (JKO_BIN, or target/release/jko), if built."""
    path = Path(os.environ.get("JKO_BIN") or REPO / "target" / "release" / "jko")
    if path.is_file() and os.access(path, os.X_OK):
        return path
    found = shutil.which("jko")
    return Path(found) if found else None
