"""A trained network together with everything needed to apply it to new rasters."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from .classes import ClassInfo
from .config import ModelConfig
from .model import DiffCLIP
from .normalize import BandStats


@dataclass
class ModalityMeta:
    """One input modality as the model saw it: raster band count, bands used and their statistics."""

    name: str
    band_count: int
    stats: BandStats
    wavelengths: Optional[List[float]] = None

    def as_dict(self) -> dict:
        return {"name": self.name, "band_count": self.band_count, "stats": self.stats.as_dict(),
                "wavelengths": self.wavelengths}

    @classmethod
    def from_dict(cls, d: dict) -> "ModalityMeta":
        return cls(d["name"], int(d["band_count"]), BandStats.from_dict(d["stats"]), d.get("wavelengths"))


@dataclass
class TrainedModel:
    """The network, its input description and, once fine-tuned, its classes and window size.

    ``window`` is None for a pretrained encoder that has not been fine-tuned yet.
    """

    network: DiffCLIP
    modalities: List[ModalityMeta]
    pretrain_window: int
    window: Optional[int] = None
    classes: List[ClassInfo] = field(default_factory=list)
    report: dict = field(default_factory=dict)   # losses, timings, window scores: for logs

    @property
    def config(self) -> ModelConfig:
        return self.network.cfg

    @property
    def stats(self) -> List[BandStats]:
        return [m.stats for m in self.modalities]

    @property
    def is_classifier(self) -> bool:
        return self.window is not None and bool(self.classes)
