"""Overall progress of a run from the core's per-phase fractions, and time left in the current phase."""
from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Tuple

#: Rough share of the run time of each phase (normalised over the phases a run has).
WEIGHTS = {"pretraining": 0.45, "choosing window": 0.45, "fine-tuning": 0.25, "classifying": 0.1}
#: The same for suggesting samples.
SUGGEST_WEIGHTS = {"classifying": 0.95, "writing": 0.05}


class PhaseProgress:
    """Maps ``(phase, fraction)`` to a 0-100 percentage over phases of the given weights, after "reading"."""

    def __init__(self, weights: Dict[str, float]):
        total = sum(weights.values())
        self.start: Dict[str, float] = {}
        done = 0.0
        for p, w in weights.items():
            self.start[p] = done
            done += w / total
        self.share = {p: w / total for p, w in weights.items()}
        self.order = ["reading"] + list(weights)

    def next_phase(self, phase: str) -> str:
        """The phase that starts when ``phase`` ends ("" after the last, or for a phase not in this run)."""
        if phase not in self.order or phase == self.order[-1]:
            return ""
        return self.order[self.order.index(phase) + 1]

    def percent(self, phase: str, fraction: float) -> Optional[float]:
        if phase not in self.share:
            return None
        return 100.0 * (self.start[phase] + self.share[phase] * min(max(fraction, 0.0), 1.0))


class RunProgress(PhaseProgress):
    """The phases of a classification run: pretraining and the window choice only when the run has them."""

    def __init__(self, pretrain: bool, choose_window: bool):
        super().__init__({p: w for p, w in WEIGHTS.items()
                          if (p != "pretraining" or pretrain) and (p != "choosing window" or choose_window)})

    def ranges(self, lo: float, hi: float) -> Dict[str, Tuple[float, float]]:
        """Each phase's (start, end) on a bar from ``lo`` to ``hi`` percent (the Processing progress bar)."""
        span = hi - lo
        return {p: (lo + span * self.start[p], lo + span * (self.start[p] + self.share[p])) for p in self.share}


class PhaseClock:
    """Estimates the seconds left in the current phase from its progress rate so far."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.phase, self.t0, self.f0 = "", 0.0, 0.0

    def update(self, phase: str, fraction: float) -> Optional[float]:
        """Seconds left in ``phase`` (None until the rate is known: a new phase, or under a second in)."""
        now = self.clock()
        if phase != self.phase:
            self.phase, self.t0, self.f0 = phase, now, fraction
            return None
        elapsed, done = now - self.t0, fraction - self.f0
        if elapsed < 1.0 or done <= 0:
            return None
        return max(0.0, elapsed / done * (1.0 - fraction))


def format_seconds(seconds: float) -> str:
    """'45 s', '3 min 05 s', '1 h 02 min'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
