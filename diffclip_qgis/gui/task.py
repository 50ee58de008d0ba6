"""The background run: a QgsTask that trains a few-shot classifier and writes the classification.

``run()`` works in a worker thread on plain data only (file paths, WKB samples, class list):
it never touches layers or widgets. The dock reads ``result`` or ``error`` when ``done`` fires
on the main thread.
"""
from __future__ import annotations

import os
import re
import time
import traceback
from dataclasses import dataclass
from typing import List

import torch
from qgis.core import Qgis, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from ..core.checkpoint import load_model, save_model
from ..core.classes import ClassInfo
from ..core.config import get_preset, set_fewshot_pretrain_epochs, set_finetune_epochs
from ..core.device import describe_device, resolve_device
from ..core.files import PendingOutputs, check_output_paths
from ..core.infer import Predictor
from ..core.pipeline import fewshot_classifier
from ..core.progress import Callback, Cancelled
from ..gis.raster import RasterStack, dataset_files, write_classification
from ..gis.samples import samples_from_geometries
from . import tr
from .run_progress import RunProgress

LOG_TAG = "DiffCLIP"
_NUMBERED = re.compile(r"^diffclip_(?:classification|confidence|model)_(\d+)\.")


@dataclass
class Outputs:
    """The files one run writes: ``diffclip_classification_NNN.tif`` (+ .qml), confidence and model."""

    folder: str
    number: int

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

    def files(self) -> List[str]:
        return [self.classification, self.classification + ".aux.xml", self.style, self.confidence,
                self.confidence + ".aux.xml", self.model]


def next_outputs(folder: str) -> Outputs:
    """The next free number in ``folder``, so that a run never overwrites an earlier one."""
    numbers = [int(m.group(1)) for m in map(_NUMBERED.match, os.listdir(folder) if os.path.isdir(folder) else []) if m]
    return Outputs(folder, max(numbers, default=0) + 1)


@dataclass
class RunRequest:
    """Everything a run needs, as plain data gathered on the main thread."""

    raster_paths: List[str]
    sample_wkbs: List[bytes]
    sample_ids: List[int]
    samples_crs_wkt: str
    classes: List[ClassInfo]
    outputs: Outputs
    preset: str = "cpu"
    pretrain_epochs: int = 30
    finetune_epochs: int = 100
    window: str = "auto"
    class_proportions: float = 0.5
    device: str = "auto"
    pretrained_path: str = ""


class ClassifyTask(QgsTask):
    """Few-shot classification in the background, cancellable from the dock or the task manager.

    ``phaseChanged(phase, fraction, message)`` and ``logMessage(text)`` arrive on the main thread;
    ``done(ok)`` fires from :meth:`finished`.
    """

    phaseChanged = pyqtSignal(str, float, str)
    logMessage = pyqtSignal(str)
    done = pyqtSignal(bool)

    def __init__(self, request: RunRequest):
        super().__init__(tr("DiffCLIP few-shot classification"), QgsTask.CanCancel)
        self.request = request
        self.result: dict = {}
        self.error = ""
        self.details = ""
        self._progress = RunProgress(pretrain=not request.pretrained_path and request.pretrain_epochs > 0,
                                     choose_window=request.window == "auto")

    # -- worker thread ----------------------------------------------------------------------------
    def run(self) -> bool:  # noqa: D401 (QGIS API)
        threads = torch.get_num_threads()
        if threads > 1 and threads >= (os.cpu_count() or 1):
            torch.set_num_threads(threads - 1)  # leave a core to QGIS: oversubscribed CPUs slow torch down badly
        try:
            self.result = self._classify()
            return True
        except Cancelled:
            return False
        except Exception as e:  # noqa: BLE001 (reported to the user in finished())
            self.error = str(e) or e.__class__.__name__
            self.details = traceback.format_exc()
            return False
        finally:
            torch.set_num_threads(threads)

    def _report(self, phase: str, fraction: float, message: str = "") -> None:
        percent = self._progress.percent(phase, fraction)
        if percent is not None:
            self.setProgress(percent)
        self.phaseChanged.emit(phase, fraction, message)

    def _log(self, message: str, warning: bool = False) -> None:
        QgsMessageLog.logMessage(message, LOG_TAG, Qgis.Warning if warning else Qgis.Info)
        self.logMessage.emit(message)

    def _classify(self) -> dict:
        req, out = self.request, self.request.outputs
        callback = Callback(self._report, self.isCanceled, self._log)
        t0 = time.perf_counter()
        self._report("reading", 0.0)
        os.makedirs(out.folder, exist_ok=True)
        check_output_paths({"input raster": [f for p in req.raster_paths for f in dataset_files(p)],
                            "pretrained model": [req.pretrained_path]}, {"output": out.files()})
        stack = RasterStack(req.raster_paths, log=self._log)
        try:
            samples = samples_from_geometries(req.sample_wkbs, req.sample_ids, stack.geotransform, stack.height,
                                              stack.width, req.samples_crs_wkt, stack.crs_wkt, log=self._log)
            callback.check()
            preset = get_preset(req.preset)
            set_fewshot_pretrain_epochs(preset, req.pretrain_epochs)
            set_finetune_epochs(preset, req.finetune_epochs)
            preset.window = req.window if req.window == "auto" else int(req.window)
            preset.finetune.prior_strength = req.class_proportions
            device = resolve_device(req.device)
            self._log(f"Device: {describe_device(device)}.")
            pretrained = load_model(req.pretrained_path) if req.pretrained_path else None
            trained = fewshot_classifier(stack, samples.rows, samples.cols, samples.class_ids, req.classes, preset,
                                         device, infos=stack.infos, pretrained=pretrained, callback=callback)
            tiles = Predictor(trained, device).iter_tiles(stack, callback=callback)
            with PendingOutputs() as outputs:  # the map, its confidence and the model appear together
                write_classification(out.classification, tiles, stack.height, stack.width, stack.geotransform,
                                     stack.crs_wkt, req.classes, confidence_path=out.confidence, log=self._log,
                                     outputs=outputs)
                save_model(trained, out.model, outputs)
        finally:
            stack.close()
        return {"window": trained.window, "window_scores": dict(trained.report.get("window_scores", {})),
                "samples": int(len(samples.rows)), "seconds": time.perf_counter() - t0,
                "device": describe_device(device)}

    # -- main thread --------------------------------------------------------------------------------
    def finished(self, result: bool) -> None:  # noqa: D401 (QGIS API)
        if not result and self.details:
            QgsMessageLog.logMessage(self.details, LOG_TAG, Qgis.Critical)
        self.done.emit(bool(result))
