"""read_run gives the exact numbers of the CSV files."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import jko

INTS = {"step", "id", "iterations"}
STRS = {"species", "event", "message"}


def parse(path):
    """The file by Python's own csv module and float()."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    cols = {}
    for k, name in enumerate(header):
        kind = int if name in INTS else str if name in STRS else float
        cols[name] = [kind(r[k]) for r in body]
    return header, cols


def assert_exact(table, path):
    header, cols = parse(path)
    assert list(table.dtype.names if hasattr(table, "dtype") and table.dtype.names else table.columns) == header
    for name in header:
        got = list(np.asarray(table[name]).tolist())
        want = cols[name]
        assert len(got) == len(want), name
        for g, w in zip(got, want):
            if isinstance(w, float):
                # Bit for bit (NaN never appears in a run's files).
                assert np.float64(g).tobytes() == np.float64(w).tobytes(), (name, g, w)
            else:
                assert g == w, (name, g, w)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from conftest import PNP_2D

    out = tmp_path_factory.mktemp("read") / "run"
    jko.run(jko.Scenario.from_toml(PNP_2D), out)
    return out


@pytest.mark.parametrize("use_pandas", [True, False])
def test_read_run_gives_the_numbers_written(run_dir, use_pandas):
    if use_pandas:
        pytest.importorskip("pandas")
    r = jko.read_run(run_dir, pandas=use_pandas)
    assert r.kind == "particles" and r.density is None
    if use_pandas:
        import pandas as pd

        assert isinstance(r.particles, pd.DataFrame)
    else:
        assert isinstance(r.particles, np.recarray)
        assert r.particles.x.dtype == np.float64 and r.particles.step.dtype == np.int64
    assert_exact(r.particles, run_dir / "particles.csv")
    assert_exact(r.energy, run_dir / "energy.csv")
    assert_exact(r.events, run_dir / "events.csv")
    assert r.scenario == (run_dir / "scenario.toml").read_text()
    assert len(r.particles) == 3 * 270
    assert list(np.asarray(r.energy["step"])) == [0, 1, 2, 3, 4]


def test_read_run_reads_events_with_commas_and_quotes(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "particles.csv").write_text("step,time,species,id,x,weight,density\n0,0,a,0,0.1,1,2.5\n")
    (run / "energy.csv").write_text(
        "step,time,energy,diffusion,potential,interaction,w2_step,iterations,gradient_norm\n"
        "0,0,1.5,0.5,1,0,0,0,0\n"
    )
    (run / "events.csv").write_text(
        'step,time,event,species,value,message\n3,0.15,collapse,a,1e300,"a, ""quoted"" message"\n'
    )
    r = jko.read_run(run, pandas=False)
    assert r.events.message[0] == 'a, "quoted" message'
    assert r.events.value[0] == 1e300
    assert_exact(r.events, run / "events.csv")


def test_read_run_partial(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "particles.csv.partial").write_text("step,time,species,id,x,weight,density\n")
    (run / "energy.csv.partial").write_text(
        "step,time,energy,diffusion,potential,interaction,w2_step,iterations,gradient_norm\n"
    )
    with pytest.raises(jko.FileError, match="partial=True"):
        jko.read_run(run)
    r = jko.read_run(run, partial=True, pandas=False)
    assert len(r.particles) == 0 and r.particles.x.dtype == np.float64
    assert r.events is None


def test_read_run_without_pandas_gives_record_arrays(run_dir, monkeypatch):
    monkeypatch.setattr(jko, "_have_pandas", lambda: False)
    r = jko.read_run(run_dir)
    assert isinstance(r.particles, np.recarray) and isinstance(r.energy, np.recarray)
    assert_exact(r.particles, run_dir / "particles.csv")
    assert r.particles.species.dtype.kind == "U"
