"""Deterministic, tiled, batched prediction.

The fast path never builds windows of the raw bands: each modality's band reduction and
token embedding run once per tile, and windows are gathered from that reduced map.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch

from .checkpoint import check_inputs
from .device import bf16_native
from .finetune import prompt_tokens
from .progress import SILENT, Callback
from .source import PixelSource
from .trained import TrainedModel
from .windows import TILE, Tile, extract_windows, iter_boxes, read_tile, window_offsets

CPU_BATCH, CUDA_BATCH = 1024, 16384
# On a CPU a batch's activations should stay near the caches: about this many tokens per batch
# (window 3: 1024 windows, 5: 512, 7: 256, 11: 128). At window 11 that ran 1.6 to 3x faster than
# batches of 1024 windows, at window 5 within 10 % of the best size (`make bench`, throughput).
CPU_TOKENS = 16384


def default_batch(device: torch.device, window: int) -> int:
    """Windows per batch: fixed on CUDA (halved on out-of-memory); on a CPU a power of two near CPU_TOKENS tokens."""
    if device.type == "cuda":
        return CUDA_BATCH
    per_window = window * window + 1
    return max(16, min(CPU_BATCH, 1 << (CPU_TOKENS // per_window).bit_length() - 1))


class Predictor:
    """Applies a fine-tuned model to pixel sources; the same inputs give the same outputs."""

    def __init__(self, trained: TrainedModel, device: torch.device, batch_size: Optional[int] = None,
                 precision: str = "auto"):
        """``precision`` ``auto``: bfloat16 where the device computes it natively (99.9 % of the demo's pixels
        get the fp32 class), else float32; ``fp32``: always float32."""
        if not trained.is_classifier:
            raise ValueError("This model is a pretrained encoder without classes: fine-tune it first (Few-shot Classify).")
        if precision not in ("auto", "fp32"):
            raise ValueError(f"Unknown precision {precision!r}: use 'auto' or 'fp32'.")
        self.trained, self.device = trained, device
        self.bf16 = precision == "auto" and bf16_native(device)
        self.network = trained.network.to(device).eval()
        self.window = trained.window
        self.batch_size = batch_size or default_batch(device, self.window)
        self.class_ids = np.array([c.id for c in trained.classes], dtype=np.int64)
        self.text = class_text(self.network, [c.prompt for c in trained.classes], device)

    def _autocast(self):
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _scores(self, class_tokens: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        logits = self.network.logits(self.network.image_embedding(class_tokens), self.text).float()
        conf, best = logits.softmax(dim=1).max(dim=1)
        return best, conf

    @torch.inference_mode()
    def predict_tile(self, tile: Tile, callback: Callback = SILENT) -> Tuple[np.ndarray, np.ndarray]:
        """Class ids (rows, cols; 0 = nodata) and confidence (NaN where nodata) of one tile.

        Cancellation is checked before every batch, so a slow model stops within one batch.
        """
        s, pad = self.window, tile.pad
        net = self.network
        with self._autocast():   # per-pixel token maps, (pixels, dim): windows gather whole rows of them
            maps = [net.stems[m](torch.from_numpy(a).to(self.device)[None])[0].flatten(1).t().contiguous()
                    for m, a in enumerate(tile.arrays)]
        width = tile.cols + 2 * pad
        dy, dx = window_offsets(s)
        offsets = torch.from_numpy(dy * width + dx).to(self.device)
        yy, xx = np.nonzero(tile.valid)
        centres = torch.from_numpy((yy + pad) * width + (xx + pad)).to(self.device)
        best = torch.empty(len(centres), dtype=torch.long, device=self.device)
        conf = torch.empty(len(centres), dtype=torch.float32, device=self.device)
        start = 0
        while start < len(centres):
            callback.check()
            stop = min(len(centres), start + self.batch_size)
            try:
                idx = centres[start:stop, None] + offsets[None]
                with self._autocast():
                    cls = [net.encoder.class_token(mp[idx], s) for mp in maps]
                    best[start:stop], conf[start:stop] = self._scores(cls)
                start = stop
            except torch.cuda.OutOfMemoryError:
                if self.batch_size == 1:
                    raise
                self.batch_size //= 2
                torch.cuda.empty_cache()
        return self._to_grids(tile, yy, xx, best, conf)

    def _to_grids(self, tile: Tile, yy, xx, best: torch.Tensor, conf: torch.Tensor):
        ids = np.zeros((tile.rows, tile.cols), dtype=np.int64)
        confidence = np.full((tile.rows, tile.cols), np.nan, dtype=np.float32)
        ids[yy, xx] = self.class_ids[best.cpu().numpy()]
        confidence[yy, xx] = conf.cpu().numpy()
        return ids, confidence

    def iter_tiles(self, source: PixelSource, tile: int = TILE, callback: Callback = SILENT,
                   shard: Tuple[int, int] = (0, 1)) -> Iterator[Tuple[int, int, np.ndarray, np.ndarray]]:
        """(row0, col0, class ids, confidence) per tile; memory is bounded by the tile size.

        ``shard = (rank, count)`` yields only every count-th tile from the rank-th, so that
        ``count`` processes classify a raster together.
        """
        check_inputs(self.trained, source.band_counts)
        rank, count = shard
        boxes = list(iter_boxes(source.height, source.width, tile))[rank::count]
        for i, (r, c, h, w) in enumerate(boxes):
            callback.check()
            ids, conf = self.predict_tile(read_tile(source, self.trained.stats, r, c, h, w, self.window // 2), callback)
            yield r, c, ids, conf
            callback.progress("classifying", (i + 1) / len(boxes), f"tile {i + 1}/{len(boxes)}")

    def predict(self, source: PixelSource, tile: int = TILE, callback: Callback = SILENT) -> Tuple[np.ndarray, np.ndarray]:
        """Whole-grid class ids and confidence (for rasters that fit in memory)."""
        ids = np.zeros((source.height, source.width), dtype=np.int64)
        conf = np.full((source.height, source.width), np.nan, dtype=np.float32)
        for r, c, t_ids, t_conf in self.iter_tiles(source, tile, callback):
            ids[r:r + t_ids.shape[0], c:c + t_ids.shape[1]] = t_ids
            conf[r:r + t_ids.shape[0], c:c + t_ids.shape[1]] = t_conf
        return ids, conf

    @torch.inference_mode()
    def predict_pixels(self, source: PixelSource, rows: np.ndarray, cols: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Reference (naive) path: build each pixel's window from the bands, then run the whole network.

        Slow; used to check the fast path and to measure its speed-up.
        """
        check_inputs(self.trained, source.band_counts)
        windows, valid = extract_windows(source, self.trained.stats, rows, cols, self.window)
        ids = np.zeros(len(rows), dtype=np.int64)
        conf = np.full(len(rows), np.nan, dtype=np.float32)
        keep = np.flatnonzero(valid)
        with self._autocast():
            best, c = classify_windows(self.network, self.text, [w[keep] for w in windows], self.batch_size)
        ids[keep] = self.class_ids[best]
        conf[keep] = c
        return ids, conf


@torch.inference_mode()
def class_text(network, prompts: List[str], device: torch.device) -> Optional[torch.Tensor]:
    """The prompts' text embeddings the class scores compare with; None for a linear head."""
    if network.linear_head is not None:
        return None
    return network.text_embedding(*prompt_tokens(network, prompts, device))


@torch.inference_mode()
def window_log_probs(network, text: Optional[torch.Tensor], windows: List[np.ndarray],
                     batch_size: int = CPU_BATCH) -> np.ndarray:
    """Log posteriors (N, K) for windows held in memory, one (N, bands, s, s) array per modality."""
    return window_scores(network, text, windows, batch_size)[0]


@torch.inference_mode()
def window_scores(network, text: Optional[torch.Tensor], windows: List[np.ndarray],
                  batch_size: int = CPU_BATCH) -> Tuple[np.ndarray, np.ndarray]:
    """Log posteriors (N, K) and image embeddings (N, D) for windows held in memory."""
    network.eval()
    device = next(network.parameters()).device
    logp, emb = [], []
    for i in range(0, windows[0].shape[0], batch_size):
        e = network.embed_windows([torch.from_numpy(w[i:i + batch_size]).to(device) for w in windows])
        logp.append(network.logits(e, text).float().log_softmax(dim=1).cpu())
        emb.append(e.float().cpu())
    if not logp:
        classes = text.shape[0] if text is not None else network.linear_head.out_features
        return np.empty((0, classes), np.float32), np.empty((0, 0), np.float32)
    return torch.cat(logp).numpy(), torch.cat(emb).numpy()


def classify_windows(network, text: Optional[torch.Tensor], windows: List[np.ndarray],
                     batch_size: int = CPU_BATCH) -> Tuple[np.ndarray, np.ndarray]:
    """Class indices (0..K-1) and confidences for windows held in memory, one array per modality."""
    log_probs = window_log_probs(network, text, windows, batch_size)
    return log_probs.argmax(axis=1), np.exp(log_probs.max(axis=1, initial=-np.inf))
