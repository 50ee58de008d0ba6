"""The profile's sample folder: the samples of projects stored in a database and, in its ``unsaved`` folder,
those of projects never saved, where they survive a crash or a reboot.

A file of the unsaved folder that a saved project took the samples of, or names, is marked as saved
(``<file>.saved``) and never offered again. The session using a file of the unsaved folder holds a lock on it
(``<file>.lock``) from before it is created until the project closes, so another QGIS never offers or deletes
it; a crashed session's lock is stale at once.
"""
from __future__ import annotations

import os
from typing import List

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QCoreApplication, QLockFile

from ..core.files import WAL, remove_geopackage, same_file
from . import tr
from .reservations import session_lock

SAVED = ".saved"   # beside a file of the unsaved folder that a saved project took the samples of, or names
LOCK = ".lock"     # beside a file of the unsaved folder that a QGIS session is using
LOCK_WAIT_MS = 500  # another session holds a lock for a moment while it checks whether a file is in use


def profile_folder() -> str:
    """Where the samples of projects stored in a database (GeoPackage, PostgreSQL) go: the user's QGIS profile."""
    return os.path.join(QgsApplication.qgisSettingsDirPath(), "diffclip_samples")


def unsaved_folder() -> str:
    """Where the samples of projects never saved go: in the profile, so that they outlive a crash."""
    return os.path.join(profile_folder(), "unsaved")


def is_unsaved_file(path: str) -> bool:
    """Whether a sample file lies in :func:`unsaved_folder`."""
    return same_file(os.path.dirname(path), unsaved_folder())


def mark_saved(path: str) -> None:
    """Mark a file of :func:`unsaved_folder` that a saved project took the samples of or names, so it is never
    offered again."""
    if is_unsaved_file(path):
        try:
            open(path + SAVED, "w").close()
        except OSError:
            pass


def last_change(path: str) -> float:
    """When a GeoPackage last changed, its write-ahead log included (seconds since the epoch; 0 when gone)."""
    return max((os.path.getmtime(p) for p in (path, path + WAL) if os.path.exists(p)), default=0.0)


def file_lock(path: str) -> QLockFile:
    """The lock of a file of the unsaved folder (not taken)."""
    return session_lock(path + LOCK)


def held_here(lock: QLockFile) -> bool:
    """Whether this QGIS holds the lock already: the sample layer kept it over a plugin reload."""
    found, pid, _, _ = lock.getLockInfo()
    return found and pid == QCoreApplication.applicationPid()


def in_use(path: str) -> bool:
    """Whether a running QGIS session (this one included) holds the lock of a sample file."""
    lock = file_lock(path)
    if lock.tryLock(0):
        lock.unlock()
        return False
    return True


def earlier_unsaved_files() -> List[str]:
    """The GeoPackages of :func:`unsaved_folder` that no running session uses and none marked as saved, newest
    first."""
    folder = unsaved_folder()
    names = os.listdir(folder) if os.path.isdir(folder) else []
    paths = [os.path.join(folder, n) for n in names if n.endswith(".gpkg") and n + SAVED not in names]
    return sorted((p for p in paths if not in_use(p)), key=last_change, reverse=True)


def remove_leftover(path: str) -> str:
    """Delete a sample file of the unsaved folder and its write-ahead log, unless a running QGIS session uses it
    or a saved project names it (checked under the file's lock): "" or why the file stays whole (also: open
    elsewhere, no permission)."""
    lock = file_lock(path)
    if not lock.tryLock(LOCK_WAIT_MS):
        return tr("another QGIS session is using it")
    try:
        if os.path.exists(path + SAVED):
            return tr("a saved project uses it")
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        return e.strerror or str(e)
    finally:
        lock.unlock()
    remove_geopackage(path)   # the samples went with the main file: what is left beside it is clutter
    return ""
