"""Stepping releases the GIL, and Ctrl-C stops a step cleanly."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import jko

from conftest import big_2d

BIG = 10_000


@pytest.fixture(scope="module")
def big() -> jko.Scenario:
    return jko.Scenario.from_toml(big_2d(BIG), "big.toml")


@pytest.fixture
def ctrl_c():
    """Python's own SIGINT handler, as in an interactive session: a process
    started in the background by a non-interactive shell inherits SIGINT
    ignored, and Python then installs no handler (the signal would be lost
    and these tests could not tell anything)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_step_does_not_hold_the_gil(big):
    sim = jko.Simulation(big)
    stamps: list[float] = []
    stop = threading.Event()

    def count():
        n = 0
        while not stop.is_set():
            n += 1
            if n % 200 == 0:
                stamps.append(time.perf_counter())

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.05)
        t0 = time.perf_counter()
        sim.step()
        t1 = time.perf_counter()
    finally:
        stop.set()
        t.join()
    span = t1 - t0
    assert span > 0.2, f"the step took {span:.3f} s: too short to tell"
    # Progress of the other thread well inside the step: with the GIL held
    # throughout it could not run at all there.
    inside = [s for s in stamps if t0 + 0.1 * span < s < t1 - 0.1 * span]
    assert len(inside) >= 20, f"{len(inside)} marks in a {span:.2f} s step"
    # Marks spread over the step, not a burst at one end.
    assert inside[-1] - inside[0] > 0.5 * span


def test_ctrl_c_stops_a_step_and_keeps_the_last_completed_one(big, ctrl_c):
    sim = jko.Simulation(big)
    t0 = time.perf_counter()
    sim.step()
    one_step = time.perf_counter() - t0
    x1 = sim.positions("u")
    report1 = sim.last_report

    # The second step takes about half as long as the first (a better first
    # guess, a relaxed cloud): a signal at 15% of the first lands in it.
    delay = 0.15 * one_step
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sim.step(100)
    finally:
        timer.cancel()
        timer.join()
    stopped_after = time.perf_counter() - t0
    # Promptly: well before the step could have finished.
    assert stopped_after < delay + 0.5 * one_step + 0.2, (stopped_after, one_step)
    # The state after the last completed step, unchanged.
    assert sim.step_index == 1
    assert sim.time == big.time_step
    assert sim.positions("u").tobytes() == x1.tobytes()
    assert sim.last_report == report1

    # Usable afterwards (the interrupt was withdrawn), and the step redone is
    # the one an uninterrupted simulation takes, to the bit.
    sim.step()
    reference = jko.Simulation(big)
    reference.step(2)
    assert sim.step_index == 2
    assert sim.positions("u").tobytes() == reference.positions("u").tobytes()


def test_ctrl_c_stops_a_run_which_then_resumes_to_the_same_bytes(tmp_path, ctrl_c):
    s = jko.Scenario.from_toml(big_2d(3000).replace("steps = 100", "steps = 6\noutput_every = 2"))
    t0 = time.perf_counter()
    jko.run(s, tmp_path / "whole")
    whole = time.perf_counter() - t0

    timer = threading.Timer(0.5 * whole, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt, match="interrupted after step"):
            jko.run(s, tmp_path / "cut")
    finally:
        timer.cancel()
        timer.join()
    assert (tmp_path / "cut" / "checkpoint.jko").is_file()
    summary = jko.run(s, tmp_path / "cut", resume=True)
    assert summary["resumed_from"] is not None
    for name in ("particles.csv", "energy.csv", "events.csv"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_ctrl_c_stops_an_eulerian_run_with_its_files_complete(tmp_path, ctrl_c):
    """The grid run keeps no checkpoint: Ctrl-C ends it after the step in
    progress, with KeyboardInterrupt, and its files complete to that step
    (before, the library never looked and the call ran to its end)."""
    from conftest import REPO

    text = (REPO / "data" / "scenarios" / "pnp_2d.toml").read_text()
    s = jko.Scenario.from_toml(text.replace("steps = 50", "steps = 20000"))
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt, match="complete up to it"):
            jko.eulerian(s, tmp_path / "grid")
    finally:
        timer.cancel()
        timer.join()
    # 20000 steps take minutes; a step well under a second.
    assert time.perf_counter() - t0 < 10.0
    rows = (tmp_path / "grid" / "energy.csv").read_text().splitlines()
    assert len(rows) >= 3  # the header, step 0, and at least step 1
    assert not (tmp_path / "grid" / "energy.csv.partial").exists()


def test_ctrl_c_stops_a_grid_equilibrium(tmp_path, ctrl_c):
    """The grid equilibrium's Newton solve (1024 x 512 cells: ~20 steps of
    ~1 s) stops at its next step and writes nothing."""
    from conftest import REPO

    text = (REPO / "data" / "scenarios" / "pn_junction_2d.toml").read_text()
    s = jko.Scenario.from_toml(text.replace("cells = [128, 64]", "cells = [1024, 512]"))
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt, match="grid equilibrium stopped after"):
            jko.equilibrium(s, tmp_path / "eq", grid=True)
    finally:
        timer.cancel()
        timer.join()
    assert time.perf_counter() - t0 < 15.0
    assert not (tmp_path / "eq").exists()


def test_a_busy_simulation_says_so(big):
    sim = jko.Simulation(big)
    errors: list[BaseException] = []
    started = threading.Event()

    def step():
        started.set()
        try:
            sim.step()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=step)
    t.start()
    started.wait()
    time.sleep(0.05)
    with pytest.raises(RuntimeError, match="busy"):
        sim.positions("u")
    t.join()
    assert not errors
    assert sim.step_index == 1
    assert np.all(np.isfinite(sim.positions("u")))
