"""What the DiffCLIP algorithms share: the base class, parameter helpers, the feedback ->
core ``Callback`` adapter, samples read from a feature source, and classifying into files.

Only QGIS and the standard library are imported here at module level: torch, the compute
core and the GDAL layer load inside ``processAlgorithm`` (see :meth:`DiffClipAlgorithm.require_torch`),
so the provider registers and the Toolbox shows the algorithms even without torch.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

from qgis.core import (
    NULL,
    QgsCoordinateReferenceSystem,
    QgsFeatureRequest,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QVariant
from qgis.PyQt.QtGui import QIcon

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icon.svg")
HELP_URL = "https://github.com/diffclip-qgis/diffclip_qgis#processing-algorithms"

PRESETS = ["cpu", "paper"]
WINDOWS = ["auto", "3", "5", "7", "9", "11"]
DEVICES = ["auto", "cpu", "cuda"]
DEFAULT_PROMPT_TEMPLATE = "a multimodal fusion patch of a {name}."  # = core.classes.DEFAULT_PROMPT_TEMPLATE
GEOTIFF_EXTENSIONS = ("tif", "tiff")
MODEL_BYTES = 64 << 20   # room kept for a model file (the paper preset's is a few MB)

TORCH_MISSING = (
    "PyTorch is not installed in the Python that QGIS uses, and DiffCLIP needs it. Install it into "
    "QGIS's Python, then restart QGIS: on Linux run `python3 -m pip install --user torch "
    "--index-url https://download.pytorch.org/whl/cpu` (add --break-system-packages on Debian 12 / "
    "Ubuntu 23.04 and later, or use a CUDA wheel for a GPU); on Windows open the OSGeo4W Shell and run "
    "`python -m pip install torch`; on macOS run `/Applications/QGIS.app/Contents/MacOS/bin/python3 -m "
    "pip install torch`. numpy must stay below 2 where QGIS's GDAL was built against numpy 1."
)

# Core phases (as reported by core.progress.Callback) and the algorithm's own ones.
PHASE_LABELS = {
    "reading": "Reading inputs",
    "pretraining": "Pretraining",
    "choosing window": "Choosing the window",
    "fine-tuning": "Fine-tuning",
    "classifying": "Classifying",
    "smoothing": "Smoothing",
    "writing": "Writing",
}


def tr(text: str) -> str:
    return QCoreApplication.translate("DiffClipProcessing", text)


def fill_preset_values(text: str) -> str:
    """Replace %CPU_...% / %PAPER_...% markers in help texts by the presets' current values."""
    try:
        from ..core.config import fewshot_pretrain_epochs, get_preset  # plain dataclasses: no torch

        values = {}
        for name in ("cpu", "paper"):
            p = get_preset(name)
            values.update({
                f"%{name.upper()}_PRETRAIN_EPOCHS%": p.pretrain.epochs,
                f"%{name.upper()}_FEWSHOT_PRETRAIN_EPOCHS%": fewshot_pretrain_epochs(p),
                f"%{name.upper()}_EPOCHS%": p.finetune.epochs,
                f"%{name.upper()}_MAX_STEPS%": p.finetune.max_steps,
                f"%{name.upper()}_SAMPLE_COUNT%": p.pretrain.sample_count,
                f"%{name.upper()}_MODEL_WINDOW%": p.model.window,
            })
    except Exception:  # noqa: BLE001 (help must always render)
        values = {}
    for key, value in values.items():
        text = text.replace(key, str(value))
    return re.sub(r"%(CPU|PAPER)_[A-Z_]+%", "?", text)


class FeedbackAdapter:
    """Turns the core's ``Callback`` calls into ``QgsProcessingFeedback`` calls.

    ``ranges`` maps each phase to its (start, end) share of the progress bar in percent;
    fractions within a phase are spread over that range. Cancellation is the feedback's
    ``isCanceled()``; the core checks it at every batch and tile. Time spent per phase is
    recorded (from the end of the previous phase to the last report of this one) and
    written to the log by :meth:`log_times`.
    """

    def __init__(self, feedback, ranges: Dict[str, Tuple[float, float]]):
        self.feedback = feedback
        self.ranges = dict(ranges)
        self.times: Dict[str, float] = {}
        self._phase: Optional[str] = None
        self._phase_start = self._last = time.perf_counter()
        self._last_text = 0.0

    # -- core Callback protocol ---------------------------------------------------------
    def progress(self, phase: str, fraction: float, message: str = "") -> None:
        now = time.perf_counter()
        if phase != self._phase:
            self._switch(phase, self._last if self._phase is not None else self._phase_start)
        self._last = now
        self.times[phase] = now - self._phase_start
        lo, hi = self.ranges.get(phase, (None, None))
        if lo is not None:
            self.feedback.setProgress(lo + (hi - lo) * min(1.0, max(0.0, float(fraction))))
        if message and (now - self._last_text > 0.5 or fraction >= 1):
            self._last_text = now
            self.feedback.setProgressText(f"{PHASE_LABELS.get(phase, phase)}: {message}")

    def cancelled(self) -> bool:
        return self.feedback.isCanceled()

    def log(self, message: str) -> None:
        self.feedback.pushInfo(message)

    # -- GDAL layer log(message, warning) ---------------------------------------------
    def gis_log(self, message: str, warning: bool = False) -> None:
        if warning:
            self.feedback.pushWarning(message)
        else:
            self.feedback.pushInfo(message)

    # -- phases the core does not report ------------------------------------------------
    def begin(self, phase: str) -> None:
        """Start a phase now (for work outside the core, e.g. reading samples or writing)."""
        self._switch(phase, time.perf_counter())
        self.progress(phase, 0.0)

    def _switch(self, phase: str, start: float) -> None:
        self._phase, self._phase_start = phase, start

    def check(self) -> None:
        if self.feedback.isCanceled():
            raise Cancelled()

    def callback(self):
        """The core ``Callback`` that reports here (imports the core lazily)."""
        from ..core.progress import Callback

        return Callback(progress=self.progress, cancelled=self.cancelled, log=self.log)

    def log_times(self) -> None:
        if self.times:
            self.feedback.pushInfo("Time per phase: " + ", ".join(
                f"{PHASE_LABELS.get(p, p).lower()} {s:.1f} s" for p, s in self.times.items()) + ".")


class Cancelled(Exception):
    """Cancellation noticed outside the core (the core raises its own ``core.progress.Cancelled``)."""


class LoadStyle(QgsProcessingLayerPostProcessorInterface):
    """Applies the classification's .qml sidecar (paletted renderer, class names) once QGIS loads it."""

    _alive: List["LoadStyle"] = []  # QGIS calls the post-processor after the run: keep the wrapper alive

    def __init__(self, qml_path: str):
        super().__init__()
        self.qml_path = qml_path

    @classmethod
    def create(cls, qml_path: str) -> "LoadStyle":
        instance = cls(qml_path)
        cls._alive.append(instance)
        del cls._alive[:-100]
        return instance

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        if isinstance(layer, QgsRasterLayer) and os.path.isfile(self.qml_path):
            message, ok = layer.loadNamedStyle(self.qml_path)
            if not ok and feedback is not None:
                feedback.pushWarning(f"Could not apply the style {self.qml_path}: {message}")
            layer.triggerRepaint()


def apply_style_on_load(context, raster_path: str) -> None:
    """When QGIS will load ``raster_path`` after the run, style it with its .qml sidecar."""
    qml = os.path.splitext(raster_path)[0] + ".qml"
    if raster_path and os.path.isfile(qml) and context.willLoadLayerOnCompletion(raster_path):
        context.layerToLoadOnCompletionDetails(raster_path).setPostProcessor(LoadStyle.create(qml))


def layer_files(*layers) -> List[str]:
    """The files map layers read (a VRT's source files too); none for layers that are not files."""
    from ..gis.raster import dataset_files

    files = []
    for layer in layers:
        if layer is not None:
            path = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source()).get("path")
            files += dataset_files(path) if path and os.path.exists(path) else []
    return files


def classification_files(path: str) -> List[str]:
    """A classification output and the sidecars written with it (.aux.xml, .qml)."""
    return [path, path + ".aux.xml", os.path.splitext(path)[0] + ".qml"] if path else []


def raster_files(path: str) -> List[str]:
    """A raster output and its GDAL sidecar."""
    return [path, path + ".aux.xml"] if path else []


def feature_wkb_and_values(source, field_name: str, grid_crs: Optional[QgsCoordinateReferenceSystem],
                           context, feedback) -> Tuple[List[Optional[bytes]], List[object]]:
    """Geometries (ISO WKB, in ``grid_crs`` when both CRSs are known) and class values of a feature source.

    ``source`` comes from ``parameterAsSource``, so 'selected features only' and the context's
    invalid-geometry handling apply. NULL values become ``None``; features without geometry give ``None``.
    """
    fields = source.fields()
    index = fields.lookupField(field_name) if field_name else -1
    if index < 0:
        names = ", ".join(f.name() for f in fields) or "(no fields)"
        raise QgsProcessingException(
            tr("Choose the class field of the samples: '{0}' is not a field of the sample layer (fields: {1}).")
            .format(field_name or "", names))
    request = QgsFeatureRequest().setSubsetOfAttributes([index])
    if grid_crs is not None and grid_crs.isValid() and source.sourceCrs().isValid():
        request.setDestinationCrs(grid_crs, context.transformContext())
    wkbs: List[Optional[bytes]] = []
    values: List[object] = []
    for feature in source.getFeatures(request):
        if feedback is not None and feedback.isCanceled():
            raise Cancelled()
        geometry = feature.geometry()
        wkbs.append(None if geometry is None or geometry.isNull() else bytes(geometry.asWkb()))
        values.append(_plain(feature.attribute(index)))
    return wkbs, values


def _plain(value):
    """QVariant NULLs and Qt values as plain Python values."""
    if value is None or value == NULL or (isinstance(value, QVariant) and value.isNull()):
        return None
    return value


class DiffClipAlgorithm(QgsProcessingAlgorithm):
    """Base of the DiffCLIP algorithms: identity, help, shared parameters and error handling."""

    INPUTS = "INPUTS"
    PRESET = "PRESET"
    WINDOW = "WINDOW"
    DEVICE = "DEVICE"
    SEED = "SEED"
    EXTENT = "EXTENT"
    SMOOTHING = "SMOOTHING"
    OUTPUT = "OUTPUT"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    OUTPUT_MODEL = "OUTPUT_MODEL"

    _name = ""
    _display = ""
    _group_id = "classification"
    _group = "Classification"

    # -- identity --------------------------------------------------------------------------
    def createInstance(self):  # noqa: N802 (QGIS API names below too)
        return type(self)()

    def name(self):
        return self._name

    def displayName(self):
        return tr(self._display)

    def group(self):
        return tr(self._group)

    def groupId(self):
        return self._group_id

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):
        return ICON_PATH

    def helpUrl(self):
        return HELP_URL

    def tr(self, text: str) -> str:
        return tr(text)

    # -- parameter helpers ---------------------------------------------------------------------
    def add_inputs(self, description: str = "Input rasters (one per modality; the first defines the grid)"):
        self.addParameter(QgsProcessingParameterMultipleLayers(self.INPUTS, tr(description), QgsProcessing.TypeRaster))

    def add_enum(self, name: str, description: str, options: Sequence[str], default: str, advanced: bool = False):
        param = QgsProcessingParameterEnum(name, tr(description), list(options), allowMultiple=False,
                                           defaultValue=default, optional=False, usesStaticStrings=True)
        self._add(param, advanced)

    def add_int(self, name: str, description: str, default: Optional[int], minimum: Optional[int] = None,
                maximum: Optional[int] = None, optional: bool = False, advanced: bool = False):
        param = QgsProcessingParameterNumber(name, tr(description), QgsProcessingParameterNumber.Integer,
                                             defaultValue=default, optional=optional)
        if minimum is not None:
            param.setMinimum(minimum)
        if maximum is not None:
            param.setMaximum(maximum)
        self._add(param, advanced)

    def add_preset(self):
        self.add_enum(self.PRESET, "Preset (cpu: small and fast; paper: the paper's sizes, for a GPU)", PRESETS, "cpu")

    def add_device(self):
        self.add_enum(self.DEVICE, "Device", DEVICES, "auto", advanced=True)

    def add_seed(self):
        self.add_int(self.SEED, "Random seed", 0, minimum=0, advanced=True)

    def add_extent(self):
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, tr("Classify only inside this extent"),
                                                       optional=True))

    def add_smoothing(self):
        self.add_int(self.SMOOTHING, "Majority smoothing radius (pixels; 0 = off)", 0, minimum=0, maximum=25)

    def add_class_outputs(self):
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, tr("Classification")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFIDENCE, tr("Confidence (probability of the chosen class)"), optional=True,
            createByDefault=False))

    def _add(self, param, advanced: bool):
        if advanced:
            param.setFlags(param.flags() | param.FlagAdvanced)
        self.addParameter(param)

    # -- parameter values ------------------------------------------------------------------------
    def optional_int(self, parameters, name: str, context) -> Optional[int]:
        """The integer value, or None when empty or negative (= use the preset's default)."""
        if name in parameters and parameters[name] in (None, ""):
            return None
        value = self.parameterAsInt(parameters, name, context)
        return None if value < 0 else value

    def positive_or_preset(self, parameters, name: str, context, preset_value: int) -> int:
        """A count of at least 1, or ``preset_value`` when empty or negative; 0 is an error."""
        value = self.optional_int(parameters, name, context)
        if value == 0:
            raise QgsProcessingException(tr("{0} must be at least 1 (or -1 for the preset's {1}).")
                                         .format(name, preset_value))
        return preset_value if value is None else value

    def raster_paths(self, parameters, context) -> Tuple[List[str], list]:
        """File paths (GDAL data source names) of the input raster layers, and the layers."""
        layers = self.parameterAsLayerList(parameters, self.INPUTS, context)
        if not layers:
            raise QgsProcessingException(tr("Choose at least one input raster (INPUTS)."))
        paths = []
        for layer in layers:
            if not isinstance(layer, QgsRasterLayer):
                raise QgsProcessingException(
                    tr("{0} is not a raster layer: INPUTS takes rasters only.").format(layer.name()))
            if layer.providerType() != "gdal":
                raise QgsProcessingException(tr(
                    "{0} is not a file-based raster (provider '{1}'). Save it as a GeoTIFF first "
                    "(right-click > Export > Save As...).").format(layer.name(), layer.providerType()))
            paths.append(layer.source())
        return paths, layers

    def raster_output(self, parameters, name: str, context, required: bool = True) -> str:
        """A destination path that must be a GeoTIFF; '' when an optional output is not wanted."""
        path = self.parameterAsOutputLayer(parameters, name, context)
        if not path:
            if required:
                raise QgsProcessingException(tr("Choose an output file for {0}.").format(name))
            return ""
        if os.path.splitext(path)[1].lower().lstrip(".") not in GEOTIFF_EXTENSIONS:
            raise QgsProcessingException(tr(
                "{0}: DiffCLIP writes GeoTIFF only; give the output a .tif extension instead of '{1}'.")
                .format(name, os.path.basename(path)))
        return path

    @staticmethod
    def extent_window(source, rectangle) -> Optional[Tuple[int, int, int, int]]:
        if rectangle is None or rectangle.isNull() or rectangle.isEmpty():
            return None
        return source.pixel_window(rectangle.xMinimum(), rectangle.yMinimum(),
                                   rectangle.xMaximum(), rectangle.yMaximum())

    def classification_source(self, parameters, context, stack, feedback):
        """The stack, or the part of it inside EXTENT (reprojected to the grid's CRS)."""
        if parameters.get(self.EXTENT) in (None, ""):
            return stack
        from ..gis.raster import SubsetSource

        crs = QgsCoordinateReferenceSystem.fromWkt(stack.crs_wkt) if stack.crs_wkt else QgsCoordinateReferenceSystem()
        rectangle = self.parameterAsExtent(parameters, self.EXTENT, context, crs)
        window = self.extent_window(stack, rectangle)
        if window is None:
            return stack
        row0, col0, rows, cols = window
        feedback.pushInfo(f"Classifying only inside the extent: rows {row0}-{row0 + rows - 1}, "
                          f"columns {col0}-{col0 + cols - 1} ({rows} x {cols} px).")
        return SubsetSource(stack, row0, col0, rows, cols)

    def check_paths(self, inputs: Dict[str, List[str]], outputs: Dict[str, List[str]]) -> None:
        """Before any work: no output is an input file (or a VRT's source) or another output."""
        from ..core.files import check_output_paths

        check_output_paths(inputs, outputs)

    @staticmethod
    def check_room(source, classes, out_path: str, confidence_path: str = "", model_path: str = "") -> None:
        """Before any work: the output folders take files and have room for the outputs (uncompressed sizes)."""
        from ..core.files import check_writable

        pixels = source.height * source.width
        class_bytes = 1 if max(c.id for c in classes) <= 255 else 2
        check_writable({"OUTPUT": (out_path, pixels * class_bytes), "OUTPUT_CONFIDENCE": (confidence_path, pixels * 4),
                        "OUTPUT_MODEL": (model_path, MODEL_BYTES)})

    # -- running ---------------------------------------------------------------------------------
    @staticmethod
    def require_torch():
        """Import torch or fail with the install instructions."""
        try:
            import torch  # noqa: F401
        except (ImportError, OSError) as e:
            raise QgsProcessingException(f"{TORCH_MISSING} ({e.__class__.__name__}: {e})") from None

    def resolve_device(self, parameters, context, feedback):
        from ..core.device import describe_device, resolve_device

        name = self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto"
        try:
            device = resolve_device(name)
        except (RuntimeError, ValueError) as e:
            raise QgsProcessingException(str(e)) from None
        feedback.pushInfo(f"Device: {describe_device(device)}.")
        return device

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Runs :meth:`run` and turns the known errors into ``QgsProcessingException`` messages."""
        self.require_torch()
        from ..core.progress import Cancelled as CoreCancelled

        try:
            return self.compute(parameters, context, feedback)
        except QgsProcessingException:
            raise
        except (Cancelled, CoreCancelled):
            raise QgsProcessingException(tr("Cancelled")) from None
        except (ValueError, RuntimeError, OSError, MemoryError) as e:
            feedback.pushDebugInfo(traceback.format_exc())
            raise QgsProcessingException(str(e) or e.__class__.__name__) from None

    def compute(self, parameters, context, feedback) -> dict:  # pragma: no cover (abstract)
        raise NotImplementedError

    def open_stack(self, paths: Sequence[str], adapter: FeedbackAdapter):
        from ..gis.raster import RasterStack

        stack = RasterStack(paths, log=adapter.gis_log)
        adapter.log("Inputs: " + "; ".join(
            f"{info.name} ({count} bands)" for info, count in zip(stack.infos, stack.band_counts))
            + f" on a {stack.height} x {stack.width} px grid.")
        return stack

    def classify_to_files(self, trained, source, device, out_path: str, confidence_path: str, smoothing: int,
                          adapter: FeedbackAdapter, outputs) -> None:
        """Predict tile by tile into ``out_path`` (and the confidence raster), optionally majority-smoothed.

        The files are temporary files of ``outputs`` (a ``core.files.PendingOutputs``) until it
        commits; smoothing goes through a temporary raster that is removed afterwards.
        """
        from ..core.infer import Predictor
        from ..gis.raster import write_classification

        predictor = Predictor(trained, device)
        callback = adapter.callback()

        def checked(blocks):
            yield from blocks
            adapter.check()  # a cancel during the last block still leaves no output

        def tiles():
            return checked(predictor.iter_tiles(source, callback=callback))

        geo = dict(height=source.height, width=source.width, geotransform=source.geotransform,
                   crs_wkt=source.crs_wkt, classes=trained.classes, log=adapter.gis_log)
        adapter.log(f"Classifying {source.height} x {source.width} px with {predictor.window} x "
                    f"{predictor.window} windows into {len(trained.classes)} classes.")
        if smoothing <= 0:
            write_classification(out_path, tiles(), confidence_path=confidence_path or None, outputs=outputs, **geo)
            adapter.progress("writing", 1.0)
            return
        from ..gis.smoothing import smoothed_tiles

        folder = tempfile.mkdtemp(prefix="diffclip-", dir=QgsProcessingUtils.tempFolder())
        try:
            raw = os.path.join(folder, "raw.tif")
            raw_conf = os.path.join(folder, "raw_confidence.tif") if confidence_path else None
            write_classification(raw, tiles(), confidence_path=raw_conf, **geo)
            adapter.begin("smoothing")
            adapter.log(f"Majority smoothing with radius {smoothing} px (nodata stays nodata).")
            smoothed = smoothed_tiles(raw, smoothing, raw_conf,
                                      progress=lambda f: adapter.progress("smoothing", f),
                                      check=adapter.check)
            write_classification(out_path, checked(smoothed), confidence_path=confidence_path or None,
                                 outputs=outputs, **geo)
            adapter.progress("writing", 1.0)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
