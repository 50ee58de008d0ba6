"""The DiffCLIP provider: ids, parameters, static-string enums, help, and loading without torch."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

ALGORITHMS = {
    "diffclip:fewshotclassify": (
        "DiffCLIP Few-shot Classify",
        ["INPUTS", "SAMPLES", "CLASS_FIELD", "PROMPTS", "PROMPT_TEMPLATE", "PRETRAINED", "PRESET", "WINDOW",
         "PRETRAIN_EPOCHS", "EPOCHS", "CLASS_PROPORTIONS", "DEVICE", "SEED", "EXTENT", "SMOOTHING", "OUTPUT",
         "OUTPUT_CONFIDENCE", "OUTPUT_MODEL"]),
    "diffclip:pretrain": (
        "DiffCLIP Pretrain Encoder",
        ["INPUTS", "PRESET", "WINDOW", "EPOCHS", "MASK_RATIO", "SAMPLE_COUNT", "DEVICE", "SEED", "OUTPUT_MODEL"]),
    "diffclip:applymodel": (
        "DiffCLIP Apply Model",
        ["INPUTS", "MODEL", "DEVICE", "EXTENT", "SMOOTHING", "OUTPUT", "OUTPUT_CONFIDENCE"]),
    "diffclip:accuracy": (
        "DiffCLIP Accuracy Assessment",
        ["CLASSIFICATION", "REFERENCE", "REFERENCE_FIELD", "OUTPUT_HTML", "OUTPUT_CSV"]),
    "diffclip:suggestsamples": (
        "DiffCLIP Suggest Samples",
        ["INPUTS", "MODEL", "COUNT", "SAMPLES", "EXTENT", "SEED", "DEVICE", "OUTPUT"]),
    "diffclip:validationsample": (
        "DiffCLIP Validation Sample",
        ["CLASSIFICATION", "SAMPLE_SIZE", "MIN_PER_CLASS", "SEED", "OUTPUT"]),
}
ENUMS = {"PRESET": (["cpu", "paper"], "cpu"), "WINDOW": (["auto", "3", "5", "7", "9", "11"], "auto"),
         "DEVICE": (["auto", "cpu", "cuda"], "auto")}
CLASSIFY_ENUMS = dict(ENUMS, WINDOW=(["auto", "1", "3", "5", "7", "9", "11"], "auto"))   # the pixel alone too


def test_window_choices_are_the_cores():
    from diffclip_qgis.core.config import CLASSIFY_WINDOW_CHOICES, WINDOW_CHOICES, window_options

    assert ENUMS["WINDOW"][0] == window_options(WINDOW_CHOICES)
    assert CLASSIFY_ENUMS["WINDOW"][0] == window_options(CLASSIFY_WINDOW_CHOICES)


def registry():
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry()


def test_provider_registered(qgis_app):
    provider = registry().providerById("diffclip")
    assert provider is not None
    assert provider.name() == "DiffCLIP"
    assert not provider.icon().isNull()
    assert os.path.isfile(provider.svgIconPath())
    assert sorted(a.id() for a in provider.algorithms()) == sorted(ALGORITHMS)


@pytest.mark.parametrize("alg_id", sorted(ALGORITHMS))
def test_parameters_and_help(qgis_app, alg_id):
    alg = registry().algorithmById(alg_id)
    display, names = ALGORITHMS[alg_id]
    assert alg.displayName() == display
    assert [p.name() for p in alg.parameterDefinitions()] == names
    assert alg.group() and alg.groupId()
    help_text = alg.shortHelpString()
    for name in names:
        assert f"({name}" in help_text, f"{alg_id} help does not describe {name}"
    assert not alg.icon().isNull()
    assert alg.flags() & alg.FlagSupportsBatch
    assert not alg.flags() & alg.FlagNoThreading


@pytest.mark.parametrize("alg_id", sorted(ALGORITHMS))
def test_enums_use_static_strings(qgis_app, alg_id):
    from qgis.core import QgsProcessingParameterEnum

    alg = registry().algorithmById(alg_id)
    for param in alg.parameterDefinitions():
        if isinstance(param, QgsProcessingParameterEnum):
            options, default = (CLASSIFY_ENUMS if alg_id == "diffclip:fewshotclassify" else ENUMS)[param.name()]
            assert param.usesStaticStrings(), param.name()
            assert param.options() == options
            assert param.defaultValue() == default


def test_outputs(qgis_app):
    acc = registry().algorithmById("diffclip:accuracy")
    assert {"OA", "AA", "KAPPA", "OUTPUT_HTML"} <= {o.name() for o in acc.outputDefinitions()}
    few = registry().algorithmById("diffclip:fewshotclassify")
    assert {"OUTPUT", "OUTPUT_CONFIDENCE", "OUTPUT_MODEL"} <= {o.name() for o in few.outputDefinitions()}
    confidence, model = few.parameterDefinition("OUTPUT_CONFIDENCE"), few.parameterDefinition("OUTPUT_MODEL")
    assert confidence.flags() & confidence.FlagOptional and not confidence.createByDefault()
    assert model.flags() & model.FlagOptional and model.createByDefault()   # the dialog keeps one for what follows


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code):
    """Run ``code`` in a Python process of its own, on the assembled plugin, headless."""
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "build")] + extra))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_processing_modules_do_not_import_torch():
    """Importing the provider and creating every algorithm must not load torch or the compute core."""
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # any 'import torch' raises ImportError
        from qgis.core import QgsApplication
        app = QgsApplication([], False); app.initQgis()
        from diffclip_qgis.processing.provider import DiffClipProvider
        p = DiffClipProvider()
        QgsApplication.processingRegistry().addProvider(p)
        assert len(p.algorithms()) == 6
        loaded = [m for m in sys.modules if m.startswith(("diffclip_qgis.core", "diffclip_qgis.gis"))]
        assert not loaded, loaded
        from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProcessingException
        alg = QgsApplication.processingRegistry().createAlgorithmById("diffclip:pretrain")
        try:
            alg.processAlgorithm({}, QgsProcessingContext(), QgsProcessingFeedback())
        except QgsProcessingException as e:
            print("MESSAGE", e)
    """)
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert "MESSAGE PyTorch is not installed" in out.stdout
    assert "pip install" in out.stdout


def test_every_preset_marker_in_the_help_texts_has_a_value(qgis_app):
    from diffclip_qgis.workflow import help as texts

    markers = set()
    for name in ("FEWSHOT_HELP", "PRETRAIN_HELP", "APPLY_HELP", "ACCURACY_HELP"):
        markers |= set(re.findall(r"%(?:CPU|PAPER)_[A-Z_]+%", getattr(texts, name)))
    assert markers, "the help texts show preset values through markers"
    unfilled = sorted(m for m in markers if texts.fill_preset_values(m) in ("?", m, "None"))
    assert not unfilled, f"no preset value for {unfilled}"


def test_help_has_no_line_breaks_inside_sentences(qgis_app):
    """The help panel keeps the source's line breaks: the texts reach it as one line of HTML."""
    from qgis.core import QgsApplication

    for alg in QgsApplication.processingRegistry().providerById("diffclip").algorithms():
        text = alg.shortHelpString()
        assert "\n" not in text and "<dt>" in text, alg.id()


@pytest.mark.parametrize("alg_id", sorted(ALGORITHMS) + ["the example model"])
def test_no_field_list_hangs_on_a_layer_that_may_be_a_raster(qgis_app, alg_id):
    """QGIS (3.22 to 3.44 at least) crashes building a field list whose parent layer is a raster: the dialog
    died at once when the active layer was a class raster (the accuracy reference)."""
    from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingParameterFeatureSource, QgsProcessingParameterField

    alg = registry().algorithmById(alg_id) if alg_id in ALGORITHMS else QgsProcessingModelAlgorithm()
    if alg_id not in ALGORITHMS:
        assert alg.fromFile(os.path.join(ROOT, "models", "diffclip_pretrain_classify_assess.model3"))
    for param in alg.parameterDefinitions():
        if isinstance(param, QgsProcessingParameterField):
            parent = alg.parameterDefinition(param.parentLayerParameterName())
            assert isinstance(parent, QgsProcessingParameterFeatureSource), (param.name(), parent.name())


def test_the_accuracy_dialog_survives_a_raster_reference(qgis_app):
    """The crash itself, in a process of its own: the reference's widgets as the dialog builds them."""
    code = textwrap.dedent(f"""
        from qgis.core import QgsApplication, QgsProcessingContext, QgsProject, QgsRasterLayer
        from qgis.gui import QgsGui, QgsProcessingGui
        app = QgsApplication([], True)
        app.initQgis()
        from diffclip_qgis.processing.provider import DiffClipProvider
        QgsApplication.processingRegistry().addProvider(DiffClipProvider())
        alg = QgsApplication.processingRegistry().algorithmById("diffclip:accuracy")
        layer = QgsRasterLayer({os.path.join(ROOT, "build", "diffclip_qgis", "demo", "demo_gt.tif")!r}, "gt")
        QgsProject.instance().addMapLayer(layer)
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        wrappers = {{}}
        for name in ("REFERENCE", "REFERENCE_FIELD"):
            wrappers[name] = QgsGui.processingGuiRegistry().createParameterWidgetWrapper(
                alg.parameterDefinition(name), QgsProcessingGui.Standard)
            wrappers[name].createWrappedWidget(context)
        for wrapper in wrappers.values():   # as the dialog links them
            wrapper.postInitialize(list(wrappers.values()))
        wrappers["REFERENCE"].setParameterValue(layer.id(), context)   # the raster chosen as the reference
        app.processEvents()
        print("dialog built")
    """)
    out = run_python(code)
    assert out.returncode == 0 and "dialog built" in out.stdout, out.stderr[-2000:]


@pytest.mark.parametrize("alg_id", sorted(ALGORITHMS))
def test_parameter_labels_leave_the_dialog_its_buttons(qgis_app, alg_id):
    """A long label widens the parameter panel of a dialog at its opening size (688 px wide) until its '...'
    buttons are off to the right (measured at 1366 x 768 on QGIS 3.22: 48 characters fit); the help says more."""
    alg = registry().algorithmById(alg_id)
    for param in alg.parameterDefinitions():
        label = param.description() + (" [optional]" if param.flags() & param.FlagOptional else "")
        assert len(label) <= 48, label
