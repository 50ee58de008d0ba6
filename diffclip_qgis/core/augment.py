"""Window augmentation: the 8 flips and 90-degree rotations, the same for every modality of a sample."""
from __future__ import annotations

from typing import List

import torch


def dihedral(windows: List[torch.Tensor], generator: torch.Generator) -> List[torch.Tensor]:
    """Apply one random dihedral transform per sample to (B, C, s, s) windows of every modality."""
    b = windows[0].shape[0]
    ops = torch.randint(0, 8, (b,), generator=generator)
    out = [w.clone() for w in windows]
    for op in range(1, 8):
        sel = (ops == op).nonzero().flatten()
        if len(sel) == 0:
            continue
        for w_out, w in zip(out, windows):
            x = w[sel]
            if op & 4:
                x = x.flip(-1)
            w_out[sel] = torch.rot90(x, op & 3, dims=(-2, -1))
    return out
