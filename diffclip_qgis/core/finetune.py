"""Few-shot, language-driven fine-tuning (CLIP loss against one prompt per class)."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .augment import dihedral
from .config import FinetuneConfig
from .model import DiffCLIP
from .progress import SILENT, Callback
from .tokenizer import encode
from .training import batches, make_optimizer, optimise, seeded_generator


def clip_loss(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP loss against the K unique class prompts.

    Image -> text: cross-entropy over the K prompts (class-balanced). Text -> image: every
    prompt present in the batch treats all images of its class as positives (soft targets),
    so two samples of one class are never pushed apart, unlike the reference's arange targets.
    """
    image_to_text = F.cross_entropy(logits, labels, weight=class_weights)
    onehot = F.one_hot(labels, logits.shape[1]).t().float()  # (K, B)
    present = onehot.sum(dim=1) > 0
    targets = onehot[present] / onehot[present].sum(dim=1, keepdim=True)
    text_to_image = -(targets * F.log_softmax(logits.t()[present], dim=1)).sum(dim=1).mean()
    return 0.5 * (image_to_text + text_to_image)


def prompt_tokens(model: DiffCLIP, prompts: Sequence[str], device: torch.device):
    """Token ids (K, L) and lengths (K,) of the prompts, L = the longest prompt.

    The padding after the longest prompt is cut off: attention in the text encoder is causal
    and each embedding is read at its prompt's last token, so it cannot change the result.
    """
    ids, lengths = encode(prompts, model.cfg.vocab_size, model.cfg.context_length)
    used = int(lengths.max()) if len(prompts) else 0
    return ids[:, :used].to(device), lengths.to(device)


def epoch_count(cfg: FinetuneConfig, steps_per_epoch: int) -> int:
    """``cfg.epochs``, or fewer when they would take more than ``cfg.max_steps`` optimiser steps (never less than one)."""
    if cfg.max_steps is None:
        return cfg.epochs
    return max(1, min(cfg.epochs, cfg.max_steps // steps_per_epoch))


def finetune(model: DiffCLIP, windows: List[np.ndarray], labels: np.ndarray, prompts: Sequence[str],
             cfg: FinetuneConfig, device: torch.device, callback: Callback = SILENT) -> List[float]:
    """Fine-tune on labelled windows; ``labels`` are 0..K-1 indices into ``prompts``. Returns loss per epoch."""
    generator = seeded_generator(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    k = len(prompts)
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    if (counts == 0).any():
        missing = [i for i in range(k) if counts[i] == 0]
        raise ValueError(f"Classes {missing} have no training samples; every class needs at least one.")
    if cfg.head == "linear":
        model.set_linear_head(k)
    model.to(device).train()
    class_weights = torch.tensor(counts.sum() / (k * counts), dtype=torch.float32, device=device)
    sample_weights = None if counts.max() <= 2 * counts.min() else 1.0 / counts[labels]
    ids, lengths = prompt_tokens(model, prompts, device)
    params = [p for name, p in model.named_parameters() if not name.startswith("decoders.")]
    n = len(labels)
    steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    epochs = epoch_count(cfg, steps_per_epoch)
    opt, sched = make_optimizer(params, cfg.lr, cfg.weight_decay, epochs * steps_per_epoch)
    data = [torch.from_numpy(w) for w in windows]
    y = torch.from_numpy(labels)
    history = []
    for epoch in range(epochs):
        losses = []
        for idx in batches(n, cfg.batch_size, rng, sample_weights):
            callback.check()
            idx_t = torch.from_numpy(idx)
            batch = [d[idx_t] for d in data]
            if cfg.augment:
                batch = dihedral(batch, generator)
            image = model.embed_windows([b.to(device) for b in batch])
            text = None if cfg.head == "linear" else model.text_embedding(ids, lengths)
            logits = model.logits(image, text)
            target = y[idx_t].to(device)
            if cfg.head == "linear":
                loss = F.cross_entropy(logits, target, weight=class_weights)
            else:
                loss = clip_loss(logits, target, class_weights)
            losses.append(optimise(opt, sched, loss))
        history.append(float(np.mean(losses)))
        callback.progress("fine-tuning", (epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}, loss {history[-1]:.4f}")
    model.eval()
    return history
