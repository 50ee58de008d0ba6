#!/usr/bin/env python3
"""Build models/diffclip_pretrain_classify_assess.model3, the example Graphical Modeler model.

    make plugin
    QGIS_PLUGINPATH=$PWD/build PYTHONPATH=$PWD/build QT_QPA_PLATFORM=offscreen \
        .venv/bin/python scripts/build_example_model.py [--out models/diffclip_pretrain_classify_assess.model3]

The model chains diffclip:pretrain -> diffclip:fewshotclassify (PRETRAINED = the encoder)
-> diffclip:accuracy (CLASSIFICATION = the classification). Its inputs: ``rasters``,
``samples``, ``class_field``, ``prompts`` (optional), ``reference``, ``reference_field``
(optional), ``preset``, ``window``, ``pretrain_epochs`` and ``epochs``; its outputs:
``classify:classification`` (GeoTIFF) and ``assess:report`` (HTML). Run it with

    qgis_process.bin run models/diffclip_pretrain_classify_assess.model3 \
        --rasters=hsi.tif --rasters=lidar.tif --samples=samples.gpkg --class_field=class_id \
        --reference=gt.tif --classify:classification=out.tif --assess:report=report.html

or open it in Processing > Graphical Modeler.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "models", "diffclip_pretrain_classify_assess.model3")


def build():
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterEnum,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterField,
        QgsProcessingParameterFile,
        QgsProcessingParameterMapLayer,
        QgsProcessingParameterMultipleLayers,
        QgsProcessingParameterNumber,
        QgsProcessingParameterString,
    )
    from qgis.PyQt.QtCore import QPointF

    from diffclip_qgis.core.config import CLASSIFY_WINDOW_CHOICES

    model = QgsProcessingModelAlgorithm("DiffCLIP pretrain, classify and assess", "DiffCLIP",
                                        "diffclip_examples")
    model.setHelpContent({
        "ALG_DESC": "Pretrains a DiffCLIP encoder on the input rasters, fine-tunes a few-shot classifier on the "
                    "samples (with the class prompts), classifies the rasters and assesses the classification "
                    "against the reference. Needs the DiffCLIP plugin (and PyTorch).",
        "rasters": "One raster per modality (e.g. hyperspectral, then LiDAR); the first defines the grid.",
        "samples": "Training points or polygons with a class field.",
        "class_field": "Class field of the samples (integer id >= 1 or class name).",
        "prompts": "Optional class list (JSON from the DiffCLIP dock, or CSV 'class,prompt').",
        "reference": "Reference labels: class raster, or points / polygons.",
        "reference_field": "Class field of a vector reference (empty: its field 'reference', as Validation Sample "
                           "writes it).",
        "preset": "cpu (small, fast) or paper (GPU).",
        "window": "Window size of the classifier (1 = the pixel alone); auto = from the scene's noise, or by "
                  "cross-validation on the samples.",
        "pretrain_epochs": "Pretraining epochs; -1 = the preset's.",
        "epochs": "Fine-tuning epochs; -1 = the preset's.",
        "ALG_CREATOR": "DiffCLIP for QGIS",
    })

    def add_input(param, x, y):
        item = QgsProcessingModelParameter(param.name())
        item.setPosition(QPointF(x, y))
        model.addModelParameter(param, item)

    add_input(QgsProcessingParameterMultipleLayers("rasters", "Input rasters (one per modality)",
                                                   QgsProcessing.TypeRaster), 120, 60)
    add_input(QgsProcessingParameterFeatureSource("samples", "Training samples",
                                                  [QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon]),
              340, 60)
    add_input(QgsProcessingParameterField("class_field", "Class field", parentLayerParameterName="samples"), 560, 60)
    add_input(QgsProcessingParameterFile("prompts", "Class names and prompts (JSON or CSV)", optional=True,
                                         fileFilter="Class lists (*.json *.csv)"), 780, 60)
    add_input(QgsProcessingParameterEnum("preset", "Preset", ["cpu", "paper"], defaultValue="cpu",
                                         usesStaticStrings=True), 120, 140)
    add_input(QgsProcessingParameterEnum("window", "Window size (pixels)",
                                         ["auto"] + [str(size) for size in CLASSIFY_WINDOW_CHOICES],
                                         defaultValue="auto", usesStaticStrings=True), 1000, 60)
    add_input(QgsProcessingParameterNumber("pretrain_epochs", "Pretraining epochs (-1 = preset's)",
                                           QgsProcessingParameterNumber.Integer, defaultValue=-1, minValue=-1),
              340, 140)
    add_input(QgsProcessingParameterNumber("epochs", "Fine-tuning epochs (-1 = preset's)",
                                           QgsProcessingParameterNumber.Integer, defaultValue=-1, minValue=-1),
              560, 140)
    add_input(QgsProcessingParameterMapLayer(
        "reference", "Reference (class raster, or points / polygons)",
        types=[QgsProcessing.TypeRaster, QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon]), 780, 140)
    # Typed, not a field list: QGIS crashes building a field list whose parent layer may be a raster.
    add_input(QgsProcessingParameterString("reference_field", "Reference class field (vector reference)",
                                           optional=True), 1000, 140)

    def param(name):
        return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]

    def static(value):
        return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]

    def child_output(child_id, output):
        return [QgsProcessingModelChildParameterSource.fromChildOutput(child_id, output)]

    def add_child(alg_id, child_id, description, sources, outputs, x, y, depends=()):
        child = QgsProcessingModelChildAlgorithm(alg_id)
        child.setChildId(child_id)
        child.setDescription(description)
        child.setPosition(QPointF(x, y))
        for name, value in sources.items():
            child.addParameterSources(name, value)
        model_outputs = {}
        for name, (child_output_name, description_text) in outputs.items():
            out = QgsProcessingModelOutput(name, description_text)
            out.setChildId(child_id)
            out.setChildOutputName(child_output_name)
            out.setPosition(QPointF(x + 200, y + 60))
            model_outputs[name] = out
        child.setModelOutputs(model_outputs)
        model.addChildAlgorithm(child)
        return child

    add_child("diffclip:pretrain", "pretrain", "Pretrain the encoder", {
        "INPUTS": param("rasters"), "PRESET": param("preset"), "WINDOW": static("auto"),
        "EPOCHS": param("pretrain_epochs"), "MASK_RATIO": static(0.7), "SAMPLE_COUNT": static(-1),
        "DEVICE": static("auto"), "SEED": static(0),
    }, {}, 120, 280)
    add_child("diffclip:fewshotclassify", "classify", "Few-shot classify", {
        "INPUTS": param("rasters"), "SAMPLES": param("samples"), "CLASS_FIELD": param("class_field"),
        "PROMPTS": param("prompts"), "PROMPT_TEMPLATE": static("a multimodal fusion patch of a {name}."),
        "PRETRAINED": child_output("pretrain", "OUTPUT_MODEL"), "PRESET": param("preset"), "WINDOW": param("window"),
        "PRETRAIN_EPOCHS": static(-1), "EPOCHS": param("epochs"), "CLASS_PROPORTIONS": static(0.5),
        "DEVICE": static("auto"), "SEED": static(0),
        "SMOOTHING": static(0),
    }, {"classification": ("OUTPUT", "Classification")}, 400, 380)
    add_child("diffclip:accuracy", "assess", "Accuracy assessment", {
        "CLASSIFICATION": child_output("classify", "OUTPUT"), "REFERENCE": param("reference"),
        "REFERENCE_FIELD": param("reference_field"),
    }, {"report": ("OUTPUT_HTML", "Accuracy report")}, 680, 480)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    build_dir = os.path.join(ROOT, "build")
    if build_dir not in sys.path:
        sys.path.insert(0, build_dir)
    from diffclip_qgis.processing.provider import DiffClipProvider

    QgsApplication.processingRegistry().addProvider(DiffClipProvider())
    model = build()
    errors = []
    for child_id in model.childAlgorithms():
        ok, issues = model.validateChildAlgorithm(child_id)
        errors += [f"{child_id}: {issue}" for issue in issues] if not ok else []
    if errors:
        raise SystemExit("The model does not validate:\n" + "\n".join(errors))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if not model.toFile(args.out):
        raise SystemExit(f"Could not write {args.out}")
    print(f"Wrote {args.out}: parameters {[p.name() for p in model.parameterDefinitions()]}")
    app.exitQgis()


if __name__ == "__main__":
    main()
