"""The DiffCLIP dock: inputs, classes and prompts, click-to-label samples, settings, background run,
and suggested samples from the last run's model.

Classes, ticked inputs, settings and the last run's model are stored in the project (``DiffCLIP``
entries), samples in the project's sample layer, so everything comes back when the project is reopened.
"""
from __future__ import annotations

import json
import os
from typing import Callable, Optional, Sequence, Tuple

from qgis.core import Qgis, QgsApplication, QgsCoordinateTransform, QgsProject
from qgis.gui import QgsCollapsibleGroupBox, QgsDockWidget, QgsMessageBarItem
from qgis.PyQt.QtCore import QSettings, Qt, QTimer
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import (QAction, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
                                 QPushButton,
                                 QScrollArea, QToolButton, QVBoxLayout, QWidget)

from ..core.classes import ClassInfo
from ..qgis_layers import layer_file
from ..workflow.phases import PhaseClock, format_seconds
from . import tr
from .class_table import ClassPanel
from .demo import demo_path, demo_rasters, demo_samples, zoom_to
from .dependencies import torch_status
from .inputs import InputList, unalignable
from .sample_layer import SampleLayerError, SampleStore, classes_in
from .sample_tool import SampleMapTool
from .settings_panel import SettingsPanel
from .suggest_panel import SuggestPanel
from .suggestions import SuggestionMarkers
from .torch_panel import TorchMissingPanel
from .true_colour import show_true_colour
from .unsaved_offer import UnsavedSamplesOffer

SCOPE = "DiffCLIP"
SETTINGS_COLLAPSED = "DiffCLIP/settingsCollapsed"
WIDENED = "DiffCLIP/dockWidened"   # the dock opened wide once; after that QGIS keeps the user's width
FIRST_WIDTH_SHARE, FIRST_WIDTH_MAX = 0.3, 600   # its first width: this share of the main window, at most this
RESOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources")


def phase_name(phase: str) -> str:
    return {"reading": tr("reading the inputs"), "pretraining": tr("pretraining"),
            "choosing window": tr("cross-validating on the samples"), "fine-tuning": tr("fine-tuning"),
            "classifying": tr("classifying"), "writing": tr("writing")}.get(phase, phase)


class DiffClipDock(QgsDockWidget):
    """Everything for a few-shot classification from the map: see the module docstring."""

    def __init__(self, iface, project: Optional[QgsProject] = None):
        super().__init__(tr("DiffCLIP Few-shot Classification"))
        self.iface, self.project = iface, project or QgsProject.instance()
        self.torch = torch_status()
        self.task = None
        self._loading = False
        self._reading = False  # between a project's first layer and its readProject signal
        self._previous_tool = None  # the map tool active before labelling, restored after it
        self._style = []
        self._clock = PhaseClock()
        self.canvas = iface.mapCanvas()

        self.inputs = InputList(self.project)
        self.classes = ClassPanel()
        self.store = SampleStore(self.project, self)
        self.settings = SettingsPanel(self.torch.available)
        self.suggestions = SuggestionMarkers(self.project, self)
        self.suggest_panel = SuggestPanel()
        self.suggest_panel.button.clicked.connect(self.suggest)
        self.tool = SampleMapTool(self.canvas, self.store, self.inputs.checked_layers, self.classes.current_class,
                                  self.classes.model.classes, self.notify, self.suggestions)
        self.tool_action = QAction(QIcon(os.path.join(RESOURCES, "sample_tool.svg")), tr("Label samples"), self)
        self.tool_action.setCheckable(True)
        self.tool_action.toggled.connect(self._toggle_tool)
        self.tool.setAction(self.tool_action)

        self._build_ui()
        self.classes.model.classesEdited.connect(self._classes_edited)
        self.classes.delete_samples = self._delete_samples
        self.classes.notice.connect(self.notify)
        self.store.changed.connect(self._samples_changed)
        self.store.notice.connect(lambda text: self.notify(text, Qgis.MessageLevel.Warning))
        self.suggestions.changed.connect(self._suggestions_left)
        self.inputs.changed.connect(self._save_to_project)
        self.settings.changed.connect(self._save_to_project)
        for signal in (self.inputs.changed, self.classes.model.classesEdited, self.classes.model.modelReset):
            signal.connect(self._update_run_state)
        self.project.readProject.connect(self.load_from_project)
        self.project.cleared.connect(self.load_from_project)
        self.project.loadingLayer.connect(self._reading_project)
        self.project.layersAdded.connect(self._layers_added)
        self.project.layersRemoved.connect(self._update_run_state)
        self.project.projectSaved.connect(self._project_saved)
        self._project_loads = 0   # counts project loads and clears: a run's results belong to the project it started in
        self._run_project = 0
        self._action_items = []   # message bar entries with a button
        self._run_messages = []   # message bar entries that report a run, closed when the next run starts
        self.unsaved_offer = UnsavedSamplesOffer(self.store, self.classes, self.notify, self._close_messages, self)
        self.unsaved_offer.adopted.connect(self._samples_changed)
        self.load_from_project()

    # -- layout -------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        if not self.torch.available:
            self.torch_panel = TorchMissingPanel(self.torch)
            layout.addWidget(self.torch_panel)
        layout.addWidget(self._group(tr("Input rasters"), self._inputs_box()))
        # Samples above the class table: labelling stays in view on a laptop screen with a dozen classes
        layout.addWidget(self._group(tr("Samples"), self._samples_box()))
        layout.addWidget(self._group(tr("Classes and prompts"), self.classes))
        self.settings_group = self._group(tr("Settings"), self.settings, collapsible=True)
        self.settings_group.setCollapsed(QSettings().value(SETTINGS_COLLAPSED, True, type=bool))
        self.settings_group.collapsedStateChanged.connect(lambda c: QSettings().setValue(SETTINGS_COLLAPSED, c))
        layout.addWidget(self.settings_group)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log_group = self._group(tr("Log"), self.log, collapsible=True)
        self.log_group.setCollapsed(True)
        layout.addWidget(self.log_group)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(380)  # room for the class table's columns
        scroll.setWidget(body)
        outer = QWidget()  # Run, Cancel, the progress and the phase stay in view below the scrolling part
        outer_layout = QVBoxLayout(outer)
        outer_layout.setContentsMargins(0, 0, 0, 4)
        outer_layout.addWidget(scroll, 1)
        outer_layout.addWidget(self._run_box())
        self.setWidget(outer)
        self.scroll = scroll

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        """The first time ever, widen the dock for the prompts when the main window has room (see WIDENED)."""
        super().showEvent(event)
        if not QSettings().value(WIDENED, False, type=bool):
            QSettings().setValue(WIDENED, True)
            window = self.iface.mainWindow()
            width = min(round(FIRST_WIDTH_SHARE * window.width()), FIRST_WIDTH_MAX)
            if width > self.width():
                window.resizeDocks([self], [width], Qt.Orientation.Horizontal)

    def _inputs_box(self) -> QWidget:
        box = QWidget()
        self.demo_button = QToolButton()
        self.demo_button.setIcon(QgsApplication.getThemeIcon("/mActionAddRasterLayer.svg"))
        self.demo_button.setText(tr("Load demo"))
        self.demo_button.setToolTip(tr("Add the bundled demo (hyperspectral and LiDAR rasters, 12 classes and "
                                       "their samples) and zoom to it"))
        self.demo_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.demo_button.clicked.connect(self.load_demo)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.inputs)
        layout.addWidget(self.demo_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    @staticmethod
    def _group(title: str, widget: QWidget, collapsible: bool = False) -> QGroupBox:
        group = QgsCollapsibleGroupBox(title) if collapsible else QGroupBox(title)
        QVBoxLayout(group).addWidget(widget)
        return group

    def _samples_box(self) -> QWidget:
        box = QWidget()
        tool_button = QToolButton()
        tool_button.setDefaultAction(self.tool_action)
        tool_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.undo_button = QToolButton()
        self.undo_button.setIcon(QgsApplication.getThemeIcon("/mActionUndo.svg"))
        self.undo_button.setText(tr("Undo"))
        self.undo_button.setToolTip(tr("Undo the last added or removed sample (Ctrl+Z on the map)"))
        self.undo_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.undo_button.clicked.connect(self.tool.undo)
        self.samples_label = QLabel()
        self.samples_label.setWordWrap(True)
        self.samples_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(tool_button)
        row.addWidget(self.undo_button)
        row.addStretch(1)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.samples_label)
        return box

    def _run_box(self) -> QWidget:
        box = QWidget()
        self.run_button = QPushButton(QgsApplication.getThemeIcon("/mActionStart.svg"), tr("Run"))
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton(QgsApplication.getThemeIcon("/mTaskCancel.svg"), tr("Cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.phase_label = QLabel()
        self.phase_label.setWordWrap(True)
        self.next_step = QLabel()   # what Run still needs, where a first-time user looks (not only in a tooltip)
        self.next_step.setWordWrap(True)
        self.next_step.setStyleSheet("font-style: italic")
        row = QHBoxLayout()
        row.addWidget(self.run_button, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(9, 0, 9, 0)
        layout.addLayout(row)
        layout.addWidget(self.next_step)
        layout.addWidget(self.suggest_panel)
        layout.addWidget(self.progress)
        layout.addWidget(self.phase_label)
        self._set_running(False)
        return box

    # -- messages -------------------------------------------------------------------------------------
    def notify(self, text: str, level: Qgis.MessageLevel = Qgis.MessageLevel.Info,
               actions: Sequence[Tuple[str, Callable[[], object]]] = (), sticky: bool = False) -> QgsMessageBarItem:
        """A message bar entry, also logged; errors, results and ``sticky`` entries stay until closed. Each of
        ``actions`` (its text, what it does) is a button: pressing it closes the entry and does it."""
        duration = 0 if sticky or level in (Qgis.MessageLevel.Critical, Qgis.MessageLevel.Success) else 6
        bar = self.iface.messageBar()
        item = QgsMessageBarItem("DiffCLIP", text, level, duration)
        for label, act in actions:
            button = QPushButton(label, item)
            button.clicked.connect(lambda _=False, act=act: (bar.popWidget(item), act()))
            item.layout().addWidget(button)
        if actions:
            self._action_items.append(item)   # closed with the dock: their buttons act on it
        bar.pushItem(item)
        self._append_log(text)
        return item

    def _report(self, text: str, level: Qgis.MessageLevel,
                actions: Sequence[Tuple[str, Callable[[], object]]] = ()) -> None:
        """Post a finished run's message: it stays until closed or until the next run starts, except a note
        (``Info``, e.g. a cancellation) that goes by itself."""
        self._run_messages.append(self.notify(text, level, actions, sticky=level != Qgis.MessageLevel.Info))

    def _close_messages(self, items: list) -> None:
        """Close these message bar entries of the dock (those the user closed are gone already)."""
        bar = self.iface.messageBar()
        for item in items:
            try:
                bar.popWidget(item)
            except RuntimeError:   # already closed
                pass
        items.clear()

    def _append_log(self, text: str) -> None:
        self.log.appendPlainText(text)

    # -- project state -----------------------------------------------------------------------------------
    def load_from_project(self, *_) -> None:
        """Classes, ticked inputs and settings from the project; classes from the sample layer if none saved."""
        self._project_loads += 1
        self._loading = True
        self.unsaved_offer.close()
        self._close_messages(self._run_messages)   # the last run's result and its buttons were another project's
        try:
            try:
                classes = [ClassInfo(**c) for c in self._entry("classes", [])] or self._classes_from_samples()
            except TypeError:
                classes = self._classes_from_samples()
            self.classes.model.set_classes(classes)
            if classes:
                self.classes.select_class(self.classes.model.classes()[0].id)
            self.inputs.refresh()
            self.inputs.set_checked(self.project.readListEntry(SCOPE, "inputs", [])[0])
            settings = self._entry("settings", {})
            self.settings.set_values(settings if isinstance(settings, dict) else {})
            self._style = [(c.id, c.name, c.colour) for c in self.classes.model.classes()]
            self.store.restyle(self.classes.model.classes())
            model = self._entry("model", {})
            self.suggest_panel.model = model if isinstance(model, dict) else {}
        finally:
            self._loading = self._reading = False
        self._samples_changed()
        self._show_default_output()
        self.suggest_panel.show_left(self.suggestions.count())
        if self.task is None:   # no "Done." from the project before
            self.phase_label.clear()
        self.unsaved_offer.schedule()

    def _entry(self, key: str, default):
        """A JSON value stored in the project, or ``default``."""
        text, _ = self.project.readEntry(SCOPE, key, "")
        try:
            return json.loads(text) if text else default
        except ValueError:
            return default

    def _classes_from_samples(self):
        return classes_in(self.store.layer())

    def _save_to_project(self) -> None:
        if self._loading:
            return
        self.project.writeEntry(SCOPE, "classes", json.dumps([c.as_dict() for c in self.classes.model.classes()]))
        self.project.writeEntry(SCOPE, "inputs", self.inputs.checked_ids())
        self.project.writeEntry(SCOPE, "settings", json.dumps(self.settings.values()))

    def _classes_edited(self) -> None:
        classes = self.classes.model.classes()
        style = [(c.id, c.name, c.colour) for c in classes]
        if style != self._style:  # not on every keystroke in the prompt editor
            self._style = style
            self.store.restyle(classes)
            try:
                self.store.name_samples(classes)
            except SampleLayerError as e:
                self.notify(str(e), Qgis.MessageLevel.Critical)
        self._save_to_project()

    def _delete_samples(self, class_id: int) -> bool:
        try:
            self.store.delete_class(class_id)
        except SampleLayerError as e:
            self.notify(str(e), Qgis.MessageLevel.Critical)
            return False
        return True

    def _samples_changed(self) -> None:
        counts = self.store.counts()
        self.classes.model.set_counts(counts)
        self.undo_button.setEnabled(self.store.can_undo())
        layer = self.store.layer()
        if layer is None:
            self.samples_label.setText(tr("No samples yet. Tick the input rasters, add classes, then press "
                                          "'Label samples' and click on the map."))
        else:
            self.unsaved_offer.close()   # an earlier session's samples are offered to the next new project
            self.samples_label.setText(tr("{n} samples in {path}").format(
                n=sum(counts.values()), path=layer_file(layer)))
        self._update_run_state()

    def _reading_project(self, *_) -> None:
        self._reading = True

    def _layers_added(self, layers) -> None:
        """New rasters (not while a project is read): true colour if asked, ticked when no input is ticked."""
        if self._reading or self._loading:
            return
        listed = set(self.inputs.listed_ids())
        rasters = [l for l in layers if l.id() in listed]
        if self.settings.true_colour.isChecked():
            for layer in rasters:
                show_true_colour(layer)
        if rasters and not self.inputs.checked_ids():
            self.inputs.set_checked([l.id() for l in rasters])
        self._update_run_state()

    def _show_default_output(self) -> None:
        self.settings.show_default_output(self.default_output_folder())

    def _project_saved(self) -> None:
        self._show_default_output()
        self.unsaved_offer.close()   # offered to a project never saved

    def load_demo(self) -> bool:
        """Add the demo rasters, tick them, load its class list and (into an empty sample layer) its samples."""
        hsi, lidar = demo_rasters(self.project)
        self.inputs.set_checked([hsi.id(), lidar.id()])
        if not self.classes.load_file(demo_path("demo_classes.json")):
            return False
        if not sum(self.store.counts().values()):
            points, crs = demo_samples()
            classes = self.classes.model.classes()
            names = {c.id: c.name for c in classes}
            layer = self.store.ensure_layer(hsi.crs(), classes)
            to_layer = QgsCoordinateTransform(crs, layer.crs(), self.project)
            self.store.apply([(to_layer.transform(p), i, names[i]) for p, i in points if i in names])
            self.store.clear_undo()   # Undo takes back the user's own clicks, not the whole demo
        zoom_to(self.canvas, hsi)
        return True

    # -- samples ----------------------------------------------------------------------------------------
    def _toggle_tool(self, on: bool) -> None:
        if on and self.canvas.mapTool() is not self.tool:
            self._previous_tool = self.canvas.mapTool()
            self.canvas.setMapTool(self.tool)
        elif not on and self.canvas.mapTool() is self.tool:
            self._restore_tool()

    def _restore_tool(self) -> None:
        """Give the map back the tool active before labelling, else QGIS's pan tool."""
        previous, self._previous_tool = self._previous_tool, None
        try:
            if previous is not None:
                self.canvas.setMapTool(previous)
                return
        except RuntimeError:  # that tool is deleted
            pass
        self.canvas.unsetMapTool(self.tool)
        self.iface.actionPan().trigger()

    # -- run -----------------------------------------------------------------------------------------------
    def run(self) -> bool:
        """Start the background run; False (with a message) when something is missing."""
        if self.task is not None:
            return False
        try:
            request, outputs = self._request()
        except ValueError as e:
            self.notify(str(e), Qgis.MessageLevel.Warning)
            return False
        from .task import ClassifyTask

        self._append_log(tr("Run {n:03d} started; outputs go to {folder}.").format(
            n=outputs.number, folder=outputs.folder))
        self._start(ClassifyTask(request, outputs))
        return True

    def _start(self, task) -> None:
        """Show the progress of a background task and hand it to QGIS's task manager."""
        task.phaseChanged.connect(self._phase)
        task.logMessage.connect(self._append_log)
        task.progressChanged.connect(self._task_progress)
        task.done.connect(self._task_done)
        self.task = task
        self._run_project = self._project_loads
        self._clock = PhaseClock()
        self._close_messages(self._run_messages)   # an earlier run's result would come back after this one's note
        self._set_running(True)
        QgsApplication.taskManager().addTask(task)

    def missing_rasters(self) -> str:
        """What labelling and a run need first: ticked input rasters; "" when they are there."""
        if not self.inputs.listed_ids():
            return tr("Add the rasters to classify to the project (or press 'Load demo').")
        if not self.inputs.checked_ids():
            return tr("Tick at least one input raster.")
        return ""

    def missing(self) -> str:
        """What a run still needs, or "" when it can start."""
        if not self.torch.available:
            return tr("PyTorch is missing: install it with the command shown in the dock, then restart QGIS.")
        rasters = self.missing_rasters() or unalignable(self.inputs.checked_layers())
        if rasters:
            return rasters
        classes = self.classes.model.classes()
        if len(classes) < 2:
            return tr("Add at least two classes.")
        empty = [c.name for c in classes if not self.classes.model.count(c.id)]
        if empty:
            return tr("No samples for: {names}. Label at least one pixel of every class, or remove the "
                      "class.").format(names=", ".join(empty))
        from ..core.classes import ClassListError
        from ..core.tokenizer import check_prompts   # torch is there (above)

        try:
            check_prompts(classes)   # two classes the text encoder reads as one: the run would refuse them
        except ClassListError as e:
            return str(e)
        return ""

    def _update_run_state(self, *_) -> None:
        """Label samples, Run and Suggest samples are enabled when nothing they need is missing; their tooltips, and
        a line under Run, say what is."""
        rasters = self.missing_rasters()
        if rasters:
            self.tool_action.setChecked(False)
        self.tool_action.setEnabled(not rasters)
        self.tool_action.setToolTip(rasters or tr("Left click: label the pixel with the selected class. Right click: "
                                                  "remove the nearest sample. Ctrl+Z: undo."))
        if self.task is not None:
            return
        missing = self.missing()
        self.run_button.setEnabled(not missing)
        self.run_button.setToolTip(missing or tr("Train on the samples and classify the inputs, in the background"))
        self.next_step.setText(missing)
        self.next_step.setVisible(bool(missing))
        self.suggest_panel.show_missing(self.suggest_missing())

    def _request(self):
        """The run's workflow request and its numbered outputs; ValueError with a message when something is missing."""
        missing = self.missing()
        if missing:
            raise ValueError(missing)
        layers = self.inputs.checked_layers()
        classes = self.classes.model.classes()
        wkbs, ids, crs = self.store.samples()
        known = {c.id for c in classes}
        keep = [i for i, cid in enumerate(ids) if cid in known]
        if len(keep) < len(ids):
            self._append_log(tr("{n} samples of classes not in the table are left out.").format(n=len(ids) - len(keep)))
        values = self.settings.values()
        pretrained = values["pretrained_path"]
        if pretrained and not os.path.isfile(pretrained):
            raise ValueError(tr("The pretrained model file does not exist: {path}").format(path=pretrained))
        from ..workflow.requests import ClassifyRequest, Samples
        from .task import next_outputs

        outputs = next_outputs(values["output_folder"] or self.default_output_folder())
        request = ClassifyRequest(
            inputs=[layer.source() for layer in layers],
            samples=Samples([wkbs[i] for i in keep], [ids[i] for i in keep], crs),
            output=outputs.classification, output_confidence=outputs.confidence, output_model=outputs.model,
            classes=classes, pretrained=pretrained, preset=values["preset"], window=values["window"],
            pretrain_epochs=values["pretrain_epochs"], epochs=values["finetune_epochs"],
            class_proportions=values["class_proportions"], device=values["device"], smoothing=values["smoothing"])
        return request, outputs

    def default_output_folder(self) -> str:
        """``diffclip_output`` next to the project file, or in the home folder for an unsaved project."""
        home = self.project.absolutePath() or os.path.expanduser("~")
        return os.path.join(home, "diffclip_output")

    # -- suggested samples ---------------------------------------------------------------------------------
    def suggest_missing(self) -> str:
        """What suggesting samples still needs, or "" when it can start."""
        if not self.torch.available:
            return self.missing()  # says how to install PyTorch
        return self.suggest_panel.missing([layer.source() for layer in self.inputs.checked_layers()])

    def suggest(self) -> bool:
        """Start suggesting samples in the background; False (with a message) when it cannot start."""
        if self.task is not None:
            return False
        missing = self.suggest_missing()
        if missing:
            self.notify(missing, Qgis.MessageLevel.Warning)
            return False
        from ..workflow.requests import Samples
        from .task import SuggestTask

        try:
            request, reservation = self.suggest_panel.request(Samples(*self.store.samples()),
                                                              self.settings.values()["device"])
        except ValueError as e:
            self.notify(str(e), Qgis.MessageLevel.Warning)
            return False
        task = SuggestTask(request, reservation)
        self.suggestions.suggesting = True
        self._start(task)
        return True

    def _show_suggestions(self, task) -> Tuple[str, Qgis.MessageLevel]:
        """Put the new suggestions on the map and switch to labelling; the message for the bar."""
        found = self.suggestions.show(task.request.output)
        self.suggest_panel.show_left(self.suggestions.count())
        if not found:
            return tr("No pixel to suggest: every candidate is next to a sample or on nodata."), Qgis.MessageLevel.Info
        self.tool_action.setChecked(True)
        return tr("{n} suggested samples on the map: click one to label it.").format(n=found), Qgis.MessageLevel.Success

    def _suggestions_left(self, left: int) -> None:
        if left:
            self.suggest_panel.show_left(left)
        else:
            self.notify(self.suggest_panel.all_done())

    def cancel(self) -> None:
        if self.task is not None:
            self.phase_label.setText(tr("Cancelling..."))
            self.task.cancel()  # a task not started yet finishes here

    def _set_running(self, running: bool) -> None:
        """Show a run's progress and lock what it has read (inputs, classes, settings) until it ends."""
        for widget in (self.inputs, self.demo_button, self.settings):
            widget.setEnabled(not running)
        self.classes.set_editable(not running)
        self.run_button.setEnabled(not running)
        self.next_step.setVisible(False)
        self.suggest_panel.button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        if running:
            self.progress.setValue(0)
            self.phase_label.setText(tr("Starting..."))
        else:
            self._update_run_state()

    def _task_progress(self, percent: float) -> None:
        self.progress.setValue(int(percent))

    def _phase(self, phase: str, fraction: float, message: str) -> None:
        left = self._clock.update(phase, fraction)
        text = phase_name(phase) + (f": {message}" if message else "")
        if left is not None:
            text += " " + tr("(about {t} left in this phase)").format(t=format_seconds(left))
        self.phase_label.setText(text)

    def _task_done(self, ok: bool) -> None:
        from .results import suggestions_would_help
        from .task import SuggestTask

        task, self.task = self.task, None
        suggesting = isinstance(task, SuggestTask)
        if suggesting:   # new markers replace the old ones if it succeeded; if not, undo may bring them back again
            self.suggestions.suggesting = False
        self._set_running(False)
        actions = []
        if ok and self._run_project != self._project_loads:
            self.phase_label.clear()   # the dock shows another project now
            self._append_log(tr("The run finished after another project was opened, so nothing was added to this "
                                "one; its files are in {folder}.").format(folder=task.folder))
            text, level = tr("Nothing added: another project was opened (see the Log)."), Qgis.MessageLevel.Warning
            self.show_log()
        elif ok:
            self.phase_label.setText(tr("Done."))
            text, level = self._show_suggestions(task) if suggesting else self._show_results(task)
            if not suggesting and suggestions_would_help(task.result):
                actions.append((tr("Suggest samples"), self.suggest))
        elif task.isCanceled():
            self.phase_label.setText(tr("Cancelled."))
            text = tr("Suggesting samples cancelled.") if suggesting else \
                tr("Classification cancelled; nothing was written.")
            level = Qgis.MessageLevel.Info
            QTimer.singleShot(0, lambda: drop_task_notice(self.iface.messageBar(), task.description()))
        else:
            self.phase_label.setText(tr("Failed."))
            text = (tr("Suggesting samples failed: {error}") if suggesting else
                    tr("Classification failed: {error}")).format(error=task.error)
            level = Qgis.MessageLevel.Critical
        # After QGIS's own "Task complete" notice (shown in the message bar where there is no system tray).
        QTimer.singleShot(0, lambda: self._report(text, level, actions))

    def _show_results(self, task) -> Tuple[str, Qgis.MessageLevel]:
        """Add a finished run's layers, log its details and remember its model; the message for the bar."""
        from .results import add_result_layers, result_log, success_message

        self.suggest_panel.model = {"path": task.outputs.model, "inputs": task.request.inputs,
                                    "classes": len(task.request.classes)}
        self.project.writeEntry(SCOPE, "model", json.dumps(self.suggest_panel.model))
        self.suggest_panel.show_left(self.suggestions.count())  # no "Run again" any more
        self._update_run_state()
        add_result_layers(self.project, task.outputs, task.request.classes, self.store.layer())
        for line in result_log(task.result, task.outputs):
            self._append_log(line)
        self.show_log()
        return success_message(task.result), Qgis.MessageLevel.Success

    def show_log(self) -> None:
        """Open the Log group and scroll the dock to it (the message bar sends the user there)."""
        self.log_group.setCollapsed(False)
        self.scroll.ensureWidgetVisible(self.log_group)

    # -- unload ---------------------------------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel a running task, release the map tool, remove canvas items and project connections."""
        if self.task is not None:
            task, self.task = self.task, None
            try:
                for signal, slot in ((task.done, self._task_done), (task.phaseChanged, self._phase),
                                     (task.logMessage, self._append_log), (task.progressChanged, self._task_progress)):
                    signal.disconnect(slot)
                task.cancel()
                task.waitForFinished(timeout_ms)
                bar, description = self.iface.messageBar(), task.description()
                QTimer.singleShot(0, lambda: drop_task_notice(bar, description))   # the dock is gone by then
                bar.pushMessage("DiffCLIP", tr("The run was cancelled: the plugin was turned off."),
                                Qgis.MessageLevel.Info, 6)
            except RuntimeError:  # the task object is already deleted
                pass
            self._set_running(False)
        self.unsaved_offer.stop()
        self._close_messages(self._action_items)
        if self.canvas.mapTool() is self.tool:
            self._restore_tool()
        self.tool.setAction(None)
        self.tool.remove_canvas_items()
        self.tool.setParent(None)  # off the canvas (which outlives the plugin): it goes with the dock
        for signal, slot in ((self.project.readProject, self.load_from_project),
                             (self.project.cleared, self.load_from_project),
                             (self.project.loadingLayer, self._reading_project),
                             (self.project.layersAdded, self._layers_added),
                             (self.project.layersRemoved, self._update_run_state),
                             (self.project.projectSaved, self._project_saved)):
            signal.disconnect(slot)
        self.inputs.disconnect_project()
        self.store.disconnect_project()


def drop_task_notice(bar, description: str) -> None:
    """Remove QGIS's "Task failed" entry for a cancelled run from the message bar: DiffCLIP reports it."""
    for item in bar.items():
        if item.text() == description:
            bar.popWidget(item)
