"""diffclip:fewshotclassify: train a few-shot classifier on labelled samples and classify the rasters."""
from __future__ import annotations

import os

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingException,
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
    classification_files,
    fill_preset_values,
    feature_wkb_and_values,
    layer_files,
    raster_files,
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
        from ..core.checkpoint import load_model, save_model
        from ..core.classes import ClassInfo, load_class_list, match_prompts
        from ..core.config import fewshot_pretrain_epochs, get_preset, set_fewshot_pretrain_epochs, set_finetune_epochs
        from ..core.files import PendingOutputs
        from ..core.pipeline import fewshot_classifier
        from ..gis.raster import check_class_ids

        out_path = self.raster_output(parameters, self.OUTPUT, context)
        confidence_path = self.raster_output(parameters, self.OUTPUT_CONFIDENCE, context, required=False)
        model_path = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        pretrained_path = self.parameterAsFile(parameters, self.PRETRAINED, context)
        prompts_path = self.parameterAsFile(parameters, self.PROMPTS, context)
        template = self.parameterAsString(parameters, self.PROMPT_TEMPLATE, context) or DEFAULT_PROMPT_TEMPLATE
        smoothing = self.parameterAsInt(parameters, self.SMOOTHING, context)

        preset = get_preset(self.parameterAsEnumString(parameters, self.PRESET, context) or "cpu")
        window = self.parameterAsEnumString(parameters, self.WINDOW, context) or "auto"
        preset.window = "auto" if window == "auto" else int(window)
        seed = self.parameterAsInt(parameters, self.SEED, context)
        preset.pretrain.seed = preset.finetune.seed = seed
        pretrain_epochs = self.optional_int(parameters, self.PRETRAIN_EPOCHS, context)
        set_fewshot_pretrain_epochs(preset, fewshot_pretrain_epochs(preset) if pretrain_epochs is None else pretrain_epochs)
        set_finetune_epochs(preset, self.positive_or_preset(parameters, self.EPOCHS, context, preset.finetune.epochs))
        preset.finetune.prior_strength = self.parameterAsDouble(parameters, self.CLASS_PROPORTIONS, context)
        pretraining = not pretrained_path and preset.pretrain.epochs > 0

        ranges = ({"reading": (0, 2), "pretraining": (2, 45), "choosing window": (45, 60),
                   "fine-tuning": (60, 80), "classifying": (80, 97)} if pretraining else
                  {"reading": (0, 2), "pretraining": (2, 5), "choosing window": (5, 25),
                   "fine-tuning": (25, 60), "classifying": (60, 97)})
        ranges.update({"smoothing": (97, 99.5), "writing": (99.5, 100)})
        adapter = FeedbackAdapter(feedback, ranges)
        adapter.begin("reading")
        device = self.resolve_device(parameters, context, feedback)

        paths, layers = self.raster_paths(parameters, context)
        self.check_paths({self.INPUTS: layer_files(*layers),
                          self.SAMPLES: layer_files(self.parameterAsVectorLayer(parameters, self.SAMPLES, context)),
                          self.PROMPTS: [prompts_path], self.PRETRAINED: [pretrained_path]},
                         {self.OUTPUT: classification_files(out_path),
                          self.OUTPUT_CONFIDENCE: raster_files(confidence_path), self.OUTPUT_MODEL: [model_path]})
        stack = self.open_stack(paths, adapter)
        try:
            samples = self._samples(parameters, context, feedback, stack, adapter)
            check_class_ids(c.id for c in samples.classes)
            entries = None
            if prompts_path:
                entries = load_class_list(prompts_path)
                self._check_entries(entries, samples.classes, prompts_path, feedback)
            # Integer class values only give placeholder names: let the class list name them.
            found = [ClassInfo(c.id, "" if c.name == f"class {c.id}" else c.name) for c in samples.classes]
            classes = match_prompts(found, entries, template)
            if "{name}" not in template and len({c.prompt for c in classes}) < len(classes):
                raise QgsProcessingException(tr(
                    "Several classes get the same prompt '{0}' from PROMPT_TEMPLATE, which has no {{name}}: every "
                    "class needs its own prompt. Use {{name}} in PROMPT_TEMPLATE or give prompts in PROMPTS.")
                    .format(template))
            feedback.pushInfo("Classes: " + "; ".join(f"{c.id} {c.name} ({c.prompt!r})" for c in classes) + ".")
            source = self.classification_source(parameters, context, stack, feedback)
            self.check_room(source, classes, out_path, confidence_path, model_path)

            pretrained = None
            if pretrained_path:
                pretrained = load_model(pretrained_path)
                feedback.pushInfo(f"Using the encoder of {pretrained_path} (pretrained with "
                                  f"{pretrained.pretrain_window} x {pretrained.pretrain_window} windows); "
                                  "no pretraining on the inputs.")
            elif preset.pretrain.epochs == 0:
                feedback.pushInfo("Pretraining epochs 0: fine-tuning a randomly initialised encoder.")
            feedback.pushInfo(f"Preset {preset.name}: window {preset.window}, "
                              + (f"{preset.pretrain.epochs} pretraining epochs, " if not pretrained_path else "")
                              + f"{preset.finetune.epochs} fine-tuning epochs, class proportions "
                              f"{preset.finetune.prior_strength:g}, seed {seed}.")
            adapter.progress("reading", 1.0)
            trained = fewshot_classifier(stack, samples.rows, samples.cols, samples.class_ids, classes, preset,
                                         device, infos=stack.infos, pretrained=pretrained,
                                         callback=adapter.callback())
            with PendingOutputs() as outputs:  # every output appears together, or none does
                self.classify_to_files(trained, source, device, out_path, confidence_path, smoothing, adapter,
                                       outputs)
                if model_path:
                    save_model(trained, model_path, outputs)
            if model_path:
                feedback.pushInfo(f"Model saved to {model_path}.")
        finally:
            stack.close()
        adapter.log_times()
        feedback.setProgress(100)
        self._output = out_path
        return {self.OUTPUT: out_path, self.OUTPUT_CONFIDENCE: confidence_path or None,
                self.OUTPUT_MODEL: model_path or None}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        apply_style_on_load(context, self._output)
        return {}

    def _samples(self, parameters, context, feedback, stack, adapter):
        from ..gis.samples import samples_from_geometries

        source = self.parameterAsSource(parameters, self.SAMPLES, context)
        if source is None:
            raise QgsProcessingException(tr("Choose a sample layer (SAMPLES) with points or polygons."))
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        if not field:
            raise QgsProcessingException(tr("Choose the class field (CLASS_FIELD) of the sample layer."))
        grid_crs = QgsCoordinateReferenceSystem.fromWkt(stack.crs_wkt) if stack.crs_wkt else None
        if (grid_crs is None) != (not source.sourceCrs().isValid()):
            feedback.pushWarning("The samples or the rasters have no CRS; assuming both use the same coordinates.")
        wkbs, values = feature_wkb_and_values(source, field, grid_crs, context, feedback)
        samples = samples_from_geometries(wkbs, values, stack.geotransform, stack.height, stack.width,
                                          log=adapter.gis_log)
        counts = {c.id: int((samples.class_ids == c.id).sum()) for c in samples.classes}
        feedback.pushInfo(f"{len(wkbs)} sample features -> {len(samples.rows)} labelled pixels: "
                          + ", ".join(f"{c.name} {counts[c.id]}" for c in samples.classes) + ".")
        return samples

    @staticmethod
    def _check_entries(entries, classes, path, feedback):
        ids = {c.id for c in classes}
        names = {c.name.lower() for c in classes}
        unused = [e.name or str(e.id) for e in entries
                  if not (e.id and e.id in ids) and not (e.name and e.name.lower() in names)]
        if unused:
            feedback.pushWarning(f"{os.path.basename(path)}: no samples of {', '.join(unused)}; "
                                 "these classes are left out.")
