"""diffclip:fewshotclassify: train a few-shot classifier on labelled samples and classify the rasters."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterString,
)

from ..workflow.help import FEWSHOT_HELP, html_help
from .algorithm import (
    ANY_FIELD,
    CLASSIFY_WINDOWS,
    DEFAULT_PROMPT_TEMPLATE,
    FILE,
    VECTOR_POINT,
    VECTOR_POLYGON,
    DiffClipAlgorithm,
    FeedbackAdapter,
    style_outputs_on_load,
    tr,
)

#: The class field of the dock's sample layer (``gui.sample_layer.CLASS_ID``; importing it would load core).
DOCK_CLASS_FIELD = "class_id"


def primary_key_problem(layer, field: str) -> str:
    """Why ``field`` cannot be the class field of ``layer`` ('' if it can): a feature id makes every feature a class."""
    keys = layer.primaryKeyAttributes() if layer is not None else []
    if layer is None or layer.fields().lookupField(field) not in keys:
        return ""
    others = [f.name() for i, f in enumerate(layer.fields()) if i not in keys]
    return tr("The class field '{0}' is the sample layer's feature id (a different value for every feature), so every "
              "sample would be a class of its own. Choose the field that holds the class ids or names (fields: {1})."
              ).format(field, ", ".join(others) or tr("none"))


def one_feature_classes_warning(field: str, values) -> str:
    """A warning when every one of 10 or more features has its own class value ('' otherwise; fewer: one-shot)."""
    labelled = [v for v in values if v is not None]
    if len(labelled) < 10 or len(set(labelled)) < len(labelled):
        return ""
    return tr("Every feature has its own value in the class field '{0}' ({1} classes of one feature each). Is it "
              "really the class field?").format(field, len(labelled))


class FewShotClassifyAlgorithm(DiffClipAlgorithm):
    SAMPLES = "SAMPLES"
    CLASS_FIELD = "CLASS_FIELD"
    PROMPTS = "PROMPTS"
    PROMPT_TEMPLATE = "PROMPT_TEMPLATE"
    PRETRAINED = "PRETRAINED"
    PRETRAIN_EPOCHS = "PRETRAIN_EPOCHS"
    EPOCHS = "EPOCHS"
    CLASS_PROPORTIONS = "CLASS_PROPORTIONS"

    _name = "fewshotclassify"
    _display = "DiffCLIP Few-shot Classify"

    def __init__(self):
        super().__init__()
        self._outputs = ("", "")

    def shortHelpString(self):  # noqa: N802
        return html_help(tr(FEWSHOT_HELP))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_inputs()
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.SAMPLES, tr("Training samples (points or polygons)"),
            [VECTOR_POINT, VECTOR_POLYGON]))
        self.addParameter(QgsProcessingParameterField(
            self.CLASS_FIELD, tr("Class field (integer id >= 1, or class name)"), defaultValue=DOCK_CLASS_FIELD,
            parentLayerParameterName=self.SAMPLES, type=ANY_FIELD))
        self.addParameter(QgsProcessingParameterFile(
            self.PROMPTS, tr("Class names and prompts"),
            behavior=FILE, optional=True,
            fileFilter=tr("Class lists (*.json *.csv);;All files (*.*)")))
        self.addParameter(QgsProcessingParameterString(
            self.PROMPT_TEMPLATE, tr("Prompt template ({name} = class name)"), defaultValue=DEFAULT_PROMPT_TEMPLATE))
        self.addParameter(QgsProcessingParameterFile(
            self.PRETRAINED, tr("Pretrained model (.pt)"),
            behavior=FILE, optional=True,
            fileFilter=tr("DiffCLIP models (*.pt);;All files (*.*)")))
        self.add_preset()
        self.add_enum(self.WINDOW, "Window size (pixels)", CLASSIFY_WINDOWS, "auto")
        self.add_number(self.PRETRAIN_EPOCHS, "Pretraining epochs (-1 = preset's)", -1,
                        optional=True, advanced=True)
        self.add_number(self.EPOCHS, "Fine-tuning epochs (-1 = preset's)", -1, optional=True, advanced=True)
        self.add_number(self.CLASS_PROPORTIONS, "Follow the scene's class proportions (0 to 1)", 0.5)
        self.add_device()
        self.add_seed()
        self.add_extent()
        self.add_smoothing()
        self.add_class_outputs()
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, tr("Trained model (.pt)"), tr("DiffCLIP models (*.pt)"),
            optional=True))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if ok:
            message = primary_key_problem(self.parameterAsVectorLayer(parameters, self.SAMPLES, context),
                                          self.parameterAsString(parameters, self.CLASS_FIELD, context))
        return ok and not message, message

    def compute(self, parameters, context, feedback):
        from ..workflow.classify import fewshot_classify, run_phases
        from ..workflow.requests import ClassifyRequest

        paths, layers = self.raster_paths(parameters, context)
        samples = self.samples(parameters, context, feedback, self.SAMPLES, self.CLASS_FIELD)
        warning = one_feature_classes_warning(self.parameterAsString(parameters, self.CLASS_FIELD, context),
                                              samples.values)
        if warning:
            feedback.pushWarning(warning)
        request = ClassifyRequest(
            inputs=paths,
            samples=samples,
            output=self.raster_output(parameters, self.OUTPUT, context),
            output_confidence=self.raster_output(parameters, self.OUTPUT_CONFIDENCE, context, required=False),
            output_model=self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context),
            prompts=self.parameterAsFile(parameters, self.PROMPTS, context),
            prompt_template=self.parameterAsString(parameters, self.PROMPT_TEMPLATE, context) or DEFAULT_PROMPT_TEMPLATE,
            pretrained=self.parameterAsFile(parameters, self.PRETRAINED, context),
            preset=self.parameterAsEnumString(parameters, self.PRESET, context) or "cpu",
            window=self.parameterAsEnumString(parameters, self.WINDOW, context) or "auto",
            pretrain_epochs=self.optional_int(parameters, self.PRETRAIN_EPOCHS, context),
            epochs=self.optional_int(parameters, self.EPOCHS, context),
            class_proportions=self.parameterAsDouble(parameters, self.CLASS_PROPORTIONS, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
            seed=self.parameterAsInt(parameters, self.SEED, context),
            extent=self.extent(parameters, context, layers, feedback),
            smoothing=self.parameterAsInt(parameters, self.SMOOTHING, context))
        ranges = {"reading": (0, 2), **run_phases(request).ranges(2, 97)}
        ranges.update({"smoothing": (97, 99.5), "writing": (99.5, 100)})
        adapter = FeedbackAdapter(feedback, ranges)
        result = fewshot_classify(request, adapter.callback())
        adapter.log_times()
        feedback.setProgress(100)
        self._outputs = (result.output, result.output_confidence)
        return {self.OUTPUT: result.output, self.OUTPUT_CONFIDENCE: result.output_confidence or None,
                self.OUTPUT_MODEL: result.output_model or None}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        style_outputs_on_load(context, *self._outputs)
        return {}
