"""Output files: never an input, checked before any work, written completely or not at all.

Every output of a run is written to a hidden temporary file beside its target
(``.name.tmp-XXXXXXXX.ext``) through :class:`PendingOutputs`, checked, and moved into place
together with the others only when all are complete; if one cannot be moved, the files already
moved are put back. Working files go into hidden folders beside the output
(:func:`temp_folder_beside`, ``.diffclip-KIND-XXXXXXXX``). A failure, a cancel or SIGTERM removes
the temporary files and folders; stale ones of these naming patterns (a folder: nothing in it
changed) older than a day are swept away by later runs in the same folder.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

#: Sidecar files GDAL reads beside a raster: statistics and class names, overviews (QGIS's "Build pyramids"), a
#: mask. A stale one left beside a replaced raster would show the old raster's pyramids or mask over the new one.
GDAL_SIDECARS = (".aux.xml", ".ovr", ".msk")
WAL = "-wal"   # a GeoPackage's write-ahead log: edits a program saved that are not in the file yet
GEOPACKAGE_SIDECARS = (WAL, "-shm", "-journal")   # SQLite's, while a file is open or being written
#: Hidden temporary files of this module (``.stem.tmp-`` + mkstemp's 8 characters + a suffix it writes, and the
#: sidecars GDAL and SQLite add), and no other file.
TEMP_PATTERN = re.compile(r"^\..+\.tmp-[A-Za-z0-9_]{8}\.(tif|gpkg|pt\.tmp|qml|html?|csv|probe)"
                          f"({'|'.join(map(re.escape, GDAL_SIDECARS + GEOPACKAGE_SIDECARS))})?$", re.IGNORECASE)
#: Hidden working folders of this module (``.diffclip-KIND-`` + mkdtemp's 8 characters).
TEMP_FOLDER_PATTERN = re.compile(r"^\.diffclip-(smoothing|parts)-[A-Za-z0-9_]{8}$")
STALE_SECONDS = 24 * 3600
Identity = Optional[Tuple[int, int, Optional[Tuple[int, int]]]]   # see _identity
WRITE_HINT = "disk full? file too large for the file system? no write permission?"


class OutputPathError(ValueError):
    """An output that would overwrite an input or another output, or cannot be written."""


def write_error(path: str, reason: object) -> OSError:
    """The error every failed write reports: the path, the reason, and what to check."""
    reason = " ".join(str(reason).split())   # one line: GDAL's messages may span several
    error = OSError(f"Could not write {path}: {reason} ({WRITE_HINT})")
    error.strerror = reason   # the cause alone, for a message that names the file or folder itself
    return error


def temp_file_beside(path: str, suffix: str, marker: str = "tmp") -> str:
    """Create an empty hidden file next to ``path`` (``.stem.MARKER-XXXXXXXX.suffix``) with the permissions a
    normal new file gets. Stale ``tmp`` files are swept (:func:`remove_stale_temps`); others are not.

    ``mkstemp`` makes files readable by the owner only; outputs moved into place from it
    would then be unreadable for other users, so the umask's permissions are applied.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"The output folder {directory} does not exist. Choose an existing folder.")
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.{marker}-", suffix=suffix, dir=directory)
    except OSError as e:
        raise write_error(path, e.strerror or e) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def remove_stale_temps(directory: str, max_age: float = STALE_SECONDS) -> List[str]:
    """Remove this module's temporary files and working folders in ``directory`` older than ``max_age``
    seconds (left by a killed run)."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        path = os.path.join(directory, name)
        try:
            if TEMP_PATTERN.match(name) and os.path.isfile(path) and now - os.path.getmtime(path) > max_age:
                os.remove(path)
            elif (TEMP_FOLDER_PATTERN.match(name) and os.path.isdir(path) and not os.path.islink(path)
                  and now - _last_change(path) > max_age):
                shutil.rmtree(path)
            else:
                continue
            removed.append(path)
        except OSError:
            pass
    return removed


def _last_change(folder: str) -> float:
    """The newest modification time of a working folder and of what is in it (a run still writing there)."""
    times = [os.path.getmtime(folder)]
    with os.scandir(folder) as entries:
        times += [entry.stat(follow_symlinks=False).st_mtime for entry in entries]
    return max(times)


def keep_alive(folder: str) -> None:
    """Mark a working folder as in use, so that no other run sweeps it during a long phase that writes nothing."""
    try:
        os.utime(folder)
    except OSError:
        pass


# -- outputs written together ----------------------------------------------------------------------
_live: List = []   # what SIGTERM must clean up: objects with a discard() method
_live_lock = threading.Lock()
_previous_handler = None


def _on_sigterm(signum, frame) -> None:
    """Remove every pending temporary file and working folder, then die as SIGTERM would have."""
    for pending in list(_live):
        pending.discard()
    signal.signal(signal.SIGTERM, _previous_handler if callable(_previous_handler) else signal.SIG_DFL)
    if callable(_previous_handler):
        _previous_handler(signum, frame)
    else:
        os.kill(os.getpid(), signal.SIGTERM)


def _watch(pending) -> None:
    global _previous_handler
    with _live_lock:
        _live.append(pending)
        if len(_live) == 1 and threading.current_thread() is threading.main_thread():
            try:
                _previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
            except (ValueError, OSError):  # embedded interpreters may refuse
                _previous_handler = None


def _unwatch(pending) -> None:
    global _previous_handler
    with _live_lock:
        if pending in _live:
            _live.remove(pending)
        if not _live and _previous_handler is not None and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                signal.signal(signal.SIGTERM, _previous_handler)
            _previous_handler = None


class PendingOutputs:
    """The outputs of one run, moved into place together once every one is complete.

    ``temp_for(path, suffix)`` gives the temporary file to write ``path`` to; ``commit()``
    moves them all (with GDAL sidecars) into place. Used as a context manager it commits on
    success and removes every temporary file on any exception (including cancel); SIGTERM
    in the main thread removes them too.
    """

    def __init__(self, targets: Sequence[str] = ()):
        """``targets``: outputs to take as they are now (when the job starts), so that one another run or program
        writes meanwhile is not replaced; any other output is taken as it is when writing it begins."""
        self._items: List[Tuple[str, str, Tuple[str, ...]]] = []  # (tmp, final, sidecars)
        self._found: Dict[str, Identity] = {p: _identity(p) for p in targets if p}
        self._aside: List[Tuple[str, str]] = []   # during a commit: (target, where its old version is)
        self._placed: List[str] = []              # during a commit: targets that already hold the new file

    def __enter__(self) -> "PendingOutputs":
        _watch(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
            else:
                self.discard()
        finally:
            _unwatch(self)

    def temp_for(self, path: str, suffix: str, sidecars: Sequence[str] = ()) -> str:
        """A new temporary file for ``path``; ``sidecars`` (e.g. ``.aux.xml``) follow it into place."""
        remove_stale_temps(os.path.dirname(os.path.abspath(path)))
        tmp = temp_file_beside(path, suffix)
        self._items.append((tmp, path, tuple(sidecars)))
        self._found.setdefault(path, _identity(path))
        return tmp

    def discard(self) -> None:
        """Remove every temporary file (and its sidecars) and, in the middle of a commit, the new files already
        placed, and put the old versions back: the targets stay as they were."""
        for tmp, _, sidecars in self._items:
            for name in (tmp,) + tuple(tmp + s for s in sidecars):
                _remove(name)
        for name in self._placed:
            _remove(name)
        for final, backup in reversed(self._aside):
            if not os.path.lexists(final):
                try:
                    os.replace(backup, final)
                except OSError:   # the old version stays as the hidden backup, which no sweep removes
                    pass
            elif os.path.getsize(backup) == 0:   # interrupted before the old version was moved there
                _remove(backup)
        self._items, self._placed, self._aside = [], [], []

    def commit(self) -> None:
        """Move every finished temporary file over its target, dropping stale sidecars: all or nothing.

        The targets that exist are first moved aside (``.name.old-XXXXXXXX.ext``); if any move fails, or an
        interrupt (Ctrl+C) comes meanwhile, :meth:`discard` puts them back, and the error names the file that could
        not be written; SIGTERM waits until the moves are done. A target that another run or program wrote
        since this run took it (see ``targets``) is not replaced.
        """
        changed = [final for _, final, _ in self._items if _written_meanwhile(self._found[final], _identity(final))]
        if changed:
            self.discard()
            raise OSError(f"Could not write {changed[0]}: another run or program wrote it (or opened it for editing) "
                          "while this run was working, so nothing was replaced. Choose another output file, or run "
                          "again.")
        moves = []   # (temporary file, target); a sidecar without a new version is removed (moved aside)
        for tmp, final, sidecars in self._items:
            moves.append((tmp, final))
            moves += [(tmp + s if os.path.exists(tmp + s) else None, final + s) for s in sidecars]
        target = ""
        with _sigterm_held():
            try:
                for _, target in moves:
                    if os.path.lexists(target):
                        backup = temp_file_beside(target, os.path.splitext(target)[1], marker="old")
                        self._aside.append((target, backup))   # before the move: an interrupt may come after it
                        try:
                            os.replace(target, backup)
                        except OSError:
                            self._aside.pop()
                            _remove(backup)
                            raise
                for tmp, target in moves:
                    if tmp is not None:
                        self._placed.append(target)   # before the move, as above
                        os.replace(tmp, target)
            except BaseException as e:   # also an interrupt (Ctrl+C) between two moves: all or nothing
                self.discard()
                if isinstance(e, OSError):
                    raise write_error(target, e.strerror or e) from None
                raise
            backups = [backup for _, backup in self._aside]
            self._items, self._placed, self._aside = [], [], []
            for backup in backups:
                _remove(backup)


@contextmanager
def _sigterm_held() -> Iterator[None]:
    """SIGTERM waits until the block ends, so that it never comes between two moves of a commit (POSIX; in the main
    thread, where its handler runs)."""
    hold = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}) if hold else None
    try:
        yield
    finally:
        if hold:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def remove_geopackage(path: str) -> None:
    """Delete a GeoPackage and SQLite's files beside it, as far as possible (one open elsewhere stays)."""
    for part in (path,) + tuple(path + s for s in GEOPACKAGE_SIDECARS):
        _remove(part)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _identity(path: str) -> Identity:
    """What is at ``path`` (size, modification time, and those of a GeoPackage's write-ahead log, there while a
    program edits it, holding the edits it saved), or None when nothing is. Not the inode: some network file
    systems renumber files without writing them."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    try:
        wal = os.lstat(path + WAL)
        log = (wal.st_size, wal.st_mtime_ns)
    except OSError:
        log = None
    return st.st_size, st.st_mtime_ns, log


def _written_meanwhile(before: Identity, now: Identity) -> bool:
    """Whether a target was written since: it appeared or changed (one deleted meanwhile loses nothing)."""
    return now is not None and now != before


class _TempFolder:
    def __init__(self, path: str):
        self.path = path

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@contextmanager
def temp_folder_beside(path: str, kind: str) -> Iterator[str]:
    """A hidden working folder beside ``path`` (``.diffclip-KIND-XXXXXXXX``), removed on leaving the
    ``with`` block, on SIGTERM in the main thread, or by a later run's sweep if the process was killed."""
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temps(directory)
    folder = _TempFolder(tempfile.mkdtemp(prefix=f".diffclip-{kind}-", dir=directory))
    _watch(folder)
    try:
        yield folder.path
    finally:
        folder.discard()
        _unwatch(folder)


def write_text(path: str, text: str, outputs: Optional[PendingOutputs] = None) -> None:
    """Write a UTF-8 text file through a temporary file (within ``outputs``, or committed at once)."""
    if outputs is None:
        with PendingOutputs() as own:
            return write_text(path, text, own)
    tmp = outputs.temp_for(path, os.path.splitext(path)[1])
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as e:
        raise write_error(path, e.strerror or e) from None


# -- checks before any work ------------------------------------------------------------------------
def same_file(a: str, b: str) -> bool:
    """Whether two paths name the same file or folder (symlinks, ``..``, hard links, case-insensitive file systems)."""
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, case-insensitive file systems
    except OSError:
        return False


def check_output_paths(inputs: Dict[str, Iterable[str]], outputs: Dict[str, Iterable[str]]) -> None:
    """Refuse any output file that is an input file or another output's file.

    ``inputs`` and ``outputs`` map parameter names to the files they read or write (an
    output lists its sidecars too, e.g. the .qml of a classification). Paths are compared
    after resolving symlinks and ``.``/``..``; empty paths are ignored.
    """
    ins = [(name, p) for name, paths in inputs.items() for p in paths if p]
    outs = [(name, p) for name, paths in outputs.items() for p in paths if p]
    for i, (name, path) in enumerate(outs):
        for in_name, in_path in ins:
            if same_file(path, in_path):
                raise OutputPathError(
                    f"{name} ({path}) is the same file as the input {in_name} ({in_path}): writing it would "
                    f"destroy the input. Choose another file for {name}.")
        for other_name, other in outs[:i]:
            if other_name != name and same_file(path, other):
                raise OutputPathError(
                    f"{name} and {other_name} are the same file ({path}): one would overwrite the other. "
                    f"Choose different files for {other_name} and {name}.")


#: What DiffCLIP writes, and the extensions that say so (the first is suggested).
GEOTIFF = ("GeoTIFF", (".tif", ".tiff"))
GEOPACKAGE = ("GeoPackage", (".gpkg",))
MODEL_FILE = ("model file", (".pt", ".pth"))
HTML_REPORT = ("HTML report", (".html", ".htm"))
CSV_TABLE = ("CSV table", (".csv",))


def check_output_kinds(outputs: Dict[str, Tuple[str, Tuple[str, Tuple[str, ...]]]]) -> None:
    """Refuse an output whose extension does not say what is written there (a GeoPackage named .shp);
    ``outputs``: parameter name -> (path or "", kind such as :data:`GEOTIFF`)."""
    for name, (path, (kind, extensions)) in outputs.items():
        if path and os.path.splitext(path)[1].lower() not in extensions:
            raise OutputPathError(f"{name}: DiffCLIP writes a {kind} here; give the file a {extensions[0]} extension "
                                  f"instead of '{os.path.basename(path)}'.")


def check_writable(outputs: Dict[str, Tuple[str, int]], margin: int = 16 << 20) -> None:
    """Each output's folder exists and takes a new file, and each file system has room for the outputs.

    ``outputs`` maps parameter names to (path, estimated size in bytes). A probe file is
    created and removed in every folder; the estimates of the outputs on one file system
    plus ``margin`` must fit in its free space.
    """
    need: Dict[int, List] = {}
    for name, (path, size) in outputs.items():
        if not path:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise OutputPathError(f"{name} ({path}) is a folder. Choose a file name for {name}.")
        if not os.path.isdir(folder):
            raise OutputPathError(f"The folder of {name} does not exist: {folder}. Create it or choose another "
                                  "output file.")
        try:
            os.remove(temp_file_beside(path, ".probe"))
        except OSError as e:
            raise OutputPathError(f"Cannot write {name} into {folder}: {e.strerror or e}. Choose a folder you "
                                  "can write to.") from None
        entry = need.setdefault(os.stat(folder).st_dev, [folder, 0, []])
        entry[1] += int(size)
        entry[2].append(name)
    for folder, size, names in need.values():
        free = shutil.disk_usage(folder).free
        if size + margin > free:
            raise OutputPathError(
                f"Not enough free space for {', '.join(names)} in {folder}: about {(size + margin) / 1e6:.0f} MB "
                f"needed, {free / 1e6:.0f} MB free. Free some space or choose another folder.")


def check_outputs(inputs: Dict[str, Iterable[str]], outputs: Dict[str, Tuple[Sequence[str], int]]) -> None:
    """:func:`check_output_paths` and :func:`check_writable` in one call.

    ``outputs`` maps parameter names to (files written, estimated bytes); the first file
    is the output itself, the others its sidecars.
    """
    outputs = {name: (list(paths), size) for name, (paths, size) in outputs.items() if paths and paths[0]}
    check_output_paths(inputs, {name: paths for name, (paths, _) in outputs.items()})
    check_writable({name: (paths[0], size) for name, (paths, size) in outputs.items()})

