"""diffclip:fewshotclassify: train a few-shot classifier on labelled samples and classify the rasters."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .algorithm import (
    DEFAULT_PROMPT_TEMPLATE,
    WINDOWS,
    DiffClipAlgorithm,
    FeedbackAdapter,
    apply_style_on_load,
    fill_preset_values,
    tr,
)

HELP = """<p>Few-shot, language-driven classification of one or more co-registered rasters (for example a
hyperspectral image and LiDAR rasters) with DiffCLIP: an encoder (pretrained on unlabelled pixels by
masked diffusion with the paper preset, with PRETRAIN_EPOCHS above 0, or given as a pretrained model) is fine-tuned on a handful of labelled pixels
per class against one text prompt per class, and every pixel (or every pixel in the extent) is classified.
The output is a GeoTIFF of class ids (0 = unclassified / nodata) with a colour table, class names and a
.qml style (paletted renderer) next to it.</p>
<h3>Parameters</h3>
<dl>
<dt>Input rasters (INPUTS)</dt><dd>One raster per modality, e.g. the hyperspectral image then a LiDAR
DSM/intensity raster. The first raster defines the output grid (extent, pixel size, CRS); the others are
resampled onto it (bilinear) with a warning when they differ. Band order and count must be the same when
you apply the model later. Multi-file mosaics: build a virtual raster (VRT) first.</dd>
<dt>Training samples (SAMPLES)</dt><dd>Points (the pixel under each point) or polygons (every pixel whose
centre lies inside) in any CRS; they are reprojected to the grid's CRS. 'Selected features only' is
honoured. Samples outside the rasters are skipped with a warning; samples on nodata pixels are skipped.
About 5 to 20 pixels per class are typical.</dd>
<dt>Class field (CLASS_FIELD)</dt><dd>Field of the samples holding the class: integer ids of 1 or more
(kept as output values; 0 and negative values are refused because 0 means nodata) or class names
(numbered 1..K in alphabetical order). Every sample needs a value. At least two classes are needed.</dd>
<dt>Class names and prompts (PROMPTS, optional)</dt><dd>A class list: the JSON the DiffCLIP dock saves
({"classes": [{"id": 1, "name": ..., "colour": ..., "prompt": ...}]}) or a CSV of 'class name or id,
prompt' rows. Entries are matched to the sample classes by id, else by name; they give names, colours and
prompts. Classes it does not list get a prompt from the template.</dd>
<dt>Prompt template (PROMPT_TEMPLATE)</dt><dd>Prompt of classes without one; {name} is replaced by the
class name. Every class needs a distinct prompt (the text encoder learns them as labels).</dd>
<dt>Pretrained model (PRETRAINED, optional)</dt><dd>A .pt file written by 'DiffCLIP Pretrain Encoder'
(or a classifier .pt, whose encoder is reused) for the same kind of inputs. Empty: pretrain on the inputs
first.</dd>
<dt>Preset (PRESET)</dt><dd>cpu: a small network and short schedules, minutes on a laptop CPU. paper: the
paper's sizes and schedules, meant for a CUDA GPU.</dd>
<dt>Window size (WINDOW)</dt><dd>Size in pixels of the square neighbourhood the classifier sees around
each pixel. auto: chosen by cross-validation on the samples among the sizes the encoder supports
(the chosen size and the scores are written to the log).</dd>
<dt>Pretraining epochs (PRETRAIN_EPOCHS)</dt><dd>-1 or empty: the preset's (cpu %CPU_FEWSHOT_PRETRAIN_EPOCHS%:
no pretraining, which scored as well or better on every scene measured at CPU budgets and saves
time; paper %PAPER_FEWSHOT_PRETRAIN_EPOCHS%); 0: no pretraining (random encoder); try %CPU_PRETRAIN_EPOCHS%
or more to pretrain on the inputs with the cpu preset. Ignored when a pretrained model is given.</dd>
<dt>Fine-tuning epochs (EPOCHS)</dt><dd>-1 or empty: the preset's (cpu %CPU_EPOCHS%, but at most
%CPU_MAX_STEPS% optimiser steps, so many samples take fewer epochs; paper %PAPER_EPOCHS%). Another number
is used as given.</dd>
<dt>Follow the scene's class proportions (CLASS_PROPORTIONS)</dt><dd>Training is class-balanced, so
the classifier takes every class as equally common. After training, the share of each class in the scene
is estimated from the classifier's answers on about 4000 unlabelled pixels (expectation-maximisation) and
ambiguous pixels lean towards the common classes: 0 = not at all (best average accuracy over classes,
rare classes found most), 1 = fully (best overall accuracy), 0.5 (default) = halfway. The estimated
shares are written to the log and saved with the model, which applies them to other rasters too.</dd>
<dt>Device (DEVICE)</dt><dd>auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or cuda.</dd>
<dt>Random seed (SEED)</dt><dd>Same inputs and seed give the same model and map (on the same device).</dd>
<dt>Classify only inside this extent (EXTENT, optional)</dt><dd>Classify just this part of the grid
(any CRS; it is reprojected). Training samples still come from the whole input.</dd>
<dt>Majority smoothing radius (SMOOTHING)</dt><dd>Radius in pixels of a majority filter over the
classification (removes isolated pixels); 0 = off. Nodata stays nodata and is never smoothed across.</dd>
<dt>Classification (OUTPUT)</dt><dd>GeoTIFF of class ids, with its .qml style.</dd>
<dt>Confidence (OUTPUT_CONFIDENCE, optional)</dt><dd>GeoTIFF (float, 0..1, nodata -1) of the
probability of the chosen class (before smoothing).</dd>
<dt>Trained model (OUTPUT_MODEL, optional)</dt><dd>Save the classifier (.pt) to apply it to other rasters
with 'DiffCLIP Apply Model'.</dd>
</dl>
<p>The log shows the device, the samples per class, the window chosen with its cross-validation scores,
the losses and the time per phase. Requires PyTorch in QGIS's Python.</p>"""


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
        self._output = ""

    def shortHelpString(self):  # noqa: N802
        return fill_preset_values(tr(HELP))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_inputs()
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.SAMPLES, tr("Training samples (points or polygons)"),
            [QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(
            self.CLASS_FIELD, tr("Class field (integer id >= 1, or class name)"),
            parentLayerParameterName=self.SAMPLES, type=QgsProcessingParameterField.Any))
        self.addParameter(QgsProcessingParameterFile(
            self.PROMPTS, tr("Class names and prompts (JSON class list or CSV)"),
            behavior=QgsProcessingParameterFile.File, optional=True,
            fileFilter=tr("Class lists (*.json *.csv);;All files (*.*)")))
        self.addParameter(QgsProcessingParameterString(
            self.PROMPT_TEMPLATE, tr("Prompt template ({name} = class name)"), defaultValue=DEFAULT_PROMPT_TEMPLATE))
        self.addParameter(QgsProcessingParameterFile(
            self.PRETRAINED, tr("Pretrained model (.pt; empty = pretrain on the inputs first)"),
            behavior=QgsProcessingParameterFile.File, optional=True,
            fileFilter=tr("DiffCLIP models (*.pt);;All files (*.*)")))
        self.add_preset()
        self.add_enum(self.WINDOW, "Window size (pixels)", WINDOWS, "auto")
        self.add_int(self.PRETRAIN_EPOCHS, "Pretraining epochs (-1 = preset's; 0 = no pretraining)", -1,
                     minimum=-1, optional=True, advanced=True)
        self.add_int(self.EPOCHS, "Fine-tuning epochs (-1 = preset's)", -1, minimum=-1, optional=True,
                     advanced=True)
        param = QgsProcessingParameterNumber(
            self.CLASS_PROPORTIONS, tr("Follow the scene's class proportions (0 = classes equally likely, "
                                       "1 = fully; higher overall accuracy, rare classes found less)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.5, minValue=0.0, maxValue=1.0)
        self.addParameter(param)
        self.add_device()
        self.add_seed()
        self.add_extent()
        self.add_smoothing()
        self.add_class_outputs()
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, tr("Trained model"), tr("DiffCLIP models (*.pt)"), optional=True,
            createByDefault=False))

    def compute(self, parameters, context, feedback):
        from ..workflow.classify import fewshot_classify, will_pretrain
        from ..workflow.requests import ClassifyRequest

        paths, layers = self.raster_paths(parameters, context)
        request = ClassifyRequest(
            inputs=paths,
            samples=self.samples(parameters, context, feedback, self.SAMPLES, self.CLASS_FIELD),
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
            extent=self.extent(parameters, context, layers),
            smoothing=self.parameterAsInt(parameters, self.SMOOTHING, context))
        ranges = ({"reading": (0, 2), "pretraining": (2, 45), "choosing window": (45, 60),
                   "fine-tuning": (60, 80), "classifying": (80, 97)} if will_pretrain(request) else
                  {"reading": (0, 2), "pretraining": (2, 5), "choosing window": (5, 25),
                   "fine-tuning": (25, 60), "classifying": (60, 97)})
        ranges.update({"smoothing": (97, 99.5), "writing": (99.5, 100)})
        adapter = FeedbackAdapter(feedback, ranges)
        result = fewshot_classify(request, adapter.callback())
        adapter.log_times()
        feedback.setProgress(100)
        self._output = result.output
        return {self.OUTPUT: result.output, self.OUTPUT_CONFIDENCE: result.output_confidence or None,
                self.OUTPUT_MODEL: result.output_model or None}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        apply_style_on_load(context, self._output)
        return {}
