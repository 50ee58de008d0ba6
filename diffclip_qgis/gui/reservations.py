"""Locks that only a dead holder leaves stale, and numbered files that two QGIS sessions never share."""
from __future__ import annotations

import os
from re import Pattern
from typing import Set, Tuple

from qgis.PyQt.QtCore import QLockFile

from . import tr


def session_lock(path: str) -> QLockFile:
    """The lock file ``path`` (not taken), held for as long as a session uses what it guards: stale only once its
    holder is dead (on this computer)."""
    lock = QLockFile(path)
    lock.setStaleLockTime(0)
    return lock


def reserve_number(folder: str, numbered: Pattern[str], lock_name: str) -> Tuple[int, QLockFile]:
    """The first number above that of every file in ``folder`` whose name starts with a match of ``numbered`` (the
    number in its first group) whose lock (``lock_name`` with ``{number:03d}``, in ``folder``) no running job
    holds, another QGIS's included, and that lock, taken. ValueError when ``folder`` cannot be read or written."""

    def taken() -> Set[int]:
        return {int(m.group(1)) for m in map(numbered.match, os.listdir(folder)) if m}

    try:
        number = max(taken(), default=0) + 1
        while True:
            lock = session_lock(os.path.join(folder, lock_name.format(number=number)))
            if lock.tryLock(0):
                if number not in taken():   # not written by a job that ended between the listing and the lock
                    return number, lock
                lock.unlock()
            elif lock.error() != QLockFile.LockError.LockFailedError:
                raise OSError(lock.error())
            number += 1
    except OSError:
        raise ValueError(tr("Cannot write into the output folder {folder}. Choose another output folder in "
                            "Settings.").format(folder=folder)) from None
