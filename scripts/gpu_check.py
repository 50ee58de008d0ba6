"""`make gpu-check`: the CUDA paths in one short run, one table, non-zero exit on any failure.

On a CUDA GPU (under 8 minutes): the CUDA unit tests; the paper preset end to end on the demo
scene (pretraining, few-shot fine-tuning, classification: time per phase and OA); classification
of a 1000 x 1000 px 64 + 2 band raster at the paper settings (px/s); fp32 against bf16 agreement
on the demo model; and a forced out-of-memory (memory fraction cap) that the classifier survives
by halving its batch. Without a GPU the same code runs at smoke size on the CPU and the
CUDA-only checks say they were skipped, so the script itself is tested on every machine.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from benchmark import _random_classifier, demo_scene, draw, scores, test_masks  # noqa: E402
from diffclip_qgis.core.config import get_preset  # noqa: E402
from diffclip_qgis.core.infer import Predictor  # noqa: E402
from diffclip_qgis.core.pipeline import fewshot_classifier, pretrain_encoder  # noqa: E402
from diffclip_qgis.core.source import ArraySource  # noqa: E402
from diffclip_qgis.gis.raster import SubsetSource  # noqa: E402

SKIP, PASS, FAIL = "skipped", "ok", "FAILED"


class Checks:
    def __init__(self):
        self.rows = []

    def run(self, name, function, *args):
        t0 = time.perf_counter()
        try:
            status, detail = function(*args)
        except Exception as e:  # noqa: BLE001 (every failure becomes a table row)
            traceback.print_exc()
            status, detail = FAIL, f"{e.__class__.__name__}: {e}"
        self.rows.append((name, status, detail, time.perf_counter() - t0))
        print(f"[{status}] {name}: {detail}", flush=True)

    def table(self) -> str:
        lines = ["| check | result | detail | seconds |", "|---|---|---|---|"]
        lines += [f"| {n} | {s} | {d} | {t:.1f} |" for n, s, d, t in self.rows]
        return "\n".join(lines)

    @property
    def failed(self) -> bool:
        return any(s == FAIL for _, s, _, _ in self.rows)


def cuda_unit_tests(cuda: bool):
    if not cuda:
        return SKIP, "no CUDA GPU: the CUDA unit tests skip themselves"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-k", "cuda", os.path.join(ROOT, "tests", "unit")],
                          capture_output=True, text=True, timeout=600)
    last = (proc.stdout.strip().splitlines() or ["no output"])[-1]
    return (PASS if proc.returncode == 0 else FAIL), last


def paper_end_to_end(device, scene, smoke: bool, state: dict):
    preset = get_preset("paper")
    if smoke:   # the same code at a size a CPU finishes in seconds
        preset.pretrain.epochs, preset.pretrain.sample_count, preset.finetune.epochs = 1, 64, 1
    else:
        preset.pretrain.epochs = int(os.environ.get("GPU_CHECK_PRETRAIN_EPOCHS", "20"))
    rows, cols, ids = draw(scene.gt, scene.classes, 8, seed=8)
    t0 = time.perf_counter()
    encoder = pretrain_encoder(scene.source, preset, device, scene.infos)
    t_pre = time.perf_counter() - t0
    preset.window = 11
    t0 = time.perf_counter()
    trained = fewshot_classifier(scene.source, rows, cols, ids, scene.classes, preset, device, scene.infos,
                                 pretrained=encoder)
    t_fine = time.perf_counter() - t0
    source = SubsetSource(scene.source, 0, 0, 24, 24) if smoke else scene.source
    t0 = time.perf_counter()
    pred, _ = Predictor(trained, device).predict(source)
    t_class = time.perf_counter() - t0
    state["trained"], state["source"] = trained, source
    gt = scene.gt[:source.height, :source.width]
    inside = (rows < source.height) & (cols < source.width)
    all_mask, _ = test_masks(gt, rows[inside], cols[inside])
    oa = scores(gt, pred, all_mask)["oa"] if all_mask.any() else float("nan")
    per_epoch = t_pre / max(1, preset.pretrain.epochs)
    return PASS, (f"pretrain {t_pre:.1f} s ({preset.pretrain.epochs} epochs, {per_epoch:.2f} s each: the paper's 400 "
                  f"would take {400 * per_epoch / 60:.1f} min), fine-tune {t_fine:.1f} s, classify {t_class:.1f} s "
                  f"({source.height * source.width} px), OA {oa:.1f} %" + (" (smoke size: OA not meaningful)" if smoke else ""))


def megapixel(device, smoke: bool):
    size = 32 if smoke else 1000
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((64, size, size), dtype=np.float32),
              rng.standard_normal((2, size, size), dtype=np.float32)]
    predictor = Predictor(_random_classifier(get_preset("paper").model, arrays, 11), device)
    predictor.predict(ArraySource([a[:, :32, :32] for a in arrays]))   # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    predictor.predict(ArraySource(arrays))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    goal = "" if smoke else (" (goal: under 5 s)" if seconds >= 5 else " (goal under 5 s: met)")
    status = FAIL if (not smoke and seconds >= 5) else PASS
    return status, f"{size} x {size} px in {seconds:.1f} s: {size * size / seconds:,.0f} px/s{goal}"


def bf16_agreement(device, state: dict, smoke: bool):
    trained, source = state.get("trained"), state.get("source")
    if trained is None:
        return SKIP, "no demo model (the end-to-end check failed)"
    bf16 = Predictor(trained, device)
    if not bf16.bf16:
        return SKIP, f"{device.type} has no native bf16: the classifier computes in fp32 there"
    fp32 = Predictor(trained, device, precision="fp32")
    a, _ = fp32.predict(source)
    b, _ = bf16.predict(source)
    valid = a > 0
    agree = 100.0 * float(np.mean(a[valid] == b[valid]))
    if smoke:   # a model trained for one epoch has near-ties everywhere: the goal is for a trained model
        return PASS, f"{agree:.2f} % of {int(valid.sum())} px agree (smoke-size model: not judged)"
    return (PASS if agree >= 99.5 else FAIL), f"{agree:.2f} % of {int(valid.sum())} px agree (goal 99.5 %)"


def forced_oom(device, state: dict):
    if device.type != "cuda":
        return SKIP, "no CUDA GPU: out-of-memory halving is a CUDA path"
    trained, source = state.get("trained"), state.get("source")
    if trained is None:
        return SKIP, "no demo model (the end-to-end check failed)"
    expected, _ = Predictor(trained, device).predict(source)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, 2e9 / total), device)   # about 2 GB
    try:
        predictor = Predictor(trained, device, batch_size=1 << 20)
        got, _ = predictor.predict(source)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    same = bool((got == expected).all())
    halved = predictor.batch_size < 1 << 20
    return (PASS if same and halved else FAIL), (f"batch 1048576 -> {predictor.batch_size} under a 2 GB cap, "
                                                 f"same map: {same}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "reports", "gpu_check.md"))
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name(0) if cuda else "no CUDA GPU: CPU at smoke size, CUDA-only checks skipped"
    print(f"Device: {name}; torch {torch.__version__}", flush=True)
    checks, state = Checks(), {}
    scene = demo_scene()
    checks.run("CUDA unit tests", cuda_unit_tests, cuda)
    checks.run("paper preset end to end on the demo", paper_end_to_end, device, scene, not cuda, state)
    checks.run("1 Mpx, 64 + 2 bands, paper settings", megapixel, device, not cuda)
    checks.run("fp32 vs bf16 agreement (demo model)", bf16_agreement, device, state, not cuda)
    checks.run("forced out-of-memory: batch halving", forced_oom, device, state)
    report = f"GPU check on {name} (torch {torch.__version__}), {time.strftime('%Y-%m-%d %H:%M')}\n\n{checks.table()}\n"
    print("\n" + report)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(report)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
