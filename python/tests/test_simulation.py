"""A Simulation stepped from Python against `jko run` of the same scenario."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import jko

from conftest import PNP_2D, jko_bin


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def frame(particles, step: int, species: str, columns: list[str]) -> np.ndarray:
    rows = particles[(particles["step"] == step) & (particles["species"] == species)]
    return np.column_stack([np.asarray(rows[c], dtype=np.float64) for c in columns])


def test_stepped_positions_are_those_of_run_to_the_bit(pnp_2d, tmp_path):
    out = tmp_path / "run"
    summary = jko.run(pnp_2d, out)
    assert summary["steps"] == 4
    r = jko.read_run(out)
    written = sorted(set(int(s) for s in r.particles["step"]))
    assert written == [0, 2, 4]

    sim = jko.Simulation(pnp_2d)
    assert sim.species == ["cation", "anion"]
    energy = r.energy
    for n in range(0, 5):
        if n > 0:
            report = sim.step()
            # The report is the row of energy.csv, to the bit.
            row = energy[energy["step"] == n]
            for col in ("energy", "diffusion", "potential", "interaction", "w2_step", "gradient_norm"):
                assert report[col] == float(np.asarray(row[col])[0]), col
            assert report["iterations"] == int(np.asarray(row["iterations"])[0])
        assert sim.step_index == n
        assert sim.time == n * 0.05
        if n not in written:
            continue
        for name in sim.species:
            assert same_bits(sim.positions(name), frame(r.particles, n, name, ["x", "y"])), (n, name)
            assert same_bits(sim.weights(name), frame(r.particles, n, name, ["weight"])[:, 0])
            assert same_bits(sim.densities(name), frame(r.particles, n, name, ["density"])[:, 0])


def test_stepping_in_one_call_or_many_and_reading_in_between_change_nothing(pnp_2d):
    a = jko.Simulation(pnp_2d)
    a.step(4)
    b = jko.Simulation(pnp_2d)
    for _ in range(4):
        b.energy()
        b.densities("anion")
        b.step()
    assert a.step_index == b.step_index == 4
    for name in a.species:
        assert same_bits(a.positions(name), b.positions(name))


@pytest.mark.skipif(jko_bin() is None, reason="no jko binary (cargo build --release)")
def test_python_run_writes_the_bytes_of_the_command_line(pnp_2d, tmp_path):
    path = tmp_path / "pnp_2d.toml"
    path.write_text(PNP_2D)
    subprocess.run(
        [str(jko_bin()), "run", str(path), "--out", str(tmp_path / "cli"), "--quiet"],
        check=True,
        capture_output=True,
    )
    jko.run(jko.Scenario.from_file(path), tmp_path / "py")
    for name in ("particles.csv", "energy.csv", "events.csv", "scenario.toml"):
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name


def test_energy_parts_sum_to_the_total(pnp_2d):
    sim = jko.Simulation(pnp_2d)
    for _ in range(2):
        e = sim.energy()
        assert set(e) == {"diffusion", "potential", "interaction", "total"}
        assert e["diffusion"] + e["potential"] + e["interaction"] == e["total"]
        assert e["interaction"] != 0.0 and e["diffusion"] != 0.0
        # The energy of the current positions is the one the last step reported.
        assert e["total"] == pytest.approx(sim.last_report["energy"], rel=1e-12)
        sim.step()


def test_arrays_have_the_documented_shapes(pnp_2d):
    sim = jko.Simulation(pnp_2d)
    x = sim.positions("cation")
    assert x.shape == (150, 2) and x.dtype == np.float64
    assert sim.weights("anion").shape == (120,)
    assert sim.densities("anion").shape == (120,)
    assert np.all(sim.densities("anion") > 0)
    # Copies: changing them changes nothing in the simulation.
    x[:] = 0.0
    assert not np.all(sim.positions("cation") == 0.0)
    assert dict(sim.bandwidths) == {"cation": 0.2, "anion": 0.2}


def test_set_positions_moves_the_particles_and_the_next_step_starts_there(pnp_2d):
    sim = jko.Simulation(pnp_2d)
    x = sim.positions("anion") * 0.5
    sim.set_positions("anion", x)
    assert same_bits(sim.positions("anion"), x)
    assert sim.step_index == 0
    sim.step()
    assert sim.step_index == 1
    assert not same_bits(sim.positions("anion"), x)


def test_a_one_dimensional_box_simulation(ou_box_1d):
    sim = jko.Simulation(ou_box_1d)
    assert sim.dimension == 1
    x = sim.positions("p")
    assert x.shape == (200, 1)
    sim.step(2)
    x = sim.positions("p")
    assert np.all((x >= -3.0) & (x <= 3.0))
    # On the wall is inside.
    x[0, 0] = 3.0
    sim.set_positions("p", x)
