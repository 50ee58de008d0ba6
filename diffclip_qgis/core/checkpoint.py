"""One-file model checkpoints: save atomically, load safely (``weights_only``), validate against inputs."""
from __future__ import annotations

import os
import warnings
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .classes import ClassInfo
from .files import PendingOutputs, write_error
from .config import ModelConfig, config_from_dict, config_to_dict
from .model import DiffCLIP
from .source import ModalityInfo
from .trained import ModalityMeta, TrainedModel

FORMAT = "diffclip-qgis-model"
VERSION = 2   # 2: spectral stems also see the brightness-free shape of the bands

# Bounds of the stored settings: generous for real models, small enough that a damaged or
# crafted file is refused before a network is built (inclusive; a float low bound admits floats).
CONFIG_LIMITS = {
    "window": (1, 31), "reduce_channels": (1, 4096), "dim": (4, 4096), "depth": (0, 64), "heads": (1, 256),
    "mlp_ratio": (0.0, 16.0), "decoder_dim": (4, 4096), "decoder_depth": (0, 64), "text_width": (1, 4096),
    "text_layers": (0, 64), "text_heads": (1, 256), "context_length": (2, 1024), "vocab_size": (4, 1_000_000),
    "embed_dim": (1, 4096),
}
MAX_MODALITIES, MAX_BANDS = 16, 10_000
MAX_PARAMETERS = 100_000_000   # 400 MB of float32


class ModelFileError(ValueError):
    """A model file that cannot be used with these inputs; the message says why and what to do."""


def save_model(trained: TrainedModel, path: str, outputs: Optional[PendingOutputs] = None) -> None:
    """Write the model to ``path`` (.pt) through a temporary file of ``outputs`` (committed here when not
    given), read back before it counts: a failure leaves no partial file and says why."""
    if outputs is None:
        with PendingOutputs() as own:
            return save_model(trained, path, own)
    net = trained.network
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": config_to_dict(net.cfg),
        "band_counts": list(net.band_counts),
        "modalities": [m.as_dict() for m in trained.modalities],
        "pretrain_window": int(trained.pretrain_window),
        "window": None if trained.window is None else int(trained.window),
        "classes": [c.as_dict() for c in trained.classes],
        "head": "linear" if net.linear_head is not None else "text",
        "report": _plain(trained.report),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    tmp = outputs.temp_for(path, ".pt.tmp")
    try:
        torch.save(payload, tmp)
        torch.load(tmp, map_location="cpu", weights_only=True)  # reads back every tensor
    except (OSError, RuntimeError) as e:
        raise write_error(path, getattr(e, "strerror", None) or _short(e)) from None


def _short(error: Exception) -> str:
    """The first line of an error, without torch's C++ source location."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
    if text.startswith("[enforce fail"):  # torch's writer: the file could not be written to the end
        return "the file was cut short (" + text.split("] ", 1)[-1].lstrip(". ") + ")"
    return text


def _plain(value):
    """Report values as plain Python types (loadable with weights_only)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def load_model(path: str, map_location: str = "cpu") -> TrainedModel:
    """Load and validate a model file written by :func:`save_model`. Never executes code from the file."""
    if not os.path.isfile(path):
        raise ModelFileError(f"Model file not found: {path}. Choose a .pt file written by DiffCLIP Pretrain or Few-shot Classify.")
    try:
        with warnings.catch_warnings():   # torch's notes on a foreign pickle: our message below says it all
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - nothing from the file has run; any failure means "not our file"
        raise ModelFileError(
            f"{path} is not a DiffCLIP model file, or it holds more than tensors and plain data ({e.__class__.__name__}). "
            "Use a .pt file written by DiffCLIP Pretrain or Few-shot Classify."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a DiffCLIP model file. Use a .pt file written by DiffCLIP Pretrain or Few-shot Classify.")
    if int(payload.get("version", 0)) > VERSION:
        raise ModelFileError(
            f"{path} was written by a newer DiffCLIP plugin (format {payload['version']}, this one reads up to {VERSION}). "
            "Update the plugin from the Plugin Manager."
        )
    if int(payload.get("version", 0)) < VERSION:
        raise ModelFileError(
            f"{path} was written by an earlier DiffCLIP plugin (format {payload.get('version')}), whose network "
            f"differs from this one's (format {VERSION}). Train the model again with this version."
        )
    try:
        return _from_payload(payload)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as e:
        reason = " ".join(str(e).split())   # one line: load_state_dict lists its problems on separate lines
        raise ModelFileError(
            f"{path} is a damaged or incompatible DiffCLIP model file ({e.__class__.__name__}: {reason}). "
            "Train the model again or use another copy of the file."
        ) from None


def _from_payload(payload: dict) -> TrainedModel:
    cfg = config_from_dict(ModelConfig, payload["model_config"])
    _check_config(cfg, payload["band_counts"])
    _check_shapes(cfg, payload["band_counts"], payload["state_dict"])
    net = DiffCLIP(payload["band_counts"], cfg)
    classes = [ClassInfo(**c) for c in payload.get("classes", [])]
    if payload.get("head") == "linear":
        net.set_linear_head(len(classes))
    if "class_bias" in payload["state_dict"]:
        net.set_class_bias(torch.zeros(len(classes)))
    net.load_state_dict(payload["state_dict"])
    net.eval()
    return TrainedModel(
        network=net,
        modalities=[ModalityMeta.from_dict(m) for m in payload["modalities"]],
        pretrain_window=int(payload["pretrain_window"]),
        window=payload.get("window"),
        classes=classes,
        report=payload.get("report", {}),
    )


def _check_config(cfg: ModelConfig, band_counts) -> None:
    """Raise ValueError when a stored setting is out of bounds or inconsistent."""
    for name, (low, high) in CONFIG_LIMITS.items():
        value = getattr(cfg, name)
        if type(value) not in ((int, float) if isinstance(low, float) else (int,)) or not low <= value <= high:
            raise ValueError(f"model setting {name} = {value!r} is outside {low}..{high}")
    if cfg.window % 2 == 0:
        raise ValueError(f"model setting window = {cfg.window} is even")
    for width, heads in (("dim", "heads"), ("decoder_dim", "heads"), ("text_width", "text_heads")):
        if getattr(cfg, width) % getattr(cfg, heads):
            raise ValueError(f"model setting {width} = {getattr(cfg, width)} is not divisible by {heads} = {getattr(cfg, heads)}")
    if (not isinstance(band_counts, list) or not 1 <= len(band_counts) <= MAX_MODALITIES
            or any(type(b) is not int or not 1 <= b <= MAX_BANDS for b in band_counts)):
        raise ValueError(f"band counts {band_counts!r} are not 1 to {MAX_MODALITIES} counts of 1..{MAX_BANDS}")


def _check_shapes(cfg: ModelConfig, band_counts: Sequence[int], state: dict) -> None:
    """Raise ValueError when the stored tensors are too many or do not have the sizes the settings imply.

    Every size of the settings is compared with a tensor that has it, so the network built
    afterwards is no larger than the stored weights.
    """
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("the weights are not a dictionary of tensors")
    if sum(v.numel() for v in state.values()) > MAX_PARAMETERS:
        raise ValueError(f"more than {MAX_PARAMETERS} weights")
    tw, hidden, decoder_hidden = cfg.text_width, int(cfg.dim * cfg.mlp_ratio), int(cfg.decoder_dim * cfg.mlp_ratio)
    expected = {
        "encoder.cls_token": (1, 1, cfg.dim),
        "image_projection.weight": (cfg.embed_dim, cfg.dim * len(band_counts)),
        "text.token_embedding.weight": (cfg.vocab_size, tw),
        "text.positional_embedding": (cfg.context_length, tw),
        "text.projection.weight": (cfg.embed_dim, tw),
        **{f"encoder.blocks.{i}.mlp.0.weight": (hidden, cfg.dim) for i in range(cfg.depth)},
        **{f"text.blocks.{i}.mlp.0.weight": (4 * tw, tw) for i in range(cfg.text_layers)},
    }
    for m, bands in enumerate(band_counts):
        expected[f"stems.{m}.embed.weight"] = (cfg.dim, cfg.reduce_channels, 1, 1)
        expected[f"decoders.{m}.expand.weight"] = (bands, cfg.decoder_dim)
        expected.update({f"decoders.{m}.blocks.{i}.mlp.0.weight": (decoder_hidden, cfg.decoder_dim)
                         for i in range(cfg.decoder_depth)})
    for name, shape in expected.items():
        if name not in state:
            raise ValueError(f"tensor {name} is missing")
        if tuple(state[name].shape) != shape:
            raise ValueError(f"tensor {name} has shape {list(state[name].shape)} where the settings need {list(shape)}")


def check_inputs(trained: TrainedModel, band_counts: Sequence[int], infos: Optional[Sequence[ModalityInfo]] = None,
                 warn: Callable[[str], None] = lambda msg: None) -> None:
    """Raise when the inputs do not match the model's modalities; warn when wavelengths differ."""
    expected = [m.band_count for m in trained.modalities]
    if list(band_counts) != expected:
        described = ", ".join(f"{m.name}: {m.band_count} bands" for m in trained.modalities)
        raise ModelFileError(
            f"The model expects {len(expected)} input raster(s) with {expected} bands ({described}), "
            f"but the inputs have {list(band_counts)} bands. Give the same sensors' rasters in the same order, "
            "or train a new model on these inputs."
        )
    for m, info in zip(trained.modalities, infos or []):
        if m.wavelengths and info.wavelengths and not np.allclose(m.wavelengths, info.wavelengths, atol=5.0):
            warn(f"{info.name}: band wavelengths differ from those the model was trained on ({m.name}); "
                 "results may be poor if this is another sensor.")
