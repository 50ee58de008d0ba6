"""The dock's Suggest samples row: the button, how many per class, and how many suggestions are left.

It remembers the last successful run (model file, input sources, number of classes): suggestions
come from that model, for those inputs only.
"""
from __future__ import annotations

import os
from typing import List, Tuple

from qgis.PyQt.QtCore import QLockFile
from qgis.PyQt.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ..workflow.requests import Samples, SuggestRequest
from . import tr
from .suggestions import reserve_suggestion_path


class SuggestPanel(QWidget):
    """``button`` starts suggesting (the dock connects it); ``model`` is the last run's record (see the docstring)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model: dict = {}
        self.button = QPushButton(tr("Suggest samples"))
        self.per_class = QSpinBox()
        self.per_class.setRange(1, 50)
        self.per_class.setValue(2)
        self.per_class.setSuffix(" " + tr("per class"))
        self.per_class.setToolTip(tr("How many pixels to suggest per class"))
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.hide()
        row = QHBoxLayout()
        row.addWidget(self.button, 1)
        row.addWidget(self.per_class)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.label)

    def missing(self, inputs: List[str]) -> str:
        """Why the last run's model cannot suggest samples for these input sources, or "" when it can."""
        if not self.model:
            return tr("Run a classification first: suggestions come from its model.")
        if not os.path.isfile(self.model.get("path", "")):
            return tr("The last run's model is gone ({path}): run again.").format(path=self.model.get("path", ""))
        if self.model.get("inputs") != inputs:
            return tr("The ticked inputs are not those of the last run: run again to suggest samples for them.")
        return ""

    def show_missing(self, missing: str) -> None:
        """Enable the button when nothing is missing; its tooltip says what is."""
        self.button.setEnabled(not missing)
        self.button.setToolTip(missing or tr("Mark the pixels where a label would help the last run's model most: "
                                             "where it is least sure, spread over the map and the classes"))

    def request(self, samples: Samples, device: str) -> Tuple[SuggestRequest, QLockFile]:
        """Suggestions from the last run's model, away from ``samples``, into a new file next to the model, and that
        file's reservation; ValueError when the model's folder cannot be written."""
        output, reservation = reserve_suggestion_path(os.path.dirname(self.model["path"]))
        return SuggestRequest(inputs=self.model["inputs"], model=self.model["path"], output=output,
                              count=self.per_class.value() * self.model["classes"], samples=samples,
                              device=device), reservation

    def show_left(self, left: int) -> None:
        """How many suggestions are still on the map (hidden when none)."""
        self.label.setText(tr("{n} suggested samples left: click one on the map (with 'Label samples') to pick its "
                              "class, or skip it.").format(n=left))
        self.label.setVisible(bool(left))

    def all_done(self) -> str:
        """Say that every suggestion is labelled or skipped (and return that text)."""
        text = tr("All suggested samples are labelled or skipped: press Run again to train with the labels you gave.")
        self.label.setText(text)
        self.label.show()
        return text
