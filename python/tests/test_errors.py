"""Every error arrives as a Python exception with the command line's message."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import jko

from conftest import OU_BOX_1D, PNP_2D, jko_bin


def test_bad_toml_is_a_scenario_error():
    with pytest.raises(jko.ScenarioError) as e:
        jko.Scenario.from_toml("dimension = \n", "bad.toml")
    assert isinstance(e.value, ValueError) and isinstance(e.value, jko.JkoError)
    assert str(e.value).startswith("bad.toml: TOML: ")
    assert e.value.exit_code == 2
    assert e.value.file == "bad.toml" and e.value.location == "TOML"


def test_a_bad_field_is_named():
    with pytest.raises(ValueError) as e:
        jko.Scenario.from_toml(PNP_2D.replace("time_step = 0.05", "time_step = -1.0"), "s.toml")
    assert isinstance(e.value, jko.ScenarioError)
    assert e.value.location == "time_step"
    assert str(e.value).startswith("s.toml: time_step: ")
    with pytest.raises(jko.ScenarioError, match=r"species\[1\]\.potential"):
        jko.Scenario.from_toml(PNP_2D.replace("stiffness = [1.0, 2.0]", "stiffness = [1.0]"))


def test_a_missing_file_is_a_scenario_error(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(jko.ScenarioError, match="cannot open the scenario") as e:
        jko.Scenario.from_file(missing)
    assert e.value.file == str(missing)
    # The commands take paths too.
    with pytest.raises(jko.ScenarioError):
        jko.run(str(missing), tmp_path / "out")
    with pytest.raises(TypeError):
        jko.Simulation(42)


@pytest.mark.skipif(jko_bin() is None, reason="no jko binary (cargo build --release)")
def test_the_message_is_the_command_lines(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(PNP_2D.replace("particles = 120", "particles = -3"))
    cli = subprocess.run(
        [str(jko_bin()), "run", str(path), "--out", str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2
    with pytest.raises(jko.ScenarioError) as e:
        jko.run(path, tmp_path / "out")
    assert cli.stderr.strip() == f"jko: error: {e.value}"
    assert e.value.exit_code == cli.returncode


def test_set_positions_is_validated_and_changes_nothing_when_refused(pnp_2d):
    sim = jko.Simulation(pnp_2d)
    before = sim.positions("cation")
    with pytest.raises(ValueError, match=r"shape \(150, 2\), got \(150, 3\)"):
        sim.set_positions("cation", np.zeros((150, 3)))
    with pytest.raises(ValueError, match=r"got \(300,\)"):
        sim.set_positions("cation", np.zeros(300))
    bad = before.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="row 7 is not finite"):
        sim.set_positions("cation", bad)
    bad[7, 1] = np.inf
    with pytest.raises(ValueError, match="row 7 is not finite"):
        sim.set_positions("cation", bad)
    with pytest.raises(ValueError, match="array of numbers"):
        sim.set_positions("cation", [["a", "b"]] * 150)
    assert sim.positions("cation").tobytes() == before.tobytes()


def test_set_positions_outside_the_box_is_refused(ou_box_1d):
    sim = jko.Simulation(ou_box_1d)
    x = sim.positions("p")
    x[3, 0] = 3.5
    with pytest.raises(ValueError, match="row 3, at \\[3.5\\], lies outside the domain's box"):
        sim.set_positions("p", x)


def test_an_unknown_species_is_named(pnp_2d):
    sim = jko.Simulation(pnp_2d)
    for call in (sim.positions, sim.weights, sim.densities):
        with pytest.raises(ValueError, match='no species named "electron"'):
            call("electron")
    with pytest.raises(ValueError, match='no species named "electron"'):
        sim.set_positions("electron", np.zeros((1, 2)))
    with pytest.raises(ValueError, match="n must be >= 0"):
        sim.step(-1)


def test_run_refuses_a_directory_of_other_files_as_the_cli_does(pnp_2d, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(jko.FileError) as e:
        jko.run(pnp_2d, out)
    assert isinstance(e.value, OSError) and e.value.exit_code == 4
    assert "holds no jko run" in str(e.value)
    with pytest.raises(ValueError, match="exclude each other"):
        jko.run(pnp_2d, out, force=True, resume=True)


def test_a_scenario_the_simulation_refuses_raises_not_panics():
    # Neutrality: a box with electrodes needs a neutral system.
    text = OU_BOX_1D.replace('name = "p"', 'name = "p"\ncharge = 1.0').replace(
        "[density]", "[coupling]\nstrength = 1.0\n\n[density]"
    )
    with pytest.raises(jko.JkoError) as e:
        jko.Simulation(jko.Scenario.from_toml(text, "charged.toml"))
    assert "charged.toml" in str(e.value)


def test_read_run_of_no_run(tmp_path):
    with pytest.raises(jko.FileError, match="no complete run"):
        jko.read_run(tmp_path)
    with pytest.raises(jko.FileError, match="not a directory"):
        jko.read_run(tmp_path / "missing")
