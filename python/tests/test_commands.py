"""eulerian, equilibrium and compare on tiny scenarios."""

from __future__ import annotations

import numpy as np
import pytest

import jko


def test_eulerian_run_and_compare_with_particles(ou_box_1d, tmp_path):
    s = jko.eulerian(ou_box_1d, tmp_path / "grid")
    assert s["steps"] == 3
    g = jko.read_run(tmp_path / "grid")
    assert g.kind == "grid" and g.particles is None
    assert sorted(set(np.asarray(g.density["step"]).tolist())) == [0, 1, 2, 3]
    jko.run(ou_box_1d, tmp_path / "particles")
    c = jko.compare(tmp_path / "particles", tmp_path / "grid")
    assert isinstance(c, jko.Comparison)
    assert [r["step"] for r in c.rows] == [0, 1, 2, 3]
    assert c.dimension == 1 and c.a["kind"] == "particles" and c.b["kind"] == "grid"
    for r in c.rows:
        assert r["species"] == "p"
        assert r["mass_a"] == pytest.approx(r["mass_b"], rel=1e-9)
        assert 0.0 < r["l1"] < 0.5 and r["w1"] is not None and r["w2"] >= r["w1"] * 0.999
    assert "l1" in str(c).lower() or "L1" in str(c)
    # Refusing to write over a run unless forced, as the CLI.
    with pytest.raises(jko.FileError):
        jko.eulerian(ou_box_1d, tmp_path / "grid")
    jko.eulerian(ou_box_1d, tmp_path / "grid", force=True)


def test_compare_a_run_with_itself_is_zero(pnp_2d, tmp_path):
    jko.run(pnp_2d, tmp_path / "a")
    c = jko.compare(tmp_path / "a", tmp_path / "a")
    assert len(c) == 3 * 2
    for r in c:
        assert r["l1"] == 0.0 and r["mean_distance"] == 0.0 and r["energy_diff"] == 0.0
        assert r["w1"] is None  # d = 2
    last = jko.compare(tmp_path / "a", tmp_path / "a", last=True)
    assert {r["step"] for r in last} == {4}


def test_equilibrium_particles_and_grid(ou_box_1d, tmp_path):
    p = jko.equilibrium(ou_box_1d, tmp_path / "eq")
    assert p["stages"] >= 1 and p["final_energy"] < p["initial_energy"]
    g = jko.equilibrium(ou_box_1d, tmp_path / "eq_grid", grid=True)
    assert g["residual"] < 1e-6 and g["final_energy"] <= g["initial_energy"]
    a = jko.read_run(tmp_path / "eq")
    assert list(np.asarray(a.energy["step"])) == [0, 1]
    c = jko.compare(tmp_path / "eq", tmp_path / "eq_grid")
    final = [r for r in c.rows if r["step"] == 1]
    # The Gaussian N(0, 1) cut to the box, both ways.
    assert final and final[0]["w1"] < 0.05
    assert final[0]["cov_a"][0] == pytest.approx(final[0]["cov_b"][0], rel=0.05)
    with pytest.raises(ValueError):
        jko.equilibrium(ou_box_1d, tmp_path / "eq_grid", grid=True, resume=True)


def test_resume_of_a_complete_run(pnp_2d, tmp_path):
    jko.run(pnp_2d, tmp_path / "a")
    s = jko.run(pnp_2d, tmp_path / "a", resume=True)
    assert s["already_complete"]
    with pytest.raises(jko.FileError, match="--resume|--force"):
        jko.run(pnp_2d, tmp_path / "a")
