"""Where file dialogs open: the folder used last, else the project's folder, else the home folder."""
from __future__ import annotations

import os

from qgis.core import QgsProject
from qgis.PyQt.QtCore import QSettings

KEY = "DiffCLIP/lastFolder"


def start_folder(project: QgsProject = None) -> str:
    """The folder a file dialog should open in."""
    last = str(QSettings().value(KEY, "") or "")
    if last and os.path.isdir(last):
        return last
    return (project or QgsProject.instance()).absolutePath() or os.path.expanduser("~")


def remember(path: str) -> None:
    """Remember the folder of a file (or a folder) the user picked."""
    if path:
        QSettings().setValue(KEY, path if os.path.isdir(path) else os.path.dirname(path))
