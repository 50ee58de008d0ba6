"""Run settings: preset, epochs, window, class proportions, device, optional pretrained model, smoothing, output
folder."""
from __future__ import annotations

from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QSpinBox, QWidget

from ..core.config import CLASSIFY_WINDOW_CHOICES, PRESETS, fewshot_pretrain_epochs
from ..workflow.ranges import RANGES
from . import folders, tr

TIP = Qt.ItemDataRole.ToolTipRole


def detected_device(torch_available: bool) -> str:
    """'GPU: <name>' when torch sees a CUDA device, else 'CPU only' (or why torch cannot tell)."""
    if not torch_available:
        return tr("unknown (PyTorch is missing)")
    import torch

    if torch.cuda.is_available():
        return tr("GPU: {name}").format(name=torch.cuda.get_device_name(0))
    return tr("CPU only")


def add_item(combo: QComboBox, text: str, value, tooltip: str) -> None:
    """A short visible entry; the details show as its tooltip (and the box's, while it is current)."""
    combo.addItem(text, value)
    combo.setItemData(combo.count() - 1, tooltip, TIP)


def narrow(combo: QComboBox) -> QComboBox:
    """Let a combo box with long entries shrink with a narrow dock."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)
    return combo


class SettingsPanel(QWidget):
    """The form; :meth:`values` and :meth:`set_values` exchange a plain dict (saved with the project)."""

    changed = pyqtSignal()

    def __init__(self, torch_available: bool, parent=None):
        super().__init__(parent)
        self.preset = QComboBox()
        add_item(self.preset, tr("cpu"), "cpu", tr("cpu: small model, minutes on a CPU"))
        add_item(self.preset, tr("paper"), "paper", tr("paper: the paper's model (a GPU is recommended)"))
        self.pretrain_epochs = self._spin(0, tr("Masked-diffusion pretraining on unlabelled pixels; 0 = none. "
                                                "Ignored when a pretrained model is given. The cpu preset starts at "
                                                "0: at CPU budgets pretraining did not improve accuracy in our "
                                                "measurements; try {0} or more.").format(PRESETS["cpu"].pretrain.epochs))
        self.finetune_epochs = self._spin(1, tr("Few-shot fine-tuning on the labelled samples. With the preset's "
                                                "number, the cpu preset trains for {0} optimiser steps: fewer epochs "
                                                "when there are many samples, more when there are few. Any other "
                                                "number is used in full.")
                                             .format(PRESETS["cpu"].finetune.max_steps))
        self.window = QComboBox()
        add_item(self.window, tr("auto"), "auto", tr("auto (from the scene's noise, or cross-validated on the samples)"))
        for size in CLASSIFY_WINDOW_CHOICES:
            self.window.addItem(f"{size} x {size}", str(size))
        self.proportions = QComboBox()
        for text, value, tip in ((tr("equal"), 0.0, tr("equal: rare classes found best")),
                                 (tr("halfway"), 0.5, tr("halfway to the scene's")),
                                 (tr("the scene's"), 1.0, tr("the scene's: best overall accuracy"))):
            add_item(self.proportions, text, value, tip)
        self.proportions.setToolTip(tr("Training takes every class as equally common. The scene's class shares are "
                                       "estimated after training; ambiguous pixels can lean towards common classes."))
        self.device = QComboBox()
        for text, value in ((tr("auto"), "auto"), ("CPU", "cpu"), ("CUDA", "cuda")):
            self.device.addItem(text, value)
        self.device.setToolTip(tr("auto: the GPU when PyTorch sees one (CUDA), else the CPU. The line below says what "
                                  "PyTorch sees."))
        self.detected = QLabel(tr("Detected: {device}").format(device=detected_device(torch_available)))
        self.pretrained = QgsFileWidget()
        self.pretrained.setFilter(tr("DiffCLIP models (*.pt)"))
        self.pretrained.setToolTip(tr("Optional: an encoder from DiffCLIP Pretrain (or an earlier run) for the same "
                                      "sensors, instead of pretraining here."))
        self.smoothing = QSpinBox()
        self.smoothing.setRange(*RANGES["SMOOTHING"])
        self.smoothing.setSpecialValueText(tr("off"))
        self.smoothing.setSuffix(tr(" px"))
        self.smoothing.setToolTip(tr("Radius of a majority filter over the map: every pixel takes the most common "
                                     "class around it, which removes isolated pixels (and objects smaller than the "
                                     "filter). Off by default; 1 to 2 pixels suit a map classified pixel by pixel."))
        self.output = QgsFileWidget()
        self.output.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.output.setToolTip(tr("Runs write numbered files here (diffclip_classification_001.tif, ...), "
                                  "never overwriting earlier runs."))
        self.true_colour = QCheckBox(tr("Show new rasters in true colour"))
        self.true_colour.setChecked(True)
        self.true_colour.setToolTip(tr("Rasters added to the project whose bands carry wavelengths are shown with "
                                       "the bands nearest 640, 550 and 460 nm, stretched, instead of the first three."))
        self.detected.setWordWrap(True)
        for combo in (self.preset, self.window, self.proportions, self.device):
            narrow(combo)
        for combo in (self.preset, self.window):
            combo.currentIndexChanged.connect(lambda _, c=combo: c.setToolTip(c.currentData(TIP) or ""))
            combo.setToolTip(combo.currentData(TIP))
        for widget in (self.pretrained, self.output):
            widget.fileChanged.connect(folders.remember)
        self.pretrained.fileChanged.connect(self._pretrained_changed)
        self.preset.currentIndexChanged.connect(self._preset_changed)
        for signal in (self.pretrain_epochs.valueChanged, self.finetune_epochs.valueChanged,
                       self.smoothing.valueChanged, self.output.fileChanged,
                       self.window.currentIndexChanged, self.proportions.currentIndexChanged,
                       self.device.currentIndexChanged, self.true_colour.toggled):
            signal.connect(lambda *_: self.changed.emit())

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # a narrow dock puts fields below labels
        form.addRow(tr("Preset"), self.preset)
        form.addRow(tr("Pretraining epochs"), self.pretrain_epochs)
        form.addRow(tr("Fine-tuning epochs"), self.finetune_epochs)
        form.addRow(tr("Window"), self.window)
        form.addRow(tr("Class proportions"), self.proportions)
        form.addRow(tr("Device"), self.device)
        form.addRow("", self.detected)
        form.addRow(tr("Pretrained model"), self.pretrained)
        form.addRow(tr("Smoothing"), self.smoothing)
        form.addRow(tr("Output folder"), self.output)
        form.addRow(self.true_colour)  # the whole width: its text is long
        self._preset_changed()

    @staticmethod
    def _spin(minimum: int, tooltip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(minimum, 10000)
        spin.setToolTip(tooltip)
        return spin

    def _preset_changed(self) -> None:
        preset = PRESETS[self.preset.currentData()]
        self.pretrain_epochs.setValue(fewshot_pretrain_epochs(preset))
        self.finetune_epochs.setValue(preset.finetune.epochs)
        self.proportions.setCurrentIndex(max(0, self.proportions.findData(preset.finetune.prior_strength)))
        self.changed.emit()

    def _pretrained_changed(self) -> None:
        self.pretrain_epochs.setEnabled(not self.pretrained.filePath())
        self.changed.emit()

    def values(self) -> dict:
        return {"preset": self.preset.currentData(), "pretrain_epochs": self.pretrain_epochs.value(),
                "finetune_epochs": self.finetune_epochs.value(), "window": self.window.currentData(),
                "class_proportions": self.proportions.currentData(),
                "device": self.device.currentData(), "pretrained_path": self.pretrained.filePath(),
                "smoothing": self.smoothing.value(),
                "output_folder": self.output.filePath(), "true_colour": self.true_colour.isChecked()}

    def set_values(self, values: dict) -> None:
        """Apply saved values; what they lack or do not know takes its default (the preset's, for epochs and
        proportions), never the last project's."""
        preset = self.preset.findData(values.get("preset"))
        self.preset.setCurrentIndex(preset if preset >= 0 else self.preset.findData("cpu"))
        self._preset_changed()   # the preset's epochs and proportions, unless saved below
        for combo, key, default in ((self.window, "window", "auto"), (self.device, "device", "auto"),
                                    (self.proportions, "class_proportions", None)):
            index = combo.findData(values.get(key))
            if index >= 0 or default is not None:
                combo.setCurrentIndex(index if index >= 0 else combo.findData(default))
        self.smoothing.setValue(0)
        for spin, key in ((self.pretrain_epochs, "pretrain_epochs"), (self.finetune_epochs, "finetune_epochs"),
                          (self.smoothing, "smoothing")):
            if isinstance(values.get(key), int):
                spin.setValue(values[key])
        self.pretrained.setFilePath(values.get("pretrained_path") or "")
        self.output.setFilePath(values.get("output_folder") or "")
        self.true_colour.setChecked(values.get("true_colour", True) is not False)

    def show_default_output(self, folder: str) -> None:
        """Show the folder a run uses when none is chosen, and open the file dialogs near it."""
        self.output.lineEdit().setPlaceholderText(folder)
        for widget in (self.output, self.pretrained):
            widget.setDefaultRoot(folders.start_folder())
