"""Progress reporting and cancellation, independent of any GUI."""
from __future__ import annotations

from typing import Callable, Optional


class Cancelled(Exception):
    """Raised inside a long computation when the user cancelled it."""


class Callback:
    """Receives progress and answers whether to stop.

    Subclass it (the Processing feedback and the QgsTask adapters do) or pass functions.
    ``progress(phase, fraction, message)`` gets fractions from 0 to 1 within each phase.
    """

    def __init__(self, progress: Optional[Callable[[str, float, str], None]] = None,
                 cancelled: Optional[Callable[[], bool]] = None,
                 log: Optional[Callable[[str], None]] = None,
                 warn: Optional[Callable[[str], None]] = None):
        self._progress, self._cancelled, self._log, self._warn = progress, cancelled, log, warn

    def progress(self, phase: str, fraction: float, message: str = "") -> None:
        if self._progress:
            self._progress(phase, fraction, message)

    def cancelled(self) -> bool:
        return bool(self._cancelled and self._cancelled())

    def log(self, message: str) -> None:
        if self._log:
            self._log(message)

    def warn(self, message: str) -> None:
        """A warning (the log when no warning function is given)."""
        if self._warn:
            self._warn(message)
        else:
            self.log(message)

    def gis_log(self, message: str, warning: bool = False) -> None:
        """The ``log(message, warning)`` function the GDAL layer takes."""
        (self.warn if warning else self.log)(message)

    def check(self) -> None:
        """Raise :class:`Cancelled` when cancellation was requested."""
        if self.cancelled():
            raise Cancelled("Cancelled by the user.")


SILENT = Callback()
