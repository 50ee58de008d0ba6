"""Unsupervised masked-diffusion pretraining of the stems, shared encoder and decoders."""
from __future__ import annotations

from typing import List

import numpy as np
import torch

from .augment import dihedral
from .config import PretrainConfig
from .diffusion import NoiseSchedule
from .model import DiffCLIP
from .progress import SILENT, Callback
from .training import batches, make_optimizer, optimise, seeded_generator


def masked_diffusion_loss(model: DiffCLIP, windows: List[torch.Tensor], schedule: NoiseSchedule,
                          cfg: PretrainConfig, generator: torch.Generator) -> torch.Tensor:
    """MSE(visible) + w * MSE(masked) of the predicted clean windows, summed over modalities.

    The visible pixels of the clean window are embedded into tokens and noised by q(x_t | x_0)
    with one random t per sample (embedded in the class token). As in a masked autoencoder,
    the band reduction and the encoder see the visible tokens only (a third of their work at
    a mask ratio of 0.7); the modality's learnable mask token fills the masked positions of
    the encoder's output before the decoder. Noising tokens rather than raw bands keeps the
    band reduction trained on clean spectra, as it sees them at prediction time.
    """
    b, window = windows[0].shape[0], windows[0].shape[-1]
    n = window * window
    device = windows[0].device
    t = schedule.sample_timesteps(b, generator).to(device)
    total = windows[0].new_zeros(())
    # at least one token masked and one visible; two visible for a batch of one (the stem's batch norm)
    n_masked = max(1, min(n - (1 if b > 1 else 2), int(round(cfg.mask_ratio * n))))
    for m, x0 in enumerate(windows):
        order = torch.rand(b, n, generator=generator).argsort(dim=1).to(device)
        visible = order[:, n_masked:].sort(dim=1).values
        mask = torch.ones(b, n, dtype=torch.bool, device=device).scatter_(1, visible, False)
        pixels = torch.gather(x0.flatten(2), 2, visible[:, None].expand(-1, x0.shape[1], -1))
        clean = model.tokens_from_windows(m, pixels[..., None])     # the stem works per pixel: visible ones only
        noise = torch.randn(clean.shape, generator=generator).to(device)
        features = model.encoder(schedule.q_sample(clean, t, noise), window, t, keep=visible)
        full = model.stems[m].mask_token.to(features.dtype).expand(b, n, -1).clone()
        full.scatter_(1, visible[..., None].expand(-1, -1, full.shape[2]), features[:, 1:])
        recon = model.decoders[m](torch.cat([features[:, :1], full], dim=1), window)
        target = x0.flatten(2).transpose(1, 2)
        err = ((recon - target) ** 2).mean(dim=2)
        total = total + err[~mask].mean() + cfg.masked_loss_weight * err[mask].mean()
    return total


class _Loss(torch.nn.Module):
    """The pretraining loss as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, model: DiffCLIP, schedule: NoiseSchedule, cfg: PretrainConfig):
        super().__init__()
        self.model, self.schedule, self.cfg = model, schedule, cfg

    def forward(self, windows: List[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        return masked_diffusion_loss(self.model, windows, self.schedule, self.cfg, generator)


def _world():
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def pretrain(model: DiffCLIP, windows: List[np.ndarray], cfg: PretrainConfig, device: torch.device,
             callback: Callback = SILENT) -> List[float]:
    """Train on unlabelled windows (one (N, bands, s, s) array per modality); returns the mean loss per epoch.

    Under torchrun (an initialised process group) every rank takes its share of each batch
    and DistributedDataParallel averages the gradients, so the ranks keep identical weights;
    every rank must be given the same windows.
    """
    rank, ranks = _world()
    generator = seeded_generator(cfg.seed)
    generator.manual_seed(cfg.seed + 1000003 * rank)   # each rank its own noise and masks
    rng = np.random.default_rng(cfg.seed)              # the same batches on every rank
    schedule = NoiseSchedule(cfg.timesteps)
    n = windows[0].shape[0]
    steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    unused = ("text.", "image_projection", "logit_scale", "linear_head")
    params = [p for name, p in model.named_parameters() if not name.startswith(unused)]
    opt, sched = make_optimizer(params, cfg.lr, cfg.weight_decay, cfg.epochs * steps_per_epoch)
    data = [torch.from_numpy(w) for w in windows]
    model.to(device).train()
    loss_fn = _Loss(model, schedule, cfg)
    frozen = []
    if ranks > 1:
        frozen = [p for name, p in model.named_parameters() if name.startswith(unused) and p.requires_grad]
        for p in frozen:   # DDP reduces the gradients of every trainable parameter the loss uses
            p.requires_grad_(False)
        loss_fn = torch.nn.parallel.DistributedDataParallel(loss_fn, device_ids=[device.index] if device.type == "cuda" else None)
    history = []
    try:
        for epoch in range(cfg.epochs):
            losses = []
            for idx in batches(n, cfg.batch_size, rng):
                callback.check()
                if len(idx) < ranks:   # too few for every rank (a last, short batch): all ranks skip it
                    continue
                idx_t = torch.from_numpy(idx[rank::ranks])
                batch = dihedral([d[idx_t] for d in data], generator)
                losses.append(optimise(opt, sched, loss_fn([b.to(device) for b in batch], generator)))
            mean = torch.tensor(float(np.mean(losses)))
            if ranks > 1:
                torch.distributed.all_reduce(mean)
                mean /= ranks
            history.append(float(mean))
            callback.progress("pretraining", (epoch + 1) / cfg.epochs, f"epoch {epoch + 1}/{cfg.epochs}, loss {history[-1]:.4f}")
    finally:
        for p in frozen:
            p.requires_grad_(True)
    model.eval()
    return history
