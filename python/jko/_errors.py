"""The exceptions of jko.

Every error of the library arrives as one of these, with the message the
``jko`` command prints after ``jko: error:`` and its exit status as
``exit_code``. An interrupted call raises KeyboardInterrupt instead.
"""

from __future__ import annotations

from typing import Optional


class JkoError(Exception):
    """An error reported by the jko library (str(e) is its message)."""

    #: The exit status of the ``jko`` command for this error.
    exit_code: int = 1


class ScenarioError(JkoError, ValueError):
    """Bad input: a scenario or particle file that is missing, malformed or
    inconsistent, or a run directory's file that is (exit status 2).
    ``file`` is the file at fault, ``location`` the key (``species[1].potential``)
    or row."""

    exit_code = 2
    file: Optional[str] = None
    location: Optional[str] = None


class NumericalError(JkoError):
    """The numerics could not continue: a non-finite energy, or no sub-step
    size worked (exit status 3)."""

    exit_code = 3


class FileError(JkoError, OSError):
    """Reading or writing a file failed, or the output directory holds
    something the call may not replace (exit status 4). ``path`` is the
    file or directory."""

    exit_code = 4
    path: Optional[str] = None


class StoppedError(JkoError):
    """A physical event the scenario says to stop at (``on_collapse =
    "stop"``); the output is complete up to that step (exit status 5)."""

    exit_code = 5


class NotConvergedError(JkoError):
    """``equilibrium`` reached no stationary state within its limits; the
    output holds the last iterate (exit status 6)."""

    exit_code = 6


__all__ = [
    "JkoError",
    "ScenarioError",
    "NumericalError",
    "FileError",
    "StoppedError",
    "NotConvergedError",
]
