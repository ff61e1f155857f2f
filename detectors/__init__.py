"""Pure detector models: no I/O, no wall clock (time is passed in as epoch seconds).

Every model has ``snapshot() -> dict`` (plain data) and ``restore(data)``; scoring never learns.
The models whose per-event cost matters are compiled (``detectors._core``, Rust in ``core/src``).
"""

import detectors._build  # noqa: F401 - checks the compiled parts before anything imports them
from detectors.baseline import DurationBaseline
from detectors.calendar import ActivityProfile, BusinessCalendar, WallClock, restore_calendar
from detectors.creep import Creep, CreepWatch
from detectors.drift import Shift, ShiftDetector
from detectors.silence import SourceRate
from detectors.throughput import Backlog, FlowTracker

__all__ = [
    "ActivityProfile",
    "Backlog",
    "BusinessCalendar",
    "Creep",
    "CreepWatch",
    "DurationBaseline",
    "FlowTracker",
    "Shift",
    "ShiftDetector",
    "SourceRate",
    "WallClock",
    "restore_calendar",
]
