"""diffclip:pretrain: masked-diffusion pretraining of the encoder on unlabelled pixels."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFileDestination, QgsProcessingParameterNumber

from .algorithm import WINDOWS, DiffClipAlgorithm, FeedbackAdapter, fill_preset_values, tr

HELP = """<p>Pretrains the DiffCLIP encoder on unlabelled pixels of the input rasters with masked diffusion
(no labels needed) and saves it as a .pt model. Give it to 'DiffCLIP Few-shot Classify' (PRETRAINED) to
train classifiers for several sets of samples or class schemes without pretraining again.</p>
<h3>Parameters</h3>
<dl>
<dt>Input rasters (INPUTS)</dt><dd>One raster per modality (e.g. hyperspectral, then LiDAR). The first
defines the grid; the others are resampled onto it. Classify later with rasters of the same sensors in
the same order.</dd>
<dt>Preset (PRESET)</dt><dd>cpu: a small network, minutes on a CPU. paper: the paper's sizes (for a
CUDA GPU).</dd>
<dt>Pretraining window (WINDOW)</dt><dd>The largest window (pixels) the encoder is trained for; the
classifier can use this size or smaller. auto: the preset's (cpu %CPU_MODEL_WINDOW%, paper %PAPER_MODEL_WINDOW%).</dd>
<dt>Epochs (EPOCHS)</dt><dd>-1 or empty: the preset's (cpu %CPU_PRETRAIN_EPOCHS%,
paper %PAPER_PRETRAIN_EPOCHS%). 0 saves a randomly initialised encoder.</dd>
<dt>Mask ratio (MASK_RATIO)</dt><dd>Share of each window's pixels hidden from the encoder (default
0.7, as in the paper).</dd>
<dt>Training windows (SAMPLE_COUNT)</dt><dd>How many random valid pixels (windows) to pretrain on;
-1 or empty: the preset's (cpu %CPU_SAMPLE_COUNT%, paper %PAPER_SAMPLE_COUNT%).</dd>
<dt>Device (DEVICE)</dt><dd>auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or cuda.</dd>
<dt>Random seed (SEED)</dt><dd>Same inputs and seed give the same encoder (on the same device).</dd>
<dt>Pretrained model (OUTPUT_MODEL)</dt><dd>The .pt file to write.</dd>
</dl>"""


class PretrainAlgorithm(DiffClipAlgorithm):
    EPOCHS = "EPOCHS"
    MASK_RATIO = "MASK_RATIO"
    SAMPLE_COUNT = "SAMPLE_COUNT"

    _name = "pretrain"
    _display = "DiffCLIP Pretrain Encoder"

    def shortHelpString(self):  # noqa: N802
        return fill_preset_values(tr(HELP))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_inputs()
        self.add_preset()
        self.add_enum(self.WINDOW, "Pretraining window (pixels; auto = the preset's)", WINDOWS, "auto")
        self.add_int(self.EPOCHS, "Epochs (-1 = preset's)", -1, minimum=-1, optional=True)
        ratio = QgsProcessingParameterNumber(self.MASK_RATIO, tr("Mask ratio"), QgsProcessingParameterNumber.Double,
                                             defaultValue=0.7, minValue=0.05, maxValue=0.95)
        ratio.setFlags(ratio.flags() | ratio.FlagAdvanced)
        self.addParameter(ratio)
        self.add_int(self.SAMPLE_COUNT, "Training windows (-1 = preset's)", -1, minimum=-1, optional=True,
                     advanced=True)
        self.add_device()
        self.add_seed()
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, tr("Pretrained model"), tr("DiffCLIP models (*.pt)")))

    def compute(self, parameters, context, feedback):
        from ..workflow.pretrain import pretrain
        from ..workflow.requests import PretrainRequest

        paths, _ = self.raster_paths(parameters, context)
        request = PretrainRequest(
            inputs=paths, output_model=self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context),
            preset=self.parameterAsEnumString(parameters, self.PRESET, context) or "cpu",
            window=self.parameterAsEnumString(parameters, self.WINDOW, context) or "auto",
            epochs=self.optional_int(parameters, self.EPOCHS, context),
            sample_count=self.optional_int(parameters, self.SAMPLE_COUNT, context),
            mask_ratio=self.parameterAsDouble(parameters, self.MASK_RATIO, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
            seed=self.parameterAsInt(parameters, self.SEED, context))
        adapter = FeedbackAdapter(feedback, {"reading": (0, 5), "pretraining": (5, 98), "writing": (98, 100)})
        pretrain(request, adapter.callback())
        adapter.log_times()
        return {self.OUTPUT_MODEL: request.output_model}
