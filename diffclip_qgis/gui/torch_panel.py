"""Shown instead of a traceback when PyTorch cannot be imported: what is missing and how to install it."""
from __future__ import annotations

import sys

from qgis.PyQt.QtWidgets import (QApplication, QComboBox, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                                 QVBoxLayout)

from . import tr
from .dependencies import TorchStatus, has_nvidia_gpu, install_command, venv_alternative
from .settings_panel import narrow


class TorchMissingPanel(QFrame):
    """The import error, the install command for this platform (CPU or CUDA build) and a copy button."""

    def __init__(self, status: TorchStatus, platform: str = sys.platform, parent=None):
        super().__init__(parent)
        self.platform = platform
        title = QLabel(tr("<b>PyTorch is not available in QGIS's Python</b>, so DiffCLIP cannot train or classify. "
                          "Classes and samples can still be prepared."))
        title.setWordWrap(True)
        self.error = QLabel(tr("Import error: {error}").format(error=status.error))
        self.error.setWordWrap(True)
        self.build = QComboBox()
        self.build.addItem(tr("CPU build"), False)
        if platform != "darwin":
            self.build.addItem(tr("CUDA 12.1 build (NVIDIA GPU)"), True)
            self.build.setCurrentIndex(1 if has_nvidia_gpu() else 0)
        narrow(self.build)
        self.build.currentIndexChanged.connect(self._update)
        self.where = QLabel()
        self.where.setWordWrap(True)
        self.command = QPlainTextEdit()
        self.command.setReadOnly(True)
        self.command.setMaximumHeight(90)
        copy = QPushButton(tr("Copy command"))
        copy.clicked.connect(self.copy)
        row = QHBoxLayout()
        row.addWidget(self.build, 1)
        row.addWidget(copy)
        restart = QLabel(tr("Restart QGIS after the installation."))
        layout = QVBoxLayout(self)
        for widget in (title, self.error, self.where):
            layout.addWidget(widget)
        layout.addLayout(row)
        layout.addWidget(self.command)
        layout.addWidget(restart)
        self.setObjectName("diffclipTorchMissing")
        self.setStyleSheet("#diffclipTorchMissing { background-color: #fff4e5; border: 1px solid #e69f00; "
                           "border-radius: 4px; } #diffclipTorchMissing QLabel { color: #3b2a00; }")
        self._update()

    def _update(self) -> None:
        cuda = bool(self.build.currentData())
        command = install_command(self.platform, cuda=cuda)
        if self.platform.startswith("win"):
            where = tr("Close QGIS, open the OSGeo4W Shell (Start menu, as administrator) and run:")
        elif self.platform == "darwin":
            where = tr("Close QGIS, open Terminal and run (QGIS's own Python):")
        else:
            where = tr("Open a terminal and run this command (it installs into the Python that QGIS uses):")
            command = "{first}\n\n# {alternative}\n{venv}".format(
                first=command, venv=venv_alternative(cuda),
                alternative=tr("or, in a virtual environment that keeps QGIS's packages, then start QGIS from it:"))
        self.where.setText(where)
        self.command.setPlainText(command)

    def copy(self) -> None:
        """Copy the first command (the recommended one) to the clipboard."""
        QApplication.clipboard().setText(self.command.toPlainText().split("\n\n")[0])
