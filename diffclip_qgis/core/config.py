"""Settings of the model and its two training stages, and the named presets."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

WINDOW_CHOICES = (3, 5, 7, 9, 11)                 # pretraining windows; the sizes cross-validation compares
CLASSIFY_WINDOW_CHOICES = (1,) + WINDOW_CHOICES   # a classifier may also see the pixel alone


class SceneWindows(NamedTuple):
    """The windows the scene's noise share names (core/window_rule.py)."""

    clean: int = 1       # neighbours differ by material: the pixel alone (a clearly better window overrules it)
    noisy: int = 5       # neighbours differ by noise, with few labels
    unmeasured: int = 3  # the share cannot be measured, with few labels


def window_options(sizes: Tuple[int, ...]) -> List[str]:
    """'auto' and the sizes, as the choices of a Processing or command-line window parameter."""
    return ["auto"] + [str(s) for s in sizes]


@dataclass
class ModelConfig:
    """Sizes of the network. ``window`` is the largest window the encoder is trained for."""

    window: int = 11
    reduce_channels: int = 128   # band reduction (1x1 conv) output channels
    dim: int = 128               # token width of the shared encoder
    depth: int = 4
    heads: int = 8
    mlp_ratio: float = 2.0
    decoder_dim: int = 128
    decoder_depth: int = 3
    text_width: int = 128
    text_layers: int = 3
    text_heads: int = 8
    context_length: int = 77
    vocab_size: int = 8192
    embed_dim: int = 128         # joint image-text space


@dataclass
class PretrainConfig:
    """Unsupervised masked-diffusion pretraining."""

    epochs: int = 400
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.0
    mask_ratio: float = 0.7
    masked_loss_weight: float = 0.1
    timesteps: int = 1000
    sample_count: int = 5000
    seed: int = 0


@dataclass
class FinetuneConfig:
    """Few-shot language-driven fine-tuning. ``head='linear'`` replaces text by a linear classifier."""

    epochs: int = 150
    # Optional cap on optimiser steps: with many samples, fewer epochs (an epoch is longer).
    max_steps: Optional[int] = None
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.01
    augment: bool = True
    head: str = "text"
    # How far predictions follow the class proportions estimated in the scene: 0 = every class
    # equally likely (best average accuracy), 1 = the estimated proportions (best overall accuracy).
    prior_strength: float = 0.5
    prior_samples: int = 4000     # unlabelled pixels the proportions are estimated from
    # Unlabelled pixels in fine-tuning (core/semisupervised.py): after a supervised warm-up,
    # FixMatch-style pseudo-labels of unlabelled windows, with distribution alignment. At every label
    # count: it paid at 2, 5, 8 and 16 samples per class (docs/few_labels.md).
    unlabelled: bool = False
    # With window 'auto': the window from the share of noise in the differences between neighbouring
    # pixels (core/window_rule.py, docs/few_labels.md): below ``noise_split`` the pixel alone (with more
    # than few labels, unless cross-validation scores a window clearly better); otherwise, with few
    # labels (the median labelled pixels per class at most ``few_label_max_shots``, where
    # cross-validation has one sample per fold), the noisy or the unmeasured size of ``scene_windows``,
    # and with more labels cross-validation picks it. Cross-validation also gives the accuracy
    # estimate the dock shows.
    window_from_scene: bool = False
    few_label_max_shots: int = 4
    scene_windows: SceneWindows = SceneWindows()
    noise_split: float = 0.12
    unlabelled_samples: int = 4000     # unlabelled windows drawn from the whole input
    unlabelled_batch: int = 128
    unlabelled_weight: float = 0.1     # of the pseudo-label loss (1 and 0.3 measured worse at 2 shots)
    unlabelled_threshold: float = 0.9  # teacher confidence a pseudo-label needs
    unlabelled_warmup: float = 0.3     # fraction of the steps trained on the labelled windows alone
    unlabelled_steps: int = 200        # optimiser steps at least, when unlabelled pixels are used and max_steps is set
    distribution_alignment: bool = True
    # Shares the pseudo-labels are aligned to: "estimated" (EM on the unlabelled windows when the
    # warm-up ends) or "uniform" (equal shares).
    alignment_target: str = "estimated"
    pixel_teacher: bool = True         # a per-pixel logistic regression on the centre pixel as second teacher
    pixel_teacher_weight: float = 1.0  # exponent of its posteriors in the product with the network's
    # At window 1: the teachers' posteriors averaged over each unlabelled pixel's n x n neighbourhood, the
    # centre weighing ``pseudo_label_centre`` (semisupervised.Neighbourhoods); 1 = the pixel alone.
    pseudo_label_neighbourhood: int = 3
    pseudo_label_centre: float = 0.4
    seed: int = 0


@dataclass
class Preset:
    """A named bundle of settings. ``window`` is a fixed size or ``'auto'``."""

    name: str
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    window: Union[int, str] = 11
    # Whether few-shot classification pretrains on its inputs first when no pretrained encoder is given.
    pretrain_before_fewshot: bool = True


PRESETS: Dict[str, Preset] = {
    "paper": Preset(name="paper", window=11),
    # Chosen by measurement on the demo scene (see README, `make bench`): about a minute (64 s)
    # end to end on 2 CPU cores for the 150 x 150 px demo scene, window choice included.
    "cpu": Preset(
        name="cpu",
        model=ModelConfig(window=7, reduce_channels=64, dim=64, depth=2, heads=4, decoder_dim=64,
                          decoder_depth=1, text_width=64, text_layers=2, text_heads=4, embed_dim=64),
        pretrain=PretrainConfig(epochs=5, batch_size=128, lr=1e-3, sample_count=2000),
        # Unlabelled windows join fine-tuning; the window comes from the scene's noise share (README).
        finetune=FinetuneConfig(epochs=100, max_steps=200, lr=1e-3, unlabelled=True, window_from_scene=True),
        window="auto",
        # At this budget pretraining did not pay on any scene measured (README, `make bench`): without
        # it, few-shot OA was 1.1 points higher at 8 shots on the demo, 6.8 at 2 shots, 0.9 to 2.4 on
        # the real scenes, and a run is shorter (30 s then, 14 s since pretraining encodes only the
        # visible tokens). The pretrain algorithm still uses `pretrain`.
        pretrain_before_fewshot=False,
    ),
}
DEFAULT_PRESET = "cpu"


def get_preset(name: str) -> Preset:
    """A fresh copy of a named preset (``cpu`` or ``paper``)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}.")
    p = PRESETS[name]
    return replace(p, model=replace(p.model), pretrain=replace(p.pretrain), finetune=replace(p.finetune))


def fewshot_pretrain_epochs(preset: Preset) -> int:
    """Pretraining epochs few-shot classification runs by default: the preset's, or 0 where it skips them."""
    return preset.pretrain.epochs if preset.pretrain_before_fewshot else 0


def set_fewshot_pretrain_epochs(preset: Preset, epochs: int) -> None:
    """Pretrain for ``epochs`` before few-shot fine-tuning; 0 starts from a randomly initialised encoder."""
    preset.pretrain.epochs = epochs
    preset.pretrain_before_fewshot = epochs > 0


def set_finetune_epochs(preset: Preset, epochs: int) -> None:
    """Fine-tune for ``epochs``; a count other than the preset's also lifts the preset's step cap."""
    if epochs != preset.finetune.epochs:
        preset.finetune.max_steps = None
    preset.finetune.epochs = epochs


def config_from_dict(cls, data: dict):
    """Build a config dataclass from a dict, ignoring unknown keys (forward compatible)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def config_to_dict(cfg) -> dict:
    return asdict(cfg)
