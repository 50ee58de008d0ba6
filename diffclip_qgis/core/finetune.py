"""Few-shot, language-driven fine-tuning (CLIP loss against one prompt per class)."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .augment import dihedral
from .config import FinetuneConfig
from .model import DiffCLIP
from .progress import SILENT, Callback
from .semisupervised import (DistributionAlignment, Neighbourhoods, centre_pixels, pixel_logistic_regression,
                             pseudo_label_loss, strong_view)
from .tokenizer import encode
from .threads import one_cpu_thread
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


def class_balance(labels: np.ndarray, k: int) -> Tuple[Optional[np.ndarray], np.ndarray]:
    """How every class gets the same weight in the labelled loss, once: (per-sample draw weights for the batches,
    or None for a plain shuffle; per-class loss weights).

    Counts more than 2x apart are balanced by drawing the batches (a rare class's few samples would otherwise
    sit in few batches with large weights); closer counts by weighting the loss.
    """
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    if counts.max() <= 2 * counts.min():
        return None, counts.sum() / (k * counts)
    return 1.0 / counts[labels], np.ones(k)


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
             cfg: FinetuneConfig, device: torch.device, callback: Callback = SILENT,
             unlabelled: Optional[List[np.ndarray]] = None) -> List[float]:
    """Fine-tune on labelled windows; ``labels`` are 0..K-1 indices into ``prompts``. Returns loss per epoch.

    With ``cfg.unlabelled`` and ``unlabelled`` windows (one array per modality; the same size, or at window 1
    the neighbourhoods their pseudo-labels are averaged over), they join training after a warm-up (see
    :mod:`.semisupervised`). On the CPU it runs on one
    thread (:func:`.threads.one_cpu_thread`).
    """
    with one_cpu_thread(device):
        return _finetune(model, windows, labels, prompts, cfg, device, callback, unlabelled)


def _finetune(model: DiffCLIP, windows: List[np.ndarray], labels: np.ndarray, prompts: Sequence[str],
              cfg: FinetuneConfig, device: torch.device, callback: Callback, unlabelled: Optional[List[np.ndarray]]
              ) -> List[float]:
    generator = seeded_generator(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    k = len(prompts)
    labels = np.asarray(labels, dtype=np.int64)
    missing = np.flatnonzero(np.bincount(labels, minlength=k) == 0).tolist()
    if missing:
        raise ValueError(f"Classes {missing} have no training samples; every class needs at least one.")
    if cfg.head == "linear":
        # drawn as from torch's global generator seeded above, but its own: folds fine-tune side by side
        model.set_linear_head(k, torch.Generator().manual_seed(cfg.seed))
    model.to(device).train()
    sample_weights, class_weights = class_balance(labels, k)
    class_weights = torch.tensor(class_weights, dtype=torch.float32, device=device)
    ids, lengths = prompt_tokens(model, prompts, device)
    params = [p for name, p in model.named_parameters() if not name.startswith("decoders.")]
    n = len(labels)
    steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    epochs = epoch_count(cfg, steps_per_epoch)
    data = [torch.from_numpy(w) for w in windows]
    y = torch.from_numpy(labels)

    def supervised_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if cfg.head == "linear":
            return F.cross_entropy(logits, target, weight=class_weights)
        return clip_loss(logits, target, class_weights)

    def text_embedding():
        return None if cfg.head == "linear" else model.text_embedding(ids, lengths)

    if cfg.unlabelled and unlabelled is not None and len(unlabelled[0]) > 0:
        history = _finetune_with_unlabelled(model, k, data, y, windows, labels, unlabelled, cfg, device, callback, rng,
                                            generator, params, epochs * steps_per_epoch, steps_per_epoch,
                                            sample_weights, supervised_loss, text_embedding)
        model.eval()
        return history
    opt, sched = make_optimizer(params, cfg.lr, cfg.weight_decay, epochs * steps_per_epoch)
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
            logits = model.logits(image, text_embedding())
            losses.append(optimise(opt, sched, supervised_loss(logits, y[idx_t].to(device))))
        history.append(float(np.mean(losses)))
        callback.progress("fine-tuning", (epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}, loss {history[-1]:.4f}")
    model.eval()
    return history


def _finetune_with_unlabelled(model, k: int, data, y, windows, labels, unlabelled, cfg: FinetuneConfig, device, callback,
                              rng, generator, params, supervised_steps: int, steps_per_epoch: int, sample_weights,
                              supervised_loss, text_embedding) -> List[float]:
    """Labelled steps, then labelled + pseudo-labelled unlabelled steps; loss per ``steps_per_epoch`` steps."""
    # The preset's schedule (with its step cap) is stretched to ``unlabelled_steps``; epochs set explicitly
    # (which lift the cap, config.set_finetune_epochs) are honoured as they are.
    total = supervised_steps if cfg.max_steps is None else max(supervised_steps, cfg.unlabelled_steps)
    warm = int(round(cfg.unlabelled_warmup * total))
    epochs = math.ceil(total / steps_per_epoch)   # progress counts epochs, the unit of the settings
    opt, sched = make_optimizer(params, cfg.lr, cfg.weight_decay, total)
    n, n_u = len(y), len(unlabelled[0])
    hoods = None
    if unlabelled[0].shape[-1] > windows[0].shape[-1]:   # window 1: pseudo-labels from each pixel's neighbourhood
        if windows[0].shape[-1] != 1:
            raise ValueError("Unlabelled neighbourhoods larger than the window are for window 1 only.")
        hoods = Neighbourhoods(unlabelled, cfg.pseudo_label_centre)
        unlabelled = hoods.centres()
    u_data = [torch.from_numpy(w) for w in unlabelled]
    teacher = None
    if cfg.pixel_teacher:
        pixels = unlabelled if hoods is None else [p.numpy() for p in hoods.pixels()]
        teacher = torch.from_numpy(pixel_logistic_regression(centre_pixels(windows), labels, centre_pixels(pixels),
                                                             k, seed=cfg.seed))
        teacher = teacher if hoods is None else hoods.mean(teacher)
    align = DistributionAlignment(k) if cfg.distribution_alignment else None

    def labelled_batches():
        while True:
            yield from batches(n, cfg.batch_size, rng, sample_weights)

    stream = labelled_batches()
    history, losses, used = [], [], []
    for step in range(total):
        callback.check()
        idx_t = torch.from_numpy(next(stream))
        batch = [d[idx_t] for d in data]
        if cfg.augment:
            batch = dihedral(batch, generator)
        target = y[idx_t].to(device)
        if step < warm:
            logits = model.logits(model.embed_windows([b.to(device) for b in batch]), text_embedding())
            loss = supervised_loss(logits, target)
        else:
            if step == warm and align is not None and cfg.alignment_target == "estimated":
                align.set_target(_estimated_shares(model, u_data, text_embedding, teacher, cfg, device))
            u_idx = torch.from_numpy(rng.choice(n_u, size=min(cfg.unlabelled_batch, n_u), replace=False))
            u_batch = [d[u_idx] for d in u_data]
            weak = dihedral(u_batch, generator) if hoods is None else hoods.pixels(u_idx)
            strong = strong_view(dihedral(u_batch, generator), generator)
            text = text_embedding()
            with torch.no_grad():
                probs = model.logits(model.embed_windows([w.to(device) for w in weak]),
                                     None if text is None else text.detach()).float().softmax(dim=1)
                probs = probs if hoods is None else hoods.mean(probs)
                if teacher is not None:
                    probs = probs * teacher[u_idx].to(probs) ** cfg.pixel_teacher_weight
                    probs = probs / probs.sum(dim=1, keepdim=True).clamp(min=1e-12)
                if align is not None:
                    probs = align(probs)
            joint = [torch.cat([b, s]).to(device) for b, s in zip(batch, strong)]
            logits = model.logits(model.embed_windows(joint), text)
            u_loss, frac = pseudo_label_loss(logits[len(target):], probs, cfg.unlabelled_threshold)
            loss = supervised_loss(logits[:len(target)], target) + cfg.unlabelled_weight * u_loss
            used.append(frac)
        losses.append(optimise(opt, sched, loss))
        if (step + 1) % steps_per_epoch == 0 or step + 1 == total:
            history.append(float(np.mean(losses)))
            losses = []
            callback.progress("fine-tuning", (step + 1) / total,
                              f"epoch {len(history)}/{epochs}, loss {history[-1]:.4f}"
                              + (f", pseudo-labelled {100 * used[-1]:.0f}% of unlabelled" if used else ""))
    return history


def _estimated_shares(model, u_data, text_embedding, teacher, cfg: FinetuneConfig, device) -> np.ndarray:
    """Class shares of the unlabelled windows, by EM on the (teacher-combined) posteriors of the model so far."""
    from .priors import estimate_class_priors  # priors -> infer -> finetune: imported here, not at the top
    model.eval()
    with torch.no_grad():
        text = text_embedding()
        probs = torch.cat([model.logits(model.embed_windows([d[i:i + 1024].to(device) for d in u_data]), text)
                           .float().softmax(dim=1).cpu() for i in range(0, len(u_data[0]), 1024)])
        if teacher is not None:
            probs = probs * teacher ** cfg.pixel_teacher_weight
            probs = probs / probs.sum(dim=1, keepdim=True).clamp(min=1e-12)
    model.train()
    return estimate_class_priors(np.log(probs.numpy().astype(np.float64) + 1e-12))
