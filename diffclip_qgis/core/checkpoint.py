"""One-file model checkpoints: save atomically, load safely (``weights_only``), validate against inputs."""
from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .classes import ClassInfo
from .files import temp_file_beside
from .config import ModelConfig, config_from_dict, config_to_dict
from .model import DiffCLIP
from .source import ModalityInfo
from .trained import ModalityMeta, TrainedModel

FORMAT = "diffclip-qgis-model"
VERSION = 2   # 2: spectral stems also see the brightness-free shape of the bands


class ModelFileError(ValueError):
    """A model file that cannot be used with these inputs; the message says why and what to do."""


def save_model(trained: TrainedModel, path: str) -> None:
    """Write the model to ``path`` (.pt) through a temporary file, so a failure leaves no partial file."""
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
    tmp = temp_file_beside(path, ".pt.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ModelFileError(
            f"{path} is a damaged or incompatible DiffCLIP model file ({e.__class__.__name__}: {e}). "
            "Train the model again or use another copy of the file."
        ) from None


def _from_payload(payload: dict) -> TrainedModel:
    cfg = config_from_dict(ModelConfig, payload["model_config"])
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
