"""Unlabelled pixels in few-shot fine-tuning: FixMatch-style pseudo-labels, a pixel teacher, distribution alignment.

With two labelled pixels per class the decision boundaries are set by luck. The scene itself
has thousands of unlabelled pixels; after a short supervised warm-up each training step also
draws a batch of unlabelled windows. The answer on a weakly augmented view (a flip or rotation)
becomes the target of a strongly augmented view of the same window (another flip or rotation,
brightness and noise jitter, dropped bands, neighbour pixels replaced by the centre pixel),
where it is confident enough (Sohn et al., FixMatch, 2020).

Two safeguards against a class swallowing a spectrally similar one:

- a second, per-pixel teacher (``pixel_teacher``): a class-balanced logistic regression on the
  centre pixel's standardised bands, fitted on the labelled pixels. Its posteriors are
  multiplied into the network's before thresholding, so a pseudo-label needs both to agree.
  It is used in training only: prediction is the network alone, as fast as before;
- distribution alignment (Berthelot et al., ReMixMatch, 2020): the teacher's answers are
  rescaled so that the running mean of the predicted class shares moves to a target: the
  shares estimated by EM on all unlabelled windows when the warm-up ends (``alignment_target =
  "estimated"``, floored at a tenth of an equal share), or equal shares (``"uniform"``, which
  over-predicts rare classes in real scenes and measured worse).

Where the network sees the pixel alone (window 1), a pseudo-label comes from the pixel's 3 x 3
neighbourhood (``Neighbourhoods``): both teachers' posteriors are averaged over it, the centre
weighing 0.4, so mixed pixels at boundaries and pixels unlike all their neighbours get none.

The `cpu` preset uses it at every label count (it paid at 2, 5, 8 and 16 samples per class). The
scene's class shares are applied to the predictions afterwards, as before, by the class-proportion step (``priors.py``).
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F


def strong_view(windows: List[torch.Tensor], generator: torch.Generator, band_drop: float = 0.1,
                token_drop: float = 0.2, brightness: float = 0.2, noise: float = 0.05) -> List[torch.Tensor]:
    """A strongly perturbed copy of (B, C, s, s) windows (one tensor per modality), seeded by ``generator``.

    Per sample: every band of every modality is scaled by one brightness factor around the
    scaled bands' zero point (``x + 1`` is proportional to the signal), Gaussian noise is added,
    a fraction ``band_drop`` of the bands of each modality is set to 0 (mid range), and a fraction
    ``token_drop`` of the neighbour pixels (never the centre) take the centre pixel's values
    (the same pixels in every modality).
    """
    b, _, s, _ = windows[0].shape
    scale = 1.0 + brightness * (2 * torch.rand(b, 1, 1, 1, generator=generator) - 1)
    keep_px = torch.rand(b, 1, s, s, generator=generator) >= token_drop
    keep_px[:, :, s // 2, s // 2] = True
    out = []
    for w in windows:
        c = w.shape[1]
        x = (w + 1.0) * scale - 1.0
        x = x + noise * torch.randn(w.shape, generator=generator)
        keep_band = (torch.rand(b, c, 1, 1, generator=generator) >= band_drop).to(x.dtype)
        x = x * keep_band
        centre = x[:, :, s // 2:s // 2 + 1, s // 2:s // 2 + 1]
        out.append(torch.where(keep_px, x, centre.expand_as(x)).contiguous())
    return out


class DistributionAlignment:
    """Rescales posteriors so the running mean of the predicted class shares moves to ``target``."""

    def __init__(self, k: int, target: Optional[np.ndarray] = None, momentum: float = 0.9):
        self.target = torch.full((k,), 1.0 / k) if target is None else torch.as_tensor(target, dtype=torch.float32)
        self.mean = self.target.clone()
        self.momentum = momentum

    def set_target(self, target: np.ndarray) -> None:
        """Align to ``target`` shares (floored at a tenth of an equal share, so no class is aligned away)."""
        k = len(self.target)
        t = torch.as_tensor(np.maximum(np.asarray(target, dtype=np.float64), 0.1 / k), dtype=torch.float32)
        self.target = t / t.sum()

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        self.mean = self.momentum * self.mean + (1 - self.momentum) * probs.mean(dim=0).detach().cpu()
        aligned = probs * (self.target / self.mean.clamp(min=1e-6)).to(probs)
        return aligned / aligned.sum(dim=1, keepdim=True)


class Neighbourhoods:
    """Pseudo-labels where a pixel's neighbours agree, for a network that sees the pixel alone (window 1).

    The teachers' posteriors (the network's and the pixel teacher's) of the n x n pixels around an unlabelled
    pixel are averaged, the centre weighing ``centre`` and the others sharing the rest. A mixed or noisy pixel
    whose neighbours disagree gets no confident pseudo-label, nor does one that differs from all its neighbours
    (it does not get theirs either). Training only: prediction is still the pixel alone.
    """

    def __init__(self, windows: List[np.ndarray], centre: float):
        m = windows[0].shape[-1] ** 2
        self.windows = [torch.from_numpy(w) for w in windows]
        self.weights = torch.full((m,), (1.0 - centre) / (m - 1))
        self.weights[m // 2] = centre

    def centres(self) -> List[np.ndarray]:
        """The centre pixels as (N, C, 1, 1) windows."""
        c = self.windows[0].shape[-1] // 2
        return [np.ascontiguousarray(w[:, :, c:c + 1, c:c + 1].numpy()) for w in self.windows]

    def pixels(self, idx: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
        """Every pixel of the neighbourhoods (those at ``idx``, else all) as (B * n * n, C, 1, 1) windows."""
        windows = self.windows if idx is None else [w[idx] for w in self.windows]
        return [w.permute(0, 2, 3, 1).reshape(-1, w.shape[1], 1, 1) for w in windows]

    def mean(self, probs: torch.Tensor) -> torch.Tensor:
        """(B * n * n, K) posteriors of :meth:`pixels` -> (B, K), weighted over each neighbourhood."""
        m = len(self.weights)
        return (probs.reshape(-1, m, probs.shape[-1]) * self.weights[None, :, None].to(probs)).sum(dim=1)


def centre_pixels(windows: List[np.ndarray]) -> np.ndarray:
    """(N, bands of all modalities) values at the window centres."""
    s = windows[0].shape[-1]
    return np.concatenate([w[:, :, s // 2, s // 2] for w in windows], axis=1).astype(np.float32)


def pixel_logistic_regression(labelled: np.ndarray, labels: np.ndarray, unlabelled: np.ndarray, k: int,
                              weight_decay: float = 1e-2, steps: int = 300, seed: int = 0) -> np.ndarray:
    """Posteriors (N_u, K) of a class-balanced, L2-regularised logistic regression on standardised bands.

    Fitted on the labelled pixels, standardised with the unlabelled pixels' mean and deviation.
    """
    mean = unlabelled.mean(axis=0, keepdims=True)
    std = unlabelled.std(axis=0, keepdims=True) + 1e-6
    x = torch.from_numpy((labelled - mean) / std)
    xu = torch.from_numpy((unlabelled - mean) / std)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    weights = torch.tensor(counts.sum() / (k * np.maximum(counts, 1)), dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    w = (0.01 * torch.randn(x.shape[1], k, generator=g)).requires_grad_()
    bias = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + bias, y, weight=weights) + weight_decay * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (xu @ w + bias).softmax(dim=1).numpy()


def pseudo_label_loss(strong_logits: torch.Tensor, teacher_probs: torch.Tensor, threshold: float):
    """FixMatch loss: cross-entropy to the teacher's hard label where its confidence reaches ``threshold``.

    Averaged over the whole unlabelled batch; also returns the fraction of pixels used.
    """
    conf, target = teacher_probs.max(dim=1)
    mask = (conf >= threshold).float()
    loss = (F.cross_entropy(strong_logits, target, reduction="none") * mask).mean()
    return loss, float(mask.mean())
