"""Masked-diffusion pretraining of the encoder on the inputs' unlabelled pixels, saved as a model file."""
from __future__ import annotations

from ..core.checkpoint import save_model
from ..core.config import Preset, get_preset
from ..core.files import MODEL_FILE, PendingOutputs, check_output_kinds, check_output_paths, check_writable
from ..core.pipeline import pretrain_encoder
from ..core.progress import SILENT, Callback
from .classify import MODEL_BYTES, device_for, input_files, open_stack
from .distributed import is_main
from .requests import PretrainRequest


def pretrain_preset(req: PretrainRequest) -> Preset:
    """The named preset with the request's window, epochs, windows, mask ratio and seed."""
    preset = get_preset(req.preset)
    if str(req.window) != "auto":
        preset.model.window = int(req.window)
    if req.epochs is not None:
        preset.pretrain.epochs = req.epochs
    if req.sample_count is not None:
        if req.sample_count < 1:
            raise ValueError(f"SAMPLE_COUNT must be at least 1 (or -1 for the preset's {preset.pretrain.sample_count}).")
        preset.pretrain.sample_count = req.sample_count
    preset.pretrain.mask_ratio = req.mask_ratio
    preset.pretrain.seed = req.seed
    return preset


def pretrain(req: PretrainRequest, callback: Callback = SILENT) -> str:
    """Pretrain on the inputs and save the encoder to ``req.output_model``; returns its path."""
    callback.progress("reading", 0.0)
    if not req.output_model:
        raise ValueError("Choose where to save the model (OUTPUT_MODEL).")
    check_output_paths({"INPUTS": input_files(req.inputs)}, {"OUTPUT_MODEL": [req.output_model]})
    check_output_kinds({"OUTPUT_MODEL": (req.output_model, MODEL_FILE)})
    check_writable({"OUTPUT_MODEL": (req.output_model, MODEL_BYTES)})
    outputs = PendingOutputs([req.output_model])
    preset = pretrain_preset(req)
    device = device_for(req.device, callback)
    with open_stack(req.inputs, callback) as stack:
        callback.log(f"Preset {preset.name}: {preset.model.window} x {preset.model.window} windows, "
                     f"{preset.pretrain.epochs} epochs, {preset.pretrain.sample_count} windows, "
                     f"mask ratio {preset.pretrain.mask_ratio:g}, seed {preset.pretrain.seed}.")
        callback.progress("reading", 1.0)
        trained = pretrain_encoder(stack, preset, device, infos=stack.infos, callback=callback)
    callback.progress("writing", 0.0)
    if is_main():   # under torchrun every rank holds the same weights
        with outputs:
            save_model(trained, req.output_model, outputs)
    callback.progress("writing", 1.0)
    callback.log(f"Pretrained encoder saved to {req.output_model}.")
    return req.output_model
