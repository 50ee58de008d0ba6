"""The background jobs: QgsTasks that train a few-shot classifier and classify, or suggest samples.

``run()`` works in a worker thread on plain data only (file paths, WKB samples, class list):
it never touches layers or widgets. The dock reads ``result`` or ``error`` when ``done`` fires
on the main thread.
"""
from __future__ import annotations

import os
import re
import traceback
from dataclasses import dataclass, field
from typing import Optional

from qgis.core import Qgis, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import QLockFile, pyqtSignal

from ..core.progress import Callback, Cancelled
from ..workflow.phases import SUGGEST_WEIGHTS, PhaseProgress
from ..workflow.requests import ClassifyRequest, ClassifyResult, SuggestRequest
from . import tr
from .reservations import reserve_number

LOG_TAG = "DiffCLIP"
_NUMBERED = re.compile(r"^diffclip_(?:classification|confidence|model)_(\d+)\.")
RESERVATION = ".diffclip_run_{number:03d}.lock"   # held by the run that will write that number, until it ends


@dataclass
class Outputs:
    """The files one run writes: ``diffclip_classification_NNN.tif`` (+ .qml), confidence and model."""

    folder: str
    number: int
    lock: Optional[QLockFile] = field(default=None, repr=False, compare=False)  # the number's reservation

    def path(self, kind: str, ext: str) -> str:
        return os.path.join(self.folder, f"diffclip_{kind}_{self.number:03d}.{ext}")

    @property
    def classification(self) -> str:
        return self.path("classification", "tif")

    @property
    def confidence(self) -> str:
        return self.path("confidence", "tif")

    @property
    def model(self) -> str:
        return self.path("model", "pt")

    @property
    def style(self) -> str:
        return self.path("classification", "qml")


def next_outputs(folder: str) -> Outputs:
    """The next number in ``folder`` that no file has and no running run holds (another QGIS's too), reserved
    until its ``lock`` is unlocked, so that a run never overwrites an earlier or a concurrent one. The folder is
    created; ValueError when it cannot be written."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ValueError(tr("Cannot create the output folder {folder}: {error}. Choose another output folder in "
                            "Settings.").format(folder=folder, error=e.strerror or e)) from None
    number, lock = reserve_number(folder, _NUMBERED, RESERVATION)
    return Outputs(folder, number, lock)


class WorkflowTask(QgsTask):
    """A workflow job in the background, cancellable from the dock or the task manager.

    Subclasses run the job in :meth:`work`. ``phaseChanged(phase, fraction, message)`` and
    ``logMessage(text)`` arrive on the main thread; ``done(ok)`` fires from :meth:`finished`, which also frees
    ``reservation`` (the output files' number, reserved in ``folder`` before the task was made).
    """

    phaseChanged = pyqtSignal(str, float, str)
    logMessage = pyqtSignal(str)
    done = pyqtSignal(bool)

    def __init__(self, description: str, progress: PhaseProgress, folder: str, reservation: Optional[QLockFile]):
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.folder, self._reservation = folder, reservation   # where its files go; their number, until it ends
        self.result = None
        self.error = ""
        self.details = ""
        self._progress = progress

    def work(self, callback: Callback):
        """The job (worker thread, plain data only); its return value becomes ``result``."""
        raise NotImplementedError

    # -- worker thread ----------------------------------------------------------------------------
    def run(self) -> bool:  # noqa: D401 (QGIS API)
        import torch

        from ..core.threads import cpu_threads

        threads = torch.get_num_threads()
        if threads > 1 and threads >= (os.cpu_count() or 1):
            threads -= 1   # leave a core to QGIS: oversubscribed CPUs slow torch down badly
        try:
            with cpu_threads(threads):
                self.result = self.work(Callback(self._report, self.isCanceled, self._log,
                                                 warn=lambda m: self._log(m, True)))
            return True
        except Cancelled:
            return False
        except Exception as e:  # noqa: BLE001 (reported to the user in finished())
            self.error = str(e) or e.__class__.__name__
            self.details = traceback.format_exc()
            return False

    def _report(self, phase: str, fraction: float, message: str = "") -> None:
        percent = self._progress.percent(phase, fraction)
        if percent is not None:
            self.setProgress(percent)
        self.phaseChanged.emit(phase, fraction, message)
        following = self._progress.next_phase(phase) if fraction >= 1.0 else ""
        if following:  # the core reports a phase's first progress only after its first step: announce its start
            self.phaseChanged.emit(following, 0.0, "")

    def _log(self, message: str, warning: bool = False) -> None:
        QgsMessageLog.logMessage(message, LOG_TAG, Qgis.MessageLevel.Warning if warning else Qgis.MessageLevel.Info)
        self.logMessage.emit(message)

    # -- main thread --------------------------------------------------------------------------------
    def finished(self, result: bool) -> None:  # noqa: D401 (QGIS API)
        if self._reservation is not None:
            self._reservation.unlock()
        if not result and self.details:
            QgsMessageLog.logMessage(self.details, LOG_TAG, Qgis.MessageLevel.Critical)
        self.done.emit(bool(result))


class ClassifyTask(WorkflowTask):
    """Few-shot classification: trains on ``request`` and writes ``outputs``; ``result`` is a ClassifyResult."""

    def __init__(self, request: ClassifyRequest, outputs: Outputs):
        from ..workflow.classify import run_phases

        super().__init__(tr("DiffCLIP few-shot classification"), run_phases(request), outputs.folder, outputs.lock)
        self.request, self.outputs = request, outputs
        self.result: Optional[ClassifyResult] = None

    def work(self, callback: Callback) -> ClassifyResult:
        from ..workflow.classify import fewshot_classify

        return fewshot_classify(self.request, callback)


class SuggestTask(WorkflowTask):
    """Suggested samples from a trained model, written to ``request.output``; ``result`` is the Suggestions."""

    def __init__(self, request: SuggestRequest, reservation: QLockFile):
        super().__init__(tr("DiffCLIP sample suggestions"), PhaseProgress(SUGGEST_WEIGHTS), os.path.dirname(request.output),
                         reservation)
        self.request = request

    def work(self, callback: Callback):
        from ..workflow.suggest import suggest_samples

        return suggest_samples(self.request, callback)
