"""diffclip:pretrain: masked-diffusion pretraining of the encoder on unlabelled pixels."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFileDestination

from ..workflow.help import PRETRAIN_HELP, html_help
from .algorithm import WINDOWS, DiffClipAlgorithm, FeedbackAdapter, tr

class PretrainAlgorithm(DiffClipAlgorithm):
    EPOCHS = "EPOCHS"
    MASK_RATIO = "MASK_RATIO"
    SAMPLE_COUNT = "SAMPLE_COUNT"

    _name = "pretrain"
    _display = "DiffCLIP Pretrain Encoder"

    def shortHelpString(self):  # noqa: N802
        return html_help(tr(PRETRAIN_HELP))

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_inputs()
        self.add_preset()
        self.add_enum(self.WINDOW, "Pretraining window (pixels)", WINDOWS, "auto")
        self.add_number(self.EPOCHS, "Epochs (-1 = preset's)", -1, optional=True)
        self.add_number(self.MASK_RATIO, "Mask ratio", 0.7, advanced=True)
        self.add_number(self.SAMPLE_COUNT, "Training windows (-1 = preset's)", -1, optional=True, advanced=True)
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
