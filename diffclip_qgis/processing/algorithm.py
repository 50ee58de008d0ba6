"""What the DiffCLIP algorithms share: the base class, parameter helpers, the feedback ->
core ``Callback`` adapter, samples read from a feature source, and classifying into files.

Only QGIS and the standard library are imported here at module level: torch, the compute
core and the GDAL layer load inside ``processAlgorithm`` (see :meth:`DiffClipAlgorithm.require_torch`),
so the provider registers and the Toolbox shows the algorithms even without torch.
"""
from __future__ import annotations

import os
import time
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

from qgis.core import (
    NULL,
    QgsFeatureRequest,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingUtils,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QVariant
from qgis.PyQt.QtGui import QIcon

from ..qgis_compat import enum_value
from ..qgis_layers import OUTPUT_PROPERTY, layer_file
from ..workflow.ranges import RANGES

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icon.svg")
HELP_URL = "https://github.com/diffclip-qgis/diffclip_qgis#processing-algorithms"

PRESETS = ["cpu", "paper"]
# = core.config.window_options(WINDOW_CHOICES) and (CLASSIFY_WINDOW_CHOICES); the core is not loaded here
WINDOWS = ["auto", "3", "5", "7", "9", "11"]                  # pretraining
CLASSIFY_WINDOWS = ["auto", "1", "3", "5", "7", "9", "11"]    # few-shot classification: also the pixel alone
DEVICES = ["auto", "cpu", "cuda"]
DEFAULT_PROMPT_TEMPLATE = "a multimodal fusion patch of a {name}."  # = core.classes.DEFAULT_PROMPT_TEMPLATE

# Processing enums that moved into Qgis in QGIS 3.36 (the old spellings are gone in QGIS 4).
RASTER = enum_value("Qgis.ProcessingSourceType.Raster", "QgsProcessing.SourceType.TypeRaster")
VECTOR_POINT = enum_value("Qgis.ProcessingSourceType.VectorPoint", "QgsProcessing.SourceType.TypeVectorPoint")
VECTOR_POLYGON = enum_value("Qgis.ProcessingSourceType.VectorPolygon", "QgsProcessing.SourceType.TypeVectorPolygon")
VECTOR_ANY = enum_value("Qgis.ProcessingSourceType.VectorAnyGeometry", "QgsProcessing.SourceType.TypeVectorAnyGeometry")
INTEGER = enum_value("Qgis.ProcessingNumberParameterType.Integer", "QgsProcessingParameterNumber.Type.Integer")
DOUBLE = enum_value("Qgis.ProcessingNumberParameterType.Double", "QgsProcessingParameterNumber.Type.Double")
FILE = enum_value("Qgis.ProcessingFileParameterBehavior.File", "QgsProcessingParameterFile.Behavior.File")
ANY_FIELD = enum_value("Qgis.ProcessingFieldParameterDataType.Any", "QgsProcessingParameterField.DataType.Any")
ADVANCED = enum_value("Qgis.ProcessingParameterFlag.Advanced", "QgsProcessingParameterDefinition.Flag.FlagAdvanced")

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
    "choosing window": "Cross-validating on the samples",
    "fine-tuning": "Fine-tuning",
    "classifying": "Classifying",
    "smoothing": "Smoothing",
    "writing": "Writing",
}


def tr(text: str) -> str:
    return QCoreApplication.translate("DiffClipProcessing", text)


class FeedbackAdapter:
    """Turns the core's ``Callback`` calls into ``QgsProcessingFeedback`` calls.

    ``ranges`` maps each phase to its (start, end) share of the progress bar in percent;
    fractions within a phase are spread over that range. Cancellation is the feedback's
    ``isCanceled()``; the workflow checks it at every batch and tile. Time spent per phase is
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

    def _switch(self, phase: str, start: float) -> None:
        self._phase, self._phase_start = phase, start

    def callback(self):
        """The core ``Callback`` that reports here (imports the core lazily)."""
        from ..core.progress import Callback

        return Callback(progress=self.progress, cancelled=self.cancelled, log=self.log,
                        warn=self.feedback.pushWarning)

    def log_times(self) -> None:
        if self.times:
            self.feedback.pushInfo("Time per phase: " + ", ".join(
                f"{PHASE_LABELS.get(p, p).lower()} {s:.1f} s" for p, s in self.times.items()) + ".")


class Cancelled(Exception):
    """Cancellation noticed outside the core (the core raises its own ``core.progress.Cancelled``)."""


class LoadStyle(QgsProcessingLayerPostProcessorInterface):
    """Tags an output QGIS loads as DiffCLIP's (the dock does not offer it as an input raster) and applies the
    classification's .qml sidecar (paletted renderer, class names) where there is one."""

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
        layer.setCustomProperty(OUTPUT_PROPERTY, True)
        if isinstance(layer, QgsRasterLayer) and self.qml_path and os.path.isfile(self.qml_path):
            message, ok = layer.loadNamedStyle(self.qml_path)
            if not ok and feedback is not None:
                feedback.pushWarning(f"Could not apply the style {self.qml_path}: {message}")
            layer.triggerRepaint()


def style_outputs_on_load(context, classification: str, confidence: str = "") -> None:
    """When QGIS will load the map (and confidence) after the run, tag them as outputs and style the map with its
    .qml sidecar."""
    from ..gis.raster import style_path

    for path, qml in ((classification, style_path(classification)), (confidence, "")):
        if path and context.willLoadLayerOnCompletion(path):
            context.layerToLoadOnCompletionDetails(path).setPostProcessor(LoadStyle.create(qml))


def layer_files(*layers) -> List[str]:
    """The files map layers read (a VRT's source files too); none for layers that are not files."""
    from ..gis.raster import dataset_files

    files = []
    for layer in layers:
        path = layer_file(layer) if layer is not None else ""
        files += dataset_files(path) if path and os.path.exists(path) else []
    return files


def feature_wkb_and_values(source, field_name: str, context, feedback) -> Tuple[List[Optional[bytes]], List[object]]:
    """Geometries (ISO WKB, in the source's CRS) and class values of a feature source (all ``None`` without
    ``field_name``).

    ``source`` comes from ``parameterAsSource``, so 'selected features only' and the context's
    invalid-geometry handling apply. NULL values become ``None``; features without geometry give ``None``.
    """
    fields = source.fields()
    index = fields.lookupField(field_name) if field_name else -1
    if field_name and index < 0:
        names = ", ".join(f.name() for f in fields) or "(no fields)"
        raise QgsProcessingException(
            tr("Choose the class field of the samples: '{0}' is not a field of the sample layer (fields: {1}).")
            .format(field_name, names))
    request = QgsFeatureRequest().setSubsetOfAttributes([index] if index >= 0 else [])
    wkbs: List[Optional[bytes]] = []
    values: List[object] = []
    for feature in source.getFeatures(request):
        if feedback is not None and feedback.isCanceled():
            raise Cancelled()
        geometry = feature.geometry()
        wkbs.append(None if geometry is None or geometry.isNull() else bytes(geometry.asWkb()))
        values.append(_plain(feature.attribute(index)) if index >= 0 else None)
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
    needs_torch = True   # the assessment algorithms run on numpy and GDAL alone

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
    def add_inputs(self, description: str = "Input rasters (one per modality)"):
        self.addParameter(QgsProcessingParameterMultipleLayers(self.INPUTS, tr(description), RASTER))

    def add_enum(self, name: str, description: str, options: Sequence[str], default: str, advanced: bool = False):
        param = QgsProcessingParameterEnum(name, tr(description), list(options), allowMultiple=False,
                                           defaultValue=default, optional=False, usesStaticStrings=True)
        self._add(param, advanced)

    def add_number(self, name: str, description: str, default, optional: bool = False, advanced: bool = False):
        """A number in the range ``RANGES`` gives ``name``, whole or decimal as its bounds are."""
        minimum, maximum = RANGES[name]
        param = QgsProcessingParameterNumber(name, tr(description), DOUBLE if isinstance(minimum, float) else INTEGER,
                                             defaultValue=default, optional=optional)
        if minimum is not None:
            param.setMinimum(minimum)
        if maximum is not None:
            param.setMaximum(maximum)
        self._add(param, advanced)

    def add_preset(self):
        self.add_enum(self.PRESET, "Preset (paper: for a GPU)", PRESETS, "cpu")

    def add_device(self):
        self.add_enum(self.DEVICE, "Device", DEVICES, "auto", advanced=True)

    def add_seed(self):
        self.add_number(self.SEED, "Random seed", 0, advanced=True)

    def add_extent(self, description: str = "Classify only inside this extent"):
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, tr(description), optional=True))

    def add_smoothing(self):
        self.add_number(self.SMOOTHING, "Majority smoothing radius (pixels; 0 = off)", 0)

    def add_class_outputs(self):
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, tr("Classification")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFIDENCE, tr("Confidence (0 to 1)"), optional=True,
            createByDefault=False))

    def _add(self, param, advanced: bool):
        if advanced:
            param.setFlags(param.flags() | ADVANCED)
        self.addParameter(param)

    # -- parameter values ------------------------------------------------------------------------
    def optional_int(self, parameters, name: str, context) -> Optional[int]:
        """The integer value, or None when empty or negative (= use the preset's default)."""
        if name in parameters and parameters[name] in (None, ""):
            return None
        value = self.parameterAsInt(parameters, name, context)
        return None if value < 0 else value

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
        """A destination path (its kind is checked by the workflow); '' when an optional output is not wanted."""
        path = self.parameterAsOutputLayer(parameters, name, context)
        if not path:
            if required:
                raise QgsProcessingException(tr("Choose an output file for {0}.").format(name))
            return ""
        return path

    def point_output(self, parameters, context, layer_name: str, title: str, kept: bool = False) -> str:
        """The GeoPackage a run writes for OUTPUT, added to the project when the run ends (Processing loads only
        layer outputs by itself). ``kept``: the user fills it in, so not in the temporary folder, which QGIS
        deletes when it closes."""
        path = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        temporary = os.path.realpath(QgsProcessingUtils.tempFolder())
        if kept and path and os.path.commonpath([os.path.realpath(path), temporary]) == temporary:
            raise QgsProcessingException(tr(
                "OUTPUT: choose a file to keep for these points ('...' > Save to File): you fill them in, and QGIS "
                "deletes its temporary folder ({0}) when it closes.").format(QgsProcessingUtils.tempFolder()))
        if path and context.project() is not None:
            context.addLayerToLoadOnCompletion(f"{path}|layername={layer_name}", QgsProcessingContext.LayerDetails(
                title, context.project(), self.OUTPUT))
        return path

    def extent(self, parameters, context, layers, feedback=None):
        """EXTENT in the CRS of the first input raster, or None when not set."""
        if parameters.get(self.EXTENT) in (None, ""):
            return None
        given = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
        if given.isValid() and not layers[0].crs().isValid() and feedback is not None:
            feedback.pushWarning(tr("EXTENT is given in {0}, but {1} has no CRS: its values are taken as the raster's "
                                    "own coordinates.").format(given.authid() or given.description(),
                                                               layers[0].name()))
        rectangle = self.parameterAsExtent(parameters, self.EXTENT, context, layers[0].crs())
        if rectangle is None or rectangle.isNull() or rectangle.isEmpty():
            return None
        return rectangle.xMinimum(), rectangle.yMinimum(), rectangle.xMaximum(), rectangle.yMaximum()

    def samples(self, parameters, context, feedback, name: str, field_name: str = "", optional: bool = False):
        """The features of a vector parameter as workflow ``Samples`` (in the layer's CRS), with the values of the
        field that the parameter ``field_name`` names, or geometries alone without it; None for an ``optional``
        layer not given."""
        from ..workflow.requests import Samples

        source = self.parameterAsSource(parameters, name, context)
        if source is None and optional:
            return None
        if source is None:
            raise QgsProcessingException(tr("Choose a layer of points or polygons for {0}.").format(name))
        field = self.parameterAsString(parameters, field_name, context) if field_name else ""
        if field_name and not field:
            raise QgsProcessingException(tr("Choose the class field ({0}) of the {1} layer.").format(field_name, name))
        wkbs, values = feature_wkb_and_values(source, field, context, feedback)
        crs = source.sourceCrs()
        return Samples(wkbs, values, crs.toWkt() if crs.isValid() else "",
                       layer_files(self.parameterAsVectorLayer(parameters, name, context)))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        """QGIS's own check says only "Incorrect parameter value for INPUTS": name the raster file that is missing."""
        values = parameters.get(self.INPUTS) if self.parameterDefinition(self.INPUTS) is not None else None
        for value in values if isinstance(values, (list, tuple)) else [values] if values else []:
            path = value.split("|")[0] if isinstance(value, str) else ""
            if path and os.path.splitext(path)[1] and not os.path.exists(path) \
                    and (context.project() is None or context.project().mapLayer(value) is None):
                return False, tr("INPUTS: {0} does not exist. Check the path of the input raster.").format(path)
        open_output = self.output_in_project(parameters, context)
        if open_output:
            return False, open_output
        return super().checkParameterValues(parameters, context)

    def output_in_project(self, parameters, context) -> str:
        """Why an output may not be written: a layer of the project reads that file, and when it closes, GDAL
        would write the old raster's statistics and class names over the new one's (.aux.xml), or edits saved
        in it would go to the replaced GeoPackage and be lost; "" if none."""
        from ..core.files import same_file

        project = context.project()
        if project is None:
            return ""
        for definition in self.destinationParameterDefinitions():
            if isinstance(definition, QgsProcessingParameterFileDestination):
                path = self.parameterAsFileOutput(parameters, definition.name(), context)
            else:
                path = self.parameterAsOutputLayer(parameters, definition.name(), context)
            if not path or not os.path.exists(path):
                continue
            for layer in project.mapLayers().values():
                read = layer_file(layer)
                if read and same_file(path, read):
                    return tr("{0}: {1} is open in the project as the layer '{2}'. Remove that layer from the project "
                              "first, or choose another file name.").format(definition.name(), path, layer.name())
        return ""

    # -- running ---------------------------------------------------------------------------------
    @staticmethod
    def require_torch():
        """Import torch or fail with the install instructions."""
        try:
            import torch  # noqa: F401
        except (ImportError, OSError) as e:
            raise QgsProcessingException(f"{TORCH_MISSING} ({e.__class__.__name__}: {e})") from None

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Runs :meth:`compute` and turns the known errors into ``QgsProcessingException`` messages."""
        if self.needs_torch:
            self.require_torch()
        from ..core.progress import Cancelled as CoreCancelled

        try:
            return self.compute(parameters, context, feedback)
        except QgsProcessingException:
            raise
        except (Cancelled, CoreCancelled):
            raise QgsProcessingException(tr("Cancelled")) from None
        except (ValueError, RuntimeError, OSError, MemoryError) as e:
            if not _raised_here(e):   # a message of ours needs no traceback; one from a library may
                feedback.pushDebugInfo(traceback.format_exc())
            raise QgsProcessingException(str(e) or e.__class__.__name__) from None

    def compute(self, parameters, context, feedback) -> dict:  # pragma: no cover (abstract)
        raise NotImplementedError


def _raised_here(error: BaseException) -> bool:
    """Whether the plugin's own code raised ``error`` (a message written for the user), not a library it called."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(PLUGIN_DIR + os.sep)
