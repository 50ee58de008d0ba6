"""The class list: a table model (id, name, colour, prompt, sample count) and its panel."""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Tuple

from qgis.core import Qgis, QgsApplication
from qgis.gui import QgsColorDialog
from qgis.PyQt.QtCore import QAbstractTableModel, QModelIndex, Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                                 QPlainTextEdit, QSplitter, QTableView, QToolButton, QVBoxLayout,
                                 QWidget)

from ..core.classes import (DEFAULT_PROMPT_TEMPLATE, ClassInfo, ClassListError, complete_classes, fill_prompt,
                            load_class_list, palette_colour, save_class_list)
from . import folders, tr

COLOUR, ID, NAME, SAMPLES, PROMPT = range(5)  # the prompt last: it takes the spare width
REPLACE, MERGE = "replace", "merge"
FIT_ROWS = 14  # the table grows to show this many rows without scrolling


def prompt_note() -> str:
    """Why prompt wording does not matter here (shown as a label and tooltips)."""
    return tr("The text encoder is trained from scratch on these prompts, so each prompt acts as a label for its "
              "class: the wording carries no prior meaning. Keep the prompts of different classes distinct.")


def merge_classes(current: List[ClassInfo], loaded: List[ClassInfo]) -> List[ClassInfo]:
    """The current classes, then the loaded ones whose id and name are both new."""
    ids, names = {c.id for c in current}, {c.name for c in current}
    return list(current) + [c for c in loaded if c.id not in ids and c.name not in names]


def clashing_classes(current: List[ClassInfo], loaded: List[ClassInfo]) -> List[Tuple[ClassInfo, ClassInfo]]:
    """(current, loaded) pairs that share the id but not the name, or the name but not the id."""
    return [(c, n) for n in loaded for c in current if (c.id == n.id) != (c.name == n.name)]


def ask_load_mode(parent: QWidget, text: str) -> Optional[str]:
    """REPLACE, MERGE or None (cancel), asked in a message box."""
    box = QMessageBox(QMessageBox.Icon.Question, tr("Load class list"), text, QMessageBox.StandardButton.Cancel,
                      parent)
    replace = box.addButton(tr("Replace"), QMessageBox.ButtonRole.DestructiveRole)
    merge = box.addButton(tr("Merge"), QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(merge)
    box.exec()
    return {id(replace): REPLACE, id(merge): MERGE}.get(id(box.clickedButton()))


class ClassTableModel(QAbstractTableModel):
    """Classes as rows; ``classesEdited()`` reports user changes, ``nameTaken(name)`` a rename refused because
    another class has that name."""

    classesEdited = pyqtSignal()
    nameTaken = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._classes: List[ClassInfo] = []
        self._counts: Dict[int, int] = {}
        self.editable = True   # False while a run uses the classes

    # -- Qt model -------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()):  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self._classes)

    def columnCount(self, parent=QModelIndex()):  # noqa: N802
        return 0 if parent.isValid() else 5

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return ["", tr("Id"), tr("Name"), tr("n"), tr("Prompt")][section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return {COLOUR: tr("Colour"), SAMPLES: tr("Samples"), PROMPT: prompt_note()}.get(section)
        return None

    def flags(self, index):
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if self.editable and (index.column() in (NAME, PROMPT)
                              or (index.column() == ID and not self.count(self._classes[index.row()].id))):
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        c, col = self._classes[index.row()], index.column()
        if role == Qt.ItemDataRole.DecorationRole and col == COLOUR:
            return QColor(c.colour)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return {ID: c.id, NAME: c.name, PROMPT: c.prompt, SAMPLES: self.count(c.id)}.get(col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return {COLOUR: tr("Double-click to change the colour"), PROMPT: c.prompt,
                    ID: tr("Value of this class in the output raster")}.get(col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (ID, SAMPLES):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole):  # noqa: N802
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        row, col = index.row(), index.column()
        c = self._classes[row]
        if col == NAME:
            return self.rename(row, str(value))
        if col == PROMPT:
            c.prompt = str(value).strip() or fill_prompt(c.name)
        elif col == COLOUR:
            if not QColor(str(value)).isValid():
                return False
            c.colour = QColor(str(value)).name()
        elif col == ID:
            try:
                new = int(value)
            except (TypeError, ValueError):
                return False
            if new < 1 or new > 65535 or self.count(c.id) or any(o.id == new for o in self._classes if o is not c):
                return False
            c.id = new
        else:
            return False
        self.dataChanged.emit(self.index(row, 0), self.index(row, PROMPT))
        self.classesEdited.emit()
        return True

    # -- class list -------------------------------------------------------------------------
    def classes(self) -> List[ClassInfo]:
        return [ClassInfo(c.id, c.name, c.colour, c.prompt) for c in self._classes]

    def set_classes(self, classes: List[ClassInfo]) -> None:
        """Replace the list (colours and prompts completed); does not emit ``classesEdited``."""
        self.beginResetModel()
        self._classes = complete_classes(classes)
        self.endResetModel()

    def class_at(self, row: int) -> Optional[ClassInfo]:
        return self._classes[row] if 0 <= row < len(self._classes) else None

    def row_of(self, class_id: int) -> int:
        return next((i for i, c in enumerate(self._classes) if c.id == class_id), -1)

    def add_class(self, name: str = "") -> int:
        """Append a class with the next free id, a palette colour and the template prompt; returns its row.

        Free means no class and no sample has it: samples left from a removed or replaced class never
        pass to the new one."""
        new_id = max([c.id for c in self._classes] + list(self._counts), default=0) + 1
        name = name or tr("class {n}").format(n=new_id)
        row = len(self._classes)
        self.beginInsertRows(QModelIndex(), row, row)
        self._classes.append(ClassInfo(new_id, name, palette_colour(row), fill_prompt(name)))
        self.endInsertRows()
        self.classesEdited.emit()
        return row

    def remove_row(self, row: int) -> ClassInfo:
        self.beginRemoveRows(QModelIndex(), row, row)
        removed = self._classes.pop(row)
        self.endRemoveRows()
        self.classesEdited.emit()
        return removed

    def rename(self, row: int, name: str) -> bool:
        """Rename a class; a prompt still equal to the template follows the new name."""
        name, c = name.strip(), self._classes[row]
        if not name:
            return False
        if any(o.name == name for o in self._classes if o is not c):
            self.nameTaken.emit(name)
            return False
        if c.prompt == fill_prompt(c.name):
            c.prompt = fill_prompt(name)
        c.name = name
        self.dataChanged.emit(self.index(row, 0), self.index(row, PROMPT))
        self.classesEdited.emit()
        return True

    def count(self, class_id: int) -> int:
        return self._counts.get(class_id, 0)

    def set_counts(self, counts: Dict[int, int]) -> None:
        self._counts = dict(counts)
        if self._classes:
            self.dataChanged.emit(self.index(0, SAMPLES), self.index(len(self._classes) - 1, SAMPLES))


class ClassPanel(QWidget):
    """Table of classes with add/remove/load/save buttons and a prompt editor for the selected class.

    ``delete_samples(id) -> bool`` (set by the owner) deletes a class's samples before the class goes;
    when it cannot, the class stays. ``notice(text, level)`` carries messages for the message bar
    (``level``: a ``Qgis.MessageLevel``, passed as it is: Qt 6 does not turn an int back into the enum
    that ``pushMessage`` takes).
    """

    notice = pyqtSignal(str, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.delete_samples: Callable[[int], bool] = lambda class_id: True
        self.model = ClassTableModel(self)
        self.model.nameTaken.connect(lambda name: self.notice.emit(
            tr("Another class is already called '{name}': class names must differ.").format(name=name),
            Qgis.MessageLevel.Warning))
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # template prompts differ at their end
        self.view.setWordWrap(False)
        rows = self.view.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.view.fontMetrics().height() + 6)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(PROMPT, QHeaderView.ResizeMode.Stretch)
        for signal in (self.model.rowsInserted, self.model.rowsRemoved, self.model.modelReset):
            signal.connect(self._fit_rows)
        self.view.doubleClicked.connect(self._double_clicked)
        self.view.selectionModel().currentRowChanged.connect(self._show_prompt)
        self.model.modelReset.connect(lambda: self._show_prompt(self.view.currentIndex()))

        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setPlaceholderText(tr("Prompt of the selected class"))
        self.prompt_edit.setMinimumHeight(self.prompt_edit.fontMetrics().lineSpacing() * 5 + 12)  # ~170 characters
        self.prompt_edit.setToolTip(prompt_note())
        self.prompt_edit.textChanged.connect(self._prompt_typed)
        self.template_button = self._button("/mActionEditHelpContent.svg", tr("Template"),
                                            tr("Set the prompt to the template: {t}").format(t=DEFAULT_PROMPT_TEMPLATE),
                                            self.apply_template)
        self.template_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        note = QLabel(tr("Each prompt is its class's label: keep them distinct."))   # prompt_note() as the tooltip
        note.setToolTip(prompt_note())
        note.setWordWrap(True)
        note.setStyleSheet("font-style: italic;")

        self._edit_buttons = [self._button(icon, "", text, slot) for icon, text, slot in (   # locked during a run
            ("/symbologyAdd.svg", tr("Add a class"), lambda: self.add_class()),
            ("/symbologyRemove.svg", tr("Remove the selected class and its samples"), self.remove_selected),
            ("/mActionFileOpen.svg", tr("Load a class list (JSON or CSV)"), self._load_clicked))]
        save = self._button("/mActionFileSave.svg", "", tr("Save the class list as JSON (for the PROMPTS parameter)"),
                            self._save_clicked)
        buttons = QHBoxLayout()
        for button in self._edit_buttons + [save]:
            buttons.addWidget(button)
        buttons.addStretch(1)
        prompt_box = QWidget()
        prompt_row = QHBoxLayout(prompt_box)
        prompt_row.setContentsMargins(0, 0, 0, 0)
        prompt_row.addWidget(self.prompt_edit, 1)
        prompt_row.addWidget(self.template_button, 0, Qt.AlignmentFlag.AlignTop)
        splitter = QSplitter(Qt.Orientation.Vertical)  # drag to give the table or the prompt editor more room
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.view)
        splitter.addWidget(prompt_box)
        splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(splitter)
        layout.addWidget(note)
        self._fit_rows()
        self._show_prompt(QModelIndex())

    def _button(self, icon: str, text: str, tooltip: str, slot) -> QToolButton:
        button = QToolButton()
        button.setIcon(QgsApplication.getThemeIcon(icon))
        button.setText(text)
        button.setToolTip(tooltip)
        button.clicked.connect(slot)
        return button

    def _fit_rows(self, *_) -> None:
        """Make the table tall enough for up to FIT_ROWS rows (the splitter lets the user change it)."""
        rows = max(3, min(self.model.rowCount(), FIT_ROWS))
        row_height = self.view.verticalHeader().defaultSectionSize()
        height = self.view.horizontalHeader().sizeHint().height() + rows * row_height + 2 * self.view.frameWidth() + 2
        self.view.setMinimumHeight(height)

    # -- selection and prompt editor ------------------------------------------------------------
    def current_class(self) -> Optional[ClassInfo]:
        return self.model.class_at(self.view.currentIndex().row())

    def select_class(self, class_id: int) -> None:
        row = self.model.row_of(class_id)
        if row >= 0:
            self.view.setCurrentIndex(self.model.index(row, NAME))

    def _show_prompt(self, index) -> None:
        c = self.model.class_at(index.row()) if index.isValid() else None
        self.prompt_edit.blockSignals(True)
        self.prompt_edit.setPlainText(c.prompt if c else "")
        self.prompt_edit.blockSignals(False)
        self.prompt_edit.setEnabled(c is not None)
        self.prompt_edit.setReadOnly(not self.model.editable)
        self.template_button.setEnabled(c is not None and self.model.editable)

    def set_editable(self, editable: bool) -> None:
        """Allow or forbid changes to the classes; selecting a class (to label it) stays possible."""
        self.model.editable = editable
        for button in self._edit_buttons:
            button.setEnabled(editable)
        self._show_prompt(self.view.currentIndex())

    def _prompt_typed(self) -> None:
        row = self.view.currentIndex().row()
        if row >= 0 and self.prompt_edit.toPlainText().strip():
            self.model.setData(self.model.index(row, PROMPT), self.prompt_edit.toPlainText())

    def apply_template(self) -> None:
        c = self.current_class()
        if c is not None:
            self.prompt_edit.setPlainText(fill_prompt(c.name))

    def _double_clicked(self, index) -> None:
        if index.column() == COLOUR and self.model.editable:
            colour = QgsColorDialog.getColor(QColor(self.model.class_at(index.row()).colour), self, tr("Class colour"))
            if colour.isValid():
                self.model.setData(index, colour.name())

    # -- add / remove / load / save ---------------------------------------------------------------
    def add_class(self, name: str = "") -> int:
        row = self.model.add_class(name)
        self.view.setCurrentIndex(self.model.index(row, NAME))
        return row

    def remove_selected(self) -> None:
        c = self.current_class()
        if c is None:
            return
        n = self.model.count(c.id)
        if n and QMessageBox.question(
                self, tr("Remove class"),
                tr("Class '{name}' has {n} sample(s). Remove the class and delete its samples?")
                .format(name=c.name, n=n),
        ) != QMessageBox.StandardButton.Yes:
            return
        if n and not self.delete_samples(c.id):   # the samples could not be deleted: the class stays with them
            return
        self.model.remove_row(self.model.row_of(c.id))

    def load_file(self, path: str) -> bool:
        """Load a class list; when there are classes already, ask whether to replace or merge them."""
        try:
            classes = load_class_list(path)
        except ClassListError as e:
            self.notice.emit(str(e), Qgis.MessageLevel.Critical)
            return False
        if any(c.id < 1 for c in classes):  # names without ids (CSV): number them in order
            classes = [ClassInfo(i, c.name, c.colour, c.prompt) for i, c in enumerate(classes, 1)]
        current = self.model.classes()
        if current and [(c.id, c.name) for c in current] != [(c.id, c.name) for c in classes]:
            mode = ask_load_mode(self, self._orphan_note(current, classes))
            if mode is None:
                return False
            if mode == MERGE:
                classes = merge_classes(current, classes)
        self.model.set_classes(classes)
        self.model.classesEdited.emit()
        if self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(0, NAME))
        return True

    def _orphan_note(self, current: List[ClassInfo], loaded: List[ClassInfo]) -> str:
        """The question, listing the classes whose samples a replacement would leave out of runs, those whose
        samples it would give another class (the loaded class of their id), and the samples without a class that
        the loaded list gives one."""
        names = {c.id: c.name for c in loaded}
        orphans = [tr("{name} ({n} samples)").format(name=c.name, n=self.model.count(c.id))
                   for c in current if c.id not in names and self.model.count(c.id)]
        relabelled = [tr("{name} ({n} samples) become {other}").format(name=c.name, n=self.model.count(c.id),
                                                                       other=names[c.id])
                      for c in current if names.get(c.id, c.name) != c.name and self.model.count(c.id)]
        ids = {c.id for c in current}
        rejoining = [tr("{n} samples become {name}").format(n=self.model.count(c.id), name=c.name)
                     for c in loaded if c.id not in ids and self.model.count(c.id)]
        text = tr("The class table already has {n} classes. Replace them with the loaded list, or merge (keep the "
                  "current classes and add the new ones)?").format(n=len(current))
        if orphans:
            text += "\n\n" + tr("Replacing leaves these samples out of runs (their class is not in the loaded list): "
                                 "{list}.").format(list=", ".join(orphans))
        if relabelled:
            text += "\n\n" + tr("Replacing gives these samples the loaded class of their id: {list}.").format(
                list=", ".join(relabelled))
        if rejoining:
            text += "\n\n" + tr("Samples without a class (left from a class removed or replaced earlier) take the "
                                 "loaded class of their id, and its name: {list}.").format(list=", ".join(rejoining))
        return text

    def save_file(self, path: str) -> bool:
        try:
            save_class_list(path, self.model.classes())
        except OSError as e:
            self.notice.emit(tr("Cannot save the class list: {e}").format(e=e), Qgis.MessageLevel.Critical)
            return False
        self.notice.emit(tr("Class list saved to {path}").format(path=path), Qgis.MessageLevel.Success)
        return True

    def _load_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, tr("Load class list"), folders.start_folder(),
                                              tr("Class lists (*.json *.csv)"))
        if path:
            folders.remember(path)
            self.load_file(path)

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, tr("Save class list"),
                                              os.path.join(folders.start_folder(), "classes.json"), tr("JSON (*.json)"))
        if not path:
            return
        folders.remember(path)
        if not path.lower().endswith(".json"):
            path += ".json"   # the dialog asked about the name without it
            if os.path.exists(path) and QMessageBox.question(
                    self, tr("Save class list"), tr("{path} already exists. Replace it?").format(path=path)) \
                    != QMessageBox.StandardButton.Yes:
                return
        self.save_file(path)
