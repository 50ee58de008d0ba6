"""The offer, to a new project, of the samples an earlier session left in the unsaved folder (it crashed, or
its project was closed without saving): a message bar entry with *Add them* and *Delete them*."""
from __future__ import annotations

from typing import Callable, List, Tuple

from qgis.core import Qgis
from qgis.PyQt.QtCore import QDateTime, QLocale, QObject, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import QMessageBox, QWidget

from . import tr
from .class_table import ClassPanel, clashing_classes, merge_classes
from .profile_samples import earlier_unsaved_files, last_change, remove_leftover, unsaved_folder
from .sample_layer import SampleLayerError, SampleStore, project_identity, sample_count, sample_file_classes


def unsaved_leftovers() -> List[Tuple[str, int]]:
    """(path, sample count) of the files that sessions no longer running left in the unsaved folder, newest
    first; empty ones are deleted."""
    found = []
    for path in earlier_unsaved_files():
        count = sample_count(path)
        if count == 0:
            remove_leftover(path)
        elif count:
            found.append((path, count))
    return found


class UnsavedSamplesOffer(QObject):
    """Offers the newest such file to a project never saved and without samples, in one entry that stays until
    closed; ``adopted`` follows *Add them*."""

    adopted = pyqtSignal()

    def __init__(self, store: SampleStore, classes: ClassPanel, notify: Callable, close_messages: Callable,
                 parent: QWidget):
        super().__init__(parent)
        self.store, self.classes, self.notify, self._close_messages = store, classes, notify, close_messages
        self._entries = []
        self._timer = QTimer(self)   # offers once the project is loaded (the dock loads a new one first)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.offer)

    def schedule(self) -> None:
        """Offer once the events now queued are handled."""
        self._timer.start(0)

    def stop(self) -> None:
        self._timer.stop()

    def close(self) -> None:
        """Close the entry (the project was saved, got samples of its own, or another one came)."""
        self._close_messages(self._entries)

    def leftovers(self) -> List[Tuple[str, int]]:
        """:func:`unsaved_leftovers` for a project never saved and without samples; [] for any other project."""
        if self.store.layer() is not None or project_identity(self.store.project):
            return []
        return unsaved_leftovers()

    def offer(self) -> None:
        found = self.leftovers()
        if not found:
            return
        (path, count), more = found[0], len(found) - 1
        when = QLocale().toString(QDateTime.fromSecsSinceEpoch(int(last_change(path))), QLocale.FormatType.ShortFormat)
        text = tr("{n} samples of an unsaved project ({time}) were kept.").format(n=count, time=when)
        if more:
            text += " " + tr("Files of other unsaved projects in {folder}: {n}.").format(
                n=more, folder=unsaved_folder())
        actions = [(tr("Add them"), lambda: self._add(path)),
                   (tr("Delete them"), lambda: self._delete(path, count, when))]
        self._entries.append(self.notify(text, Qgis.MessageLevel.Info, actions, sticky=True))

    def _delete(self, path: str, count: int, when: str) -> None:
        """Delete an earlier session's unsaved samples once the user confirms; then offer the next file, if any."""
        if self._still_offered(path) and QMessageBox.question(self.parent(), tr("Delete samples"),
                                tr("Delete the {n} samples of the unsaved project of {time}? This cannot be undone.")
                                .format(n=count, time=when)) == QMessageBox.StandardButton.Yes:
            error = remove_leftover(path)   # checks again: another QGIS may have taken it meanwhile
            if error:
                self.notify(tr("Could not delete {path}: {error}. The samples are kept.").format(path=path, error=error),
                            Qgis.MessageLevel.Warning)
        self.offer()

    def _still_offered(self, path: str) -> bool:
        """Whether a file offered earlier would still be offered now: the project was not saved and got no samples
        of its own since, and no running session (another QGIS) took the file; if not, says so."""
        if any(path == found for found, _ in self.leftovers()):
            return True
        self.notify(tr("{path} is no longer offered: this project was saved or has samples of its own, or another "
                       "QGIS session took the file.").format(path=path), Qgis.MessageLevel.Warning)
        return False

    def _add(self, path: str) -> None:
        """Make a sample file the project's sample layer, and add the classes of its samples that the table lacks;
        refused (and offered again) while a class of the table has a sample class's id or name but not both."""
        if not self._still_offered(path):
            self.offer()
            return
        found, current = sample_file_classes(path), self.classes.model.classes()
        clashes = clashing_classes(current, found)
        if clashes:
            pairs = "; ".join(tr("{id} '{name}' here, {other_id} '{other}' there").format(
                id=c.id, name=c.name, other_id=n.id, other=n.name) for c, n in clashes)
            self.notify(tr("Those samples' classes clash with the class table ({pairs}). Rename or remove these "
                           "classes in the table, then press 'Add them' again.").format(pairs=pairs),
                        Qgis.MessageLevel.Warning)
            self.offer()
            return
        try:
            self.store.adopt(path, current)
        except SampleLayerError as e:
            self.notify(str(e), Qgis.MessageLevel.Critical)
            self.offer()
            return
        selected = self.classes.current_class()
        classes = merge_classes(current, found)
        self.classes.model.set_classes(classes)
        self.classes.model.classesEdited.emit()   # restyles the samples and saves the classes in the project
        if classes:
            self.classes.select_class((selected or classes[0]).id)
        self.adopted.emit()
