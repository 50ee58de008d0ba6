"""From a pixel source to normalised tiles and per-pixel windows.

Every path (training windows, fast tiled prediction, naive reference prediction) reads
through :func:`read_tile`, so they see exactly the same normalised, edge-padded values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .normalize import BandStats, fit_stats, usable_bands
from .progress import SILENT, Callback
from .source import ModalityInfo, PixelSource

TILE = 256
# Random pixels for statistics (noise share, unlabelled windows, class proportions, pretraining)
# come from at most this many random tiles: reading every tile of a large raster for 4000 pixels
# would cost a pass over the whole raster per statistic.
SAMPLE_TILES = 64
# Band statistics come from at most this many pixels: percentiles of all 24 tiles' pixels in
# float64 took 0.6 GB at 64 bands (2 GB at 224); the demo and the shared scenes have fewer.
STATS_PIXELS = 65536


class InputError(ValueError):
    """Input data that cannot be used; the message names the problem and the fix."""


@dataclass
class Tile:
    """Normalised modalities of one tile with a halo: arrays (bands, rows + 2*pad, cols + 2*pad), NaN -> 0."""

    row0: int
    col0: int
    rows: int
    cols: int
    pad: int
    arrays: List[np.ndarray]
    finite: np.ndarray  # (rows + 2*pad, cols + 2*pad) True where every used band of every modality is finite

    @property
    def valid(self) -> np.ndarray:
        """(rows, cols) validity of the tile's own pixels."""
        return self.finite[self.pad:self.pad + self.rows, self.pad:self.pad + self.cols]


def iter_boxes(height: int, width: int, tile: int = TILE) -> Iterator[Tuple[int, int, int, int]]:
    """(row0, col0, rows, cols) boxes tiling the grid in row-major order."""
    for r in range(0, height, tile):
        for c in range(0, width, tile):
            yield r, c, min(tile, height - r), min(tile, width - c)


def read_tile(source: PixelSource, stats: Sequence[BandStats], row0: int, col0: int,
              rows: int, cols: int, pad: int) -> Tile:
    """Read a box plus a halo of ``pad`` pixels, normalise it and edge-pad beyond the grid.

    A source with ``margins`` (top, left, bottom, right) can serve pixels that far outside
    its box (a subset of a larger raster): the halo then holds real neighbours.
    """
    top, left, bottom, right = getattr(source, "margins", (0, 0, 0, 0))
    r0, c0 = max(-top, row0 - pad), max(-left, col0 - pad)
    r1, c1 = min(source.height + bottom, row0 + rows + pad), min(source.width + right, col0 + cols + pad)
    raw = source.read(r0, c0, r1 - r0, c1 - c0)
    widths = ((0, 0), (r0 - (row0 - pad), row0 + rows + pad - r1), (c0 - (col0 - pad), col0 + cols + pad - c1))
    arrays, valid = [], np.ones((rows + 2 * pad, cols + 2 * pad), dtype=bool)
    for x, st in zip(raw, stats):
        y = st.apply(x)
        y = np.pad(y, widths, mode="edge") if any(w for pair in widths for w in pair) else y
        finite = np.isfinite(y)
        valid &= finite.all(axis=0)
        arrays.append(np.where(finite, y, 0.0).astype(np.float32, copy=False))
    return Tile(row0, col0, rows, cols, pad, arrays, valid)


def fit_input_stats(source: PixelSource, infos: Optional[Sequence[ModalityInfo]] = None,
                    max_tiles: int = 24, tile: int = 128, max_pixels: int = STATS_PIXELS,
                    callback: Callback = SILENT) -> List[BandStats]:
    """Choose usable bands and robust statistics per modality from tiles spread over the grid.

    While a band has no finite value in those tiles (an input covering part of the scene), up to three
    times as many more tiles, in random order, are read. Bands without any finite value then, or flagged
    bad in the metadata, are dropped with a log line. When the tiles hold more than ``max_pixels``
    pixels, a uniform random sample of their usable pixels is used.
    """
    boxes = list(iter_boxes(source.height, source.width, tile))
    spread = sorted(set(np.linspace(0, len(boxes) - 1, min(max_tiles, len(boxes))).round().astype(int).tolist()))
    taken = set(spread)
    more = [i for i in np.random.default_rng(1).permutation(len(boxes)).tolist() if i not in taken]
    order = [boxes[i] for i in spread + more[:3 * max_tiles]]
    sample = sum(h * w for _, _, h, w in order) > max_pixels
    rng = np.random.default_rng(0)
    per_modality = [[] for _ in source.band_counts]
    keys = [np.empty(0) for _ in source.band_counts]   # random keys of the pixels kept, when sampling
    has_data = [np.zeros(b, dtype=bool) for b in source.band_counts]
    flagged = [np.asarray(info.bad_bands, dtype=bool) if infos and info.bad_bands is not None
               and len(info.bad_bands) == b else np.zeros(b, dtype=bool)
               for info, b in zip(infos or [None] * len(has_data), source.band_counts)]
    for i, (r, c, h, w) in enumerate(order):
        if i >= len(spread) and all((d | f).all() for d, f in zip(has_data, flagged)):
            break
        for m, x in enumerate(source.read(r, c, h, w)):
            x = x.reshape(x.shape[0], -1)
            finite = np.isfinite(x)
            has_data[m] |= finite.any(axis=1)
            if not sample:
                per_modality[m].append(x)
                continue
            # A uniform random sample of the usable pixels of all tiles so far: the max_pixels smallest random keys.
            usable = finite[usable_bands(finite.any(axis=1), flagged[m])].all(axis=0) & finite.any(axis=0)
            pixels = np.concatenate(per_modality[m] + [x[:, usable]], axis=1)
            keys[m] = np.concatenate([keys[m], rng.random(int(usable.sum()))])
            if len(keys[m]) > max_pixels:
                keep = np.argpartition(keys[m], max_pixels)[:max_pixels]
                pixels, keys[m] = pixels[:, keep], keys[m][keep]
            per_modality[m] = [pixels]
    stats = []
    for m, chunks in enumerate(per_modality):
        pixels = np.concatenate(chunks, axis=1)
        info = infos[m] if infos else None
        name = info.name if info else f"modality {m + 1}"
        bands = usable_bands(has_data[m], flagged[m])
        dropped = [b + 1 for b in range(pixels.shape[0]) if b not in bands]
        if not bands:
            raise InputError(f"{name}: every band is nodata (or flagged bad). Check the nodata value and the file.")
        if dropped:
            callback.log(f"{name}: dropped {len(dropped)} band(s) that are empty or flagged bad: {number_ranges(dropped)}.")
        pixels = pixels[:, np.isfinite(pixels[bands]).all(axis=0)]
        if pixels.shape[1] == 0:
            raise InputError(f"{name}: no pixel has valid values in all bands. Check the nodata value and the file.")
        stats.append(fit_stats(pixels, bands))
    return stats


def number_ranges(numbers: List[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    out, start = [], numbers[0]
    for prev, cur in zip(numbers, numbers[1:] + [None]):
        if cur != prev + 1:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(out)


def window_offsets(window: int) -> Tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of a window's pixels, row-major, relative to its centre."""
    r = window // 2
    dy, dx = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
    return dy.ravel(), dx.ravel()


def extract_windows(source: PixelSource, stats: Sequence[BandStats], rows: np.ndarray, cols: np.ndarray,
                    window: int, tile: int = TILE, valid_at: Sequence[Tuple[int, int]] = ((0, 0),)
                    ) -> Tuple[List[np.ndarray], np.ndarray]:
    """Windows around pixels: one (N, bands, window, window) array per modality (nodata reads as 0), and whether
    the pixels at the ``valid_at`` (row, column) offsets from the centre are all valid (N,): the centre by default.

    Reads tile by tile, so only tiles holding requested pixels are read.
    """
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    outside = (rows < 0) | (rows >= source.height) | (cols < 0) | (cols >= source.width)
    if outside.any():
        raise InputError(f"{int(outside.sum())} pixel position(s) lie outside the {source.width} x {source.height} px "
                         f"grid, e.g. row {int(rows[outside][0])}, column {int(cols[outside][0])}. Drop samples "
                         "outside the raster.")
    if window > min(source.height, source.width) and window > 1:
        raise InputError(
            f"The {window} x {window} window is larger than the raster ({source.width} x {source.height} px). "
            "Choose a smaller window."
        )
    n, pad = len(rows), window // 2
    out = [np.zeros((n, len(st.bands), window, window), np.float32) for st in stats]
    valid = np.zeros(n, dtype=bool)
    tile_of = (rows // tile) * ((source.width + tile - 1) // tile) + cols // tile
    dy, dx = window_offsets(window)
    for t in np.unique(tile_of):
        idx = np.flatnonzero(tile_of == t)
        r0, c0 = int(rows[idx[0]] // tile * tile), int(cols[idx[0]] // tile * tile)
        h, w = min(tile, source.height - r0), min(tile, source.width - c0)
        tl = read_tile(source, stats, r0, c0, h, w, pad)
        lr, lc = rows[idx] - r0, cols[idx] - c0
        yy = (lr[:, None] + pad + dy[None]).reshape(-1)
        xx = (lc[:, None] + pad + dx[None]).reshape(-1)
        valid[idx] = np.all([tl.finite[lr + pad + oy, lc + pad + ox] for oy, ox in valid_at], axis=0)
        for m, a in enumerate(tl.arrays):
            out[m][idx] = a[:, yy, xx].reshape(a.shape[0], len(idx), window, window).transpose(1, 0, 2, 3)
    return out, valid


def sample_valid_pixels(source: PixelSource, stats: Sequence[BandStats], count: int, seed: int = 0,
                        attempts: int = 6, max_tiles: Optional[int] = SAMPLE_TILES) -> Tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` distinct random pixels that are valid in every modality (rows, cols).

    On a raster of more than ``max_tiles`` tiles they come from ``max_tiles`` random tiles (drawn by
    area), so only those are read, unless even many candidates there give fewer than half of ``count``;
    ``None`` draws from the whole raster.
    """
    rng = np.random.default_rng(seed)
    total = source.height * source.width
    boxes = np.array(list(iter_boxes(source.height, source.width, TILE)), dtype=np.int64)
    if max_tiles is not None and len(boxes) > max_tiles:
        area = boxes[:, 2] * boxes[:, 3]
        boxes = boxes[rng.choice(len(boxes), size=max_tiles, replace=False, p=area / area.sum())]
        area = boxes[:, 2] * boxes[:, 3]
        total = int(area.sum())
    else:
        boxes = None

    def candidates(n: int) -> np.ndarray:
        if boxes is None:
            return rng.choice(total, size=min(total, n), replace=False)
        r, c, h, w = boxes[rng.choice(len(boxes), size=min(total, n), p=area / total)].T
        return np.unique((r + rng.integers(0, h)) * source.width + c + rng.integers(0, w))

    chosen = np.empty(0, dtype=np.int64)
    valid_share = 1.0   # of the candidates so far; in the tiles drawn, more candidates cost no more reads
    for _ in range(attempts):
        need = count - len(chosen)
        if need <= 0:
            break
        n = 2 * need + 16 if boxes is None else int(min(50 * count, 2 * need / max(valid_share, 1e-4) + 16))
        cand = np.setdiff1d(candidates(n), chosen)
        _, ok = extract_windows(source, stats, cand // source.width, cand % source.width, 1)
        valid_share = float(ok.mean()) if len(ok) else 0.0
        chosen = np.concatenate([chosen, rng.permutation(cand[ok])[:need]])
    if boxes is not None and len(chosen) < count // 2:   # the tiles drawn are nearly all nodata: the whole raster then
        return sample_valid_pixels(source, stats, count, seed, attempts, max_tiles=None)
    if len(chosen) == 0:
        raise InputError("No valid pixel found in the inputs: every pixel is nodata in at least one modality.")
    chosen = np.sort(chosen)
    return chosen // source.width, chosen % source.width
