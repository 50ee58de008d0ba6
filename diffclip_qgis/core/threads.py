"""How many CPU threads torch's work may use (including the BLAS library that QGIS puts under it), and small
trainings side by side, one per thread.

QGIS links OpenBLAS into its executables, so inside QGIS (desktop and ``qgis_process``) torch's matrix
products resolve to that OpenBLAS, whose own thread pool ignores ``torch.set_num_threads`` and spins
between calls (``sched_yield``) on every core. The counts set here reach both.
"""
from __future__ import annotations

import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence, TypeVar

import torch

from .progress import Callback, Cancelled

Job, Result = TypeVar("Job"), TypeVar("Result")


def _global_openblas() -> Optional[ctypes.CDLL]:
    """The OpenBLAS among the process's global symbols (inside QGIS on Linux), else None."""
    try:
        process = ctypes.CDLL(None)
        process.openblas_set_num_threads.argtypes = [ctypes.c_int]
        process.openblas_get_num_threads.restype = ctypes.c_int
    except (OSError, TypeError, AttributeError):   # Windows has no global namespace; elsewhere none is loaded
        return None
    return process


_OPENBLAS = _global_openblas()


@contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` threads for torch, and for an OpenBLAS under it; then restore both counts."""
    before = torch.get_num_threads(), _OPENBLAS.openblas_get_num_threads() if _OPENBLAS is not None else None
    _set(count, count)
    try:
        yield
    finally:
        _set(*before)


def _set(torch_threads: int, openblas_threads: Optional[int]) -> None:
    torch.set_num_threads(torch_threads)
    if _OPENBLAS is not None and openblas_threads is not None:
        _OPENBLAS.openblas_set_num_threads(openblas_threads)


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run the block on one CPU thread (on the CPU; elsewhere nothing changes).

    Fine-tuning steps are small (a batch of 64 windows, a few to a few dozen tokens each): their time goes
    in per-operation overhead, which more threads raise, as every operation wakes the sleeping threads
    (``OMP_WAIT_POLICY=PASSIVE``). On 2 cores one thread fine-tunes the demo's 1 x 1 to 11 x 11 windows
    1.3 to 3 times as fast as two; pretraining's larger steps and classification keep every thread.
    """
    if device.type != "cpu":
        yield
        return
    with cpu_threads(1):
        yield


@contextmanager
def side_by_side(work: Callable[[Job, Callback], Result], jobs: Sequence[Job], device: torch.device,
                 cancelled: Callable[[], bool]) -> Iterator[Iterator[Result]]:
    """``work(job, callback)`` for every job, one per thread torch may use on the CPU (each on one thread, so a
    result does not depend on how many run at once; one at a time elsewhere); yields the results in job order.

    ``callback`` only answers whether to stop: when ``cancelled()`` says so, when a job fails, or when the block
    raises, the jobs still running stop at their next check. A failed job's own error is the one raised.
    """
    stop = threading.Event()
    errors: List[BaseException] = []
    in_job = Callback(cancelled=lambda: stop.is_set() or cancelled())

    def run(job: Job) -> Result:
        try:
            return work(job, in_job)
        except Cancelled:
            raise
        except BaseException as error:
            errors.append(error)
            stop.set()
            raise

    workers = min(len(jobs), torch.get_num_threads()) if device.type == "cpu" else 1
    with one_cpu_thread(device), ThreadPoolExecutor(max(1, workers)) as pool:   # new threads take the count set here
        try:
            yield pool.map(run, jobs)
        except BaseException:
            stop.set()
            if errors:
                raise errors[0] from None
            raise
