"""Running a job on several processes or machines with ``torchrun`` (torch.distributed).

``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address; :func:`init_from_env`
joins the process group (gloo on CPU, NCCL on GPUs). Classification shards the raster's tiles
over the ranks (:func:`gather_tiles`); pretraining uses DistributedDataParallel (core.pretrain).
A single process (no torchrun) is rank 0 of 1 and needs none of this.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import timedelta
from typing import Iterable, Iterator, Tuple, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from ..core.files import temp_folder_beside
from ..core.windows import TILE, iter_boxes

Tile = Tuple[int, int, np.ndarray, np.ndarray]


def init_from_env(device_name: str = "auto") -> str:
    """Join the process group when started by torchrun; returns the device name this rank uses."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device_name
    cuda = device_name != "cpu" and torch.cuda.is_available()
    # Ranks wait for rank 0 while it trains alone (few-shot classification): allow long waits.
    dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=timedelta(hours=24))
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return "cpu" if device_name == "auto" else device_name


def leave(done: bool) -> None:
    """Leave the process group before the interpreter exits: a rank that exits with gloo's threads still running
    aborts ("terminate called without an active exception"), failing the whole torchrun. When the job is ``done``
    every rank waits for the others first; after an error it leaves at once (the others may never arrive)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if done:
        dist.barrier()
    dist.destroy_process_group()


def world() -> Tuple[int, int]:
    """(rank, number of processes): (0, 1) without torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


T = TypeVar("T")


def from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank (pickled; e.g. the classifier rank 0 trained)."""
    if world()[1] == 1:
        return value
    box = [value if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_tiles(own: Iterable[Tile], height: int, width: int, beside: str, tile: int = TILE) -> Iterator[Tile]:
    """Every rank's tiles, in row-major order, on rank 0; nothing on the other ranks.

    Each rank stores its tiles (``own``, from ``Predictor.iter_tiles(..., shard=world())``) in
    a shared folder beside the output; rank 0 then yields all of them and removes the folder.
    The folder must be on a file system every rank sees (the output's folder).
    """
    with ExitStack() as rank0:   # rank 0 makes the folder and removes it after the last barrier
        folder = from_main(rank0.enter_context(temp_folder_beside(beside, "parts")) if is_main() else None)
        try:
            for r, c, ids, conf in own:
                np.savez(os.path.join(folder, f"{r}_{c}.npz"), ids=ids, conf=conf)
            barrier()
            if is_main():
                for r, c, _, _ in iter_boxes(height, width, tile):
                    with np.load(os.path.join(folder, f"{r}_{c}.npz")) as part:
                        yield r, c, part["ids"], part["conf"]
        finally:
            barrier()
