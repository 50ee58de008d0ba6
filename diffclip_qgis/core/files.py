"""Temporary files beside an output, for writing outputs atomically."""
from __future__ import annotations

import os
import tempfile


def temp_file_beside(path: str, suffix: str) -> str:
    """Create an empty hidden file next to ``path`` with the permissions a normal new file gets.

    ``mkstemp`` makes files readable by the owner only; outputs moved into place from it
    would then be unreadable for other users, so the umask's permissions are applied.
    """
    directory = os.path.dirname(os.path.abspath(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp
