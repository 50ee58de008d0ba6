"""Benchmark: accuracy against classical baselines, fast-path speed, memory on large rasters.

Run with ``make bench`` (about 55 minutes on 2 CPU cores). Writes ``reports/benchmark.md`` and
``reports/benchmark.json``. Every method sees the same K-shot draws, so differences are
paired; each draw's encoder is pretrained once and reused for every shot count and ablation.
Few-label rows (``--skip few`` leaves them out): on every scene, 5 draws at 2 and 8 shots, the
`cpu` default (unlabelled pixels in fine-tuning; with few labels the window from the scene's
neighbour noise share) against the default before both and with each part switched off
(FEW_LABEL_METHODS; these draws pretrain nothing). Section "suggestions": a simulated user labels
the pixels `suggest` proposes or random ones, round after round (scripts/bench_suggest.py;
plot in ``reports/active_learning.png``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from typing import Dict, List, Tuple
from unittest import mock

import numpy as np
import torch
from osgeo import gdal
from scipy.ndimage import uniform_filter
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build"))
import diffclip_qgis  # noqa: E402
from diffclip_qgis.core import finetune as finetune_module, threads as threads_module  # noqa: E402
from diffclip_qgis.core.classes import ClassInfo, complete_classes, load_class_list  # noqa: E402
from diffclip_qgis.core.config import ModelConfig, get_preset  # noqa: E402
from diffclip_qgis.core.infer import Predictor, class_text  # noqa: E402
from diffclip_qgis.core.metrics import assess  # noqa: E402
from diffclip_qgis.core.model import DiffCLIP  # noqa: E402
from diffclip_qgis.core.normalize import BandStats  # noqa: E402
from diffclip_qgis.core.pipeline import fewshot_classifier, pretrain_encoder  # noqa: E402
from diffclip_qgis.core.pretrain import masked_diffusion_loss  # noqa: E402
from diffclip_qgis.core.diffusion import NoiseSchedule  # noqa: E402
from diffclip_qgis.core.training import make_optimizer, optimise  # noqa: E402
from diffclip_qgis.core.source import ArraySource  # noqa: E402
from diffclip_qgis.core.trained import ModalityMeta, TrainedModel  # noqa: E402
from diffclip_qgis.core.windows import (SAMPLE_TILES, STATS_PIXELS, extract_windows, fit_input_stats,  # noqa: E402
                                        sample_valid_pixels)
from diffclip_qgis.gis.raster import RasterStack, write_classification  # noqa: E402

gdal.UseExceptions()
DEMO = os.path.join(os.path.dirname(diffclip_qgis.__file__), "demo")  # of the plugin imported (build/ or source)
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
EXCLUSION_WINDOW = 11   # test pixels outside every training pixel's 11 x 11 window
SPATIAL_BASELINE_WINDOW = 5


@dataclass
class Scene:
    name: str
    source: object
    infos: list
    gt: np.ndarray
    classes: List[ClassInfo]
    arrays: List[np.ndarray] = field(default_factory=list)  # whole scene, for the SVM baselines


def load_scene(name: str, paths: List[str], gt: np.ndarray, classes: List[ClassInfo]) -> Scene:
    stack = RasterStack(paths)
    arrays = stack.read(0, 0, stack.height, stack.width)
    return Scene(name, ArraySource(arrays), stack.infos, gt, classes, arrays)


def demo_scene() -> Scene:
    gt = gdal.Open(os.path.join(DEMO, "demo_gt.tif")).ReadAsArray().astype(np.int64)
    classes = complete_classes(load_class_list(os.path.join(DEMO, "demo_classes.json")))
    return load_scene("demo (HSI + LiDAR)", [os.path.join(DEMO, "demo_hsi.tif"), os.path.join(DEMO, "demo_lidar.tif")], gt, classes)


def _labels_with_names(path: str):
    ds = gdal.Open(path)
    gdal.Info(ds)  # GDAL 3.6 loads category names from .aux.xml lazily
    gt = ds.ReadAsArray().astype(np.int64)
    names = ds.GetRasterBand(1).GetCategoryNames() or []
    ids = [int(v) for v in np.unique(gt) if v > 0]
    return gt, complete_classes([ClassInfo(i, names[i] if i < len(names) and names[i] else f"class {i}") for i in ids])


def shared_scene(folder: str, image: str, labels: str) -> Scene:
    gt, classes = _labels_with_names(os.path.join(SHARED, folder, labels))
    return load_scene(folder, [os.path.join(SHARED, folder, image)], gt, classes)


def enmap_scene() -> Scene:
    tiles = sorted(t for t in os.listdir(os.path.join(SHARED, "enmap_potsdam", "images")) if t.endswith(".tif"))
    vrt = "/vsimem/enmap_potsdam.vrt"   # in memory: nothing left behind in /tmp
    gdal.BuildVRT(vrt, [os.path.join(SHARED, "enmap_potsdam", "images", t) for t in tiles], srcNodata=-32768, VRTNodata=-32768)
    ref = gdal.Open(vrt)
    gt_ds = gdal.Warp("", os.path.join(SHARED, "enmap_potsdam", "enmap_landcover_unstyled.tif"), format="MEM",
                      outputBounds=_bounds(ref), width=ref.RasterXSize, height=ref.RasterYSize, resampleAlg="near")
    gt = gt_ds.ReadAsArray().astype(np.int64)
    gt[gt < 0] = 0
    names = {1: "roof", 2: "pavement", 3: "low vegetation", 4: "tree", 5: "soil", 6: "water"}
    classes = complete_classes([ClassInfo(int(i), names.get(int(i), f"class {i}")) for i in np.unique(gt) if i > 0])
    scene = load_scene("enmap_potsdam (VRT of 18 tiles)", [vrt], gt, classes)
    cube = scene.arrays[0]
    usable = np.isfinite(cube).any(axis=(1, 2))           # bad bands (all nodata) are dropped by the model too
    scene.gt[~np.isfinite(cube[usable]).all(axis=0)] = 0  # no reference where a pixel has nodata
    return scene


SCENES = {
    "demo": demo_scene,
    "indian_pines_subset": lambda: shared_scene("indian_pines_subset", "indian_pines_subset.tif", "indian_pines_subset_gt.tif"),
    "jasper_ridge": lambda: shared_scene("jasper_ridge", "jasper_ridge.tif", "jasper_ridge_gt.tif"),
    "enmap_potsdam": enmap_scene,
}
REAL_SCENES = ("indian_pines_subset", "jasper_ridge", "enmap_potsdam")
_loaded: Dict[str, Scene] = {}


def scene_by_key(key: str) -> Scene:
    """A scene, loaded once per process."""
    if key not in _loaded:
        _loaded[key] = SCENES[key]()
    return _loaded[key]


def _bounds(ds):
    g = ds.GetGeoTransform()
    return (g[0], g[3] + g[5] * ds.RasterYSize, g[0] + g[1] * ds.RasterXSize, g[3])


def draw(gt: np.ndarray, classes: List[ClassInfo], shots: int, seed: int):
    """K pixels per class (fewer where a class has fewer), row/col/class arrays."""
    rng = np.random.default_rng(seed)
    rows, cols, ids = [], [], []
    for c in classes:
        yy, xx = np.nonzero(gt == c.id)
        sel = rng.choice(len(yy), size=min(shots, len(yy)), replace=False)
        rows += list(yy[sel]); cols += list(xx[sel]); ids += [c.id] * len(sel)
    return np.array(rows), np.array(cols), np.array(ids)


def test_masks(gt: np.ndarray, rows, cols):
    """All other labelled pixels, and those outside every training pixel's window."""
    train = np.zeros(gt.shape, bool)
    train[rows, cols] = True
    near = uniform_filter(train.astype(np.float32), size=EXCLUSION_WINDOW, mode="constant") > 0
    labelled = gt > 0
    return labelled & ~train, labelled & ~near


def scores(gt, pred, mask) -> Dict[str, float]:
    a = assess(gt[mask], pred[mask])
    return {"oa": 100 * a.overall, "aa": 100 * a.average, "kappa": 100 * a.kappa}


def svm_features(scene: Scene, spatial: bool) -> np.ndarray:
    feats = []
    for a in scene.arrays:
        a = np.where(np.isfinite(a), a, np.nan)
        a = a[np.isfinite(a).any(axis=(1, 2))]
        a = np.where(np.isfinite(a), a, np.nanmean(a, axis=(1, 2), keepdims=True))
        feats.append(a)
        if spatial:
            feats.append(np.stack([uniform_filter(b, SPATIAL_BASELINE_WINDOW, mode="nearest") for b in a]))
    f = np.concatenate(feats)
    return f.reshape(f.shape[0], -1).T


def svm_predict(features: np.ndarray, scene: Scene, rows, cols, ids) -> np.ndarray:
    train = rows * scene.gt.shape[1] + cols
    svm = make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma="scale"))
    folds = int(min(3, np.bincount(ids)[np.bincount(ids) > 0].min()))
    if folds >= 2:
        model = GridSearchCV(svm, {"svc__C": [1, 10, 100, 1000]}, cv=StratifiedKFold(folds, shuffle=True, random_state=0))
    else:
        model = svm.set_params(svc__C=100)
    model.fit(features[train], ids)
    return model.predict(features).reshape(scene.gt.shape)


def method_predict(scene, encoder, preset_name, rows, cols, ids, ablation: str, seed: int, window="auto"):
    preset = get_preset(preset_name)
    preset.window = window
    preset.finetune.seed = seed
    pretrained = encoder
    if ablation == "no pretraining":
        pretrained, preset.pretrain.epochs = None, 0
    if ablation == "no text (linear head)":
        preset.finetune.head = "linear"
    if ablation in FEW_LABEL_METHODS:   # the `cpu` default (no pretraining), today's default before it, or a part off
        pretrained, preset.pretrain.epochs = None, 0
        ft = preset.finetune
        if ablation == "before (labels alone, window by CV)":
            ft.unlabelled, ft.window_from_scene = False, False
        elif ablation == "window by CV":
            ft.window_from_scene = False
        elif ablation == "no unlabelled pixels":
            ft.unlabelled = False
        elif ablation == "unlabelled, no pixel teacher":
            ft.pixel_teacher = False
        elif ablation == "unlabelled, equal-share alignment":
            ft.alignment_target = "uniform"
        elif ablation == "unlabelled, no alignment":
            ft.distribution_alignment = False
        elif ablation == "unlabelled, pixel alone (no neighbourhood)":
            ft.pseudo_label_neighbourhood = 1
    t0 = time.perf_counter()
    trained = fewshot_classifier(scene.source, rows, cols, ids, scene.classes, preset, torch.device("cpu"),
                                 scene.infos, pretrained=pretrained)
    pred, _ = Predictor(trained, torch.device("cpu")).predict(scene.source)
    return pred, trained.window, time.perf_counter() - t0, trained


# Few-label rows on every scene, 2 and 8 shots: the `cpu` default (unlabelled pixels in fine-tuning; with
# few labels the window from the scene's neighbour noise share), the default before both, and each part
# switched off (at 8 shots only the first three). None pretrains.
FEW_LABEL_METHODS = ("cpu default", "before (labels alone, window by CV)", "unlabelled, pixel alone (no neighbourhood)",
                     "window by CV", "no unlabelled pixels", "unlabelled, no pixel teacher",
                     "unlabelled, equal-share alignment", "unlabelled, no alignment")
FEW_LABEL_DRAWS = 5


@dataclass
class DrawJob:
    """One K-shot draw of one scene: its encoder is pretrained once and reused by every shot count and method."""
    scene: str
    draw: int
    shots: tuple
    methods: tuple
    fixed_windows: tuple = ()   # fixed window sizes compared with auto, at 8 shots


def accuracy_jobs(draws_main: int, draws_other: int, demo: bool, real: bool, few: bool) -> List[DrawJob]:
    """The draws of the demo scene (2, 8 and 20 shots), of the real scenes (8 shots) and the few-label rows
    of every scene (2 and 8 shots, no pretraining), longest first."""
    demo_methods = ("DiffCLIP", "no pretraining", "no text (linear head)", "SVM-RBF per pixel", "SVM-RBF bands + 5x5 mean")
    draws_other = min(draws_other, draws_main)
    jobs = [DrawJob("demo", d, (2, 8, 20), demo_methods, (3, 5, 7)) for d in range(draws_other)] if demo else []
    if real and os.path.isdir(SHARED):
        real_methods = ("DiffCLIP", "no pretraining", "SVM-RBF per pixel", "SVM-RBF bands + 5x5 mean")
        jobs += [DrawJob(key, d, (8,), real_methods) for key in REAL_SCENES for d in range(3)]
    few_scenes = (["demo"] + (list(REAL_SCENES) if os.path.isdir(SHARED) else [])) if few else []
    for shots, methods in ((2, FEW_LABEL_METHODS), (8, FEW_LABEL_METHODS[:3])):
        jobs += [DrawJob(key, d, (shots,), methods + ("SVM-RBF per pixel",)) for key in few_scenes
                 for d in range(FEW_LABEL_DRAWS)]
    if demo:
        jobs += [DrawJob("demo", d, (8,), demo_methods) for d in range(draws_other, draws_main)]
    return jobs


def run_draw(job: DrawJob, preset_name: str) -> Tuple[list, List[str]]:
    """Result rows and log lines of one draw."""
    scene = scene_by_key(job.scene)
    lines, rows_out = [], []
    preset = get_preset(preset_name)
    preset.pretrain.seed = job.draw
    t0 = time.perf_counter()
    encoder, pre_s = None, 0.0
    if any(not m.startswith("SVM") and m not in FEW_LABEL_METHODS for m in job.methods):
        encoder = pretrain_encoder(scene.source, preset, torch.device("cpu"), scene.infos)
        pre_s = time.perf_counter() - t0
        lines.append(f"[{scene.name}] draw {job.draw}: pretrained in {pre_s:.0f} s")
    for shots in job.shots:
        r, c, ids = draw(scene.gt, scene.classes, shots, seed=1000 * job.draw + shots)
        all_mask, far_mask = test_masks(scene.gt, r, c)
        runs = []
        chosen = None
        for m in job.methods:
            if m.startswith("SVM"):
                t1 = time.perf_counter()
                pred = svm_predict(svm_features(scene, "mean" in m), scene, r, c, ids)
                runs.append((m, pred, None, time.perf_counter() - t1))
                continue
            # ablations reuse the window the full method chose for this draw (no second search)
            window = "auto" if m == "DiffCLIP" or m in FEW_LABEL_METHODS else chosen
            pred, win, sec, trained = method_predict(scene, encoder, preset_name, r, c, ids, m, job.draw, window)
            chosen = chosen or win
            runs.append((m, pred, win, sec + (pre_s if m != "no pretraining" and m not in FEW_LABEL_METHODS else 0)))
            if m != "DiffCLIP":
                continue
            # the same classifier with every class equally likely (class proportions not followed)
            trained.network.set_class_bias(None)
            equal, _ = Predictor(trained, torch.device("cpu")).predict(scene.source)
            runs.append(("DiffCLIP, equal class proportions", equal, win, sec + pre_s))
            if shots != 8:
                continue
            for w in job.fixed_windows:
                if w == chosen:  # the same fine-tune as auto's final one: reuse it
                    runs.append((f"DiffCLIP, window {w}", pred, w, sec - trained.report["window_seconds"] + pre_s))
                    continue
                pred_w, win_w, sec_w, _ = method_predict(scene, encoder, preset_name, r, c, ids, m, job.draw, w)
                runs.append((f"DiffCLIP, window {w}", pred_w, win_w, sec_w + pre_s))
        for label, pred, win, sec in runs:
            row = {"scene": scene.name, "draw": job.draw, "shots": shots, "method": label, "window": win,
                   "seconds": sec, "all": scores(scene.gt, pred, all_mask), "far": scores(scene.gt, pred, far_mask),
                   "far_fraction": float(far_mask.sum() / max(1, all_mask.sum()))}
            rows_out.append(row)
            lines.append(f"  {shots}-shot {label:34s} win={win} OA {row['all']['oa']:.1f} AA {row['all']['aa']:.1f} "
                         f"kappa {row['all']['kappa']:.1f} (far OA {row['far']['oa']:.1f}) {sec:.0f} s")
    return rows_out, lines


def _single_threaded_worker() -> None:
    """Small networks run faster as one thread per process, several processes side by side."""
    torch.set_num_threads(1)


def run_in_workers(run, jobs: list, workers: int, log, done) -> list:
    """``run(job)`` -> (result, log lines) for every job, in ``workers`` single-threaded processes; every job
    is seeded, so results do not depend on ``workers``. Jobs have ``scene`` and ``draw`` (for the failure line).

    ``done(results)`` gets the results so far (in job order) after every job, so a failed job loses only itself.
    Returns the results.
    """
    finished: Dict[int, object] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_single_threaded_worker) as pool:
        futures = {pool.submit(run, job): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            job = jobs[futures[future]]
            try:
                result, lines = future.result()
            except Exception as e:  # noqa: BLE001 (report it, keep the other jobs)
                log(f"[{job.scene}] draw {job.draw} FAILED: {e.__class__.__name__}: {e}")
                continue
            for line in lines:
                log(line)
            finished[futures[future]] = result
            done([finished[i] for i in sorted(finished)])
    return [finished[i] for i in sorted(finished)]


def plain_forward(trained: TrainedModel, windows, batch: int = 1024) -> np.ndarray:
    """The reference's way: batches of windows through the whole network (every token of every block), fp32."""
    net, window = trained.network, trained.window
    text = class_text(net, [c.prompt for c in trained.classes], torch.device("cpu"))
    out = []
    with torch.inference_mode():
        for i in range(0, len(windows[0]), batch):
            batch_windows = [torch.from_numpy(w[i:i + batch]) for w in windows]
            cls = [net.encoder(net.tokens_from_windows(m, x), window)[:, 0] for m, x in enumerate(batch_windows)]
            out.append(net.logits(net.image_embedding(cls), text).argmax(1))
    return np.array([c.id for c in trained.classes])[torch.cat(out).numpy()]


def full_sequence_pretraining_loss(model: DiffCLIP, windows, schedule, cfg, generator) -> torch.Tensor:
    """The reference's way (this plugin's until 2026-12-01): the learnable mask token replaces the masked
    tokens at the encoder's input, so the encoder runs on every token of the window."""
    b, window = windows[0].shape[0], windows[0].shape[-1]
    n = window * window
    t = schedule.sample_timesteps(b, generator)
    total = windows[0].new_zeros(())
    n_masked = max(1, min(n - 1, int(round(cfg.mask_ratio * n))))
    for m, x0 in enumerate(windows):
        clean = model.tokens_from_windows(m, x0)
        tokens = schedule.q_sample(clean, t, torch.randn(clean.shape, generator=generator))
        masked = torch.rand(b, n, generator=generator).argsort(dim=1)[:, :n_masked]
        mask = torch.zeros(b, n, dtype=torch.bool).scatter_(1, masked, True)
        tokens = torch.where(mask[..., None], model.stems[m].mask_token.to(tokens.dtype), tokens)
        err = ((model.decoders[m](model.encoder(tokens, window, t), window) - x0.flatten(2).transpose(1, 2)) ** 2).mean(2)
        total = total + err[~mask].mean() + cfg.masked_loss_weight * err[mask].mean()
    return total


def pretraining_speed(preset_name: str, log) -> dict:
    """Pretraining steps (the preset's batch and window, 64 + 2 bands) per second: the encoder on every
    token (baseline) and on the visible tokens only (the plugin), measured alternately, best of 3 rounds."""
    preset = get_preset(preset_name)
    cfg, window = preset.pretrain, preset.model.window
    g = torch.Generator().manual_seed(0)
    batch = [torch.randn(cfg.batch_size, bands, window, window, generator=g) for bands in (64, 2)]
    schedule = NoiseSchedule(cfg.timesteps)
    steps = 3 if preset_name == "paper" else 10
    best = {"full": float("inf"), "visible": float("inf")}
    for _ in range(3):
        for name, loss in (("full", full_sequence_pretraining_loss), ("visible", masked_diffusion_loss)):
            torch.manual_seed(0)
            net = DiffCLIP([64, 2], preset.model).train()
            opt, sched = make_optimizer(list(net.parameters()), cfg.lr, cfg.weight_decay, 2 * steps)
            optimise(opt, sched, loss(net, batch, schedule, cfg, g))   # warm-up step
            t0 = time.perf_counter()
            for _ in range(steps):
                optimise(opt, sched, loss(net, batch, schedule, cfg, g))
            best[name] = min(best[name], (time.perf_counter() - t0) / steps)
    log(f"pretraining {preset_name} (window {window}, batch {cfg.batch_size}): {1 / best['full']:.2f} steps/s with the encoder on every token, "
        f"{1 / best['visible']:.2f} on the visible ones ({best['full'] / best['visible']:.2f}x)")
    return {"full_steps_s": 1 / best["full"], "visible_steps_s": 1 / best["visible"], "pretrain_window": window,
            "pretrain_batch": cfg.batch_size}


def throughput_section(log) -> list:
    """Pixels per second: the reference-style plain batched forward (baseline, windows already in memory),
    the fast tiled path in fp32 and at the default precision (bf16 where the CPU has it), and the naive path."""
    out = []
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(64, 96, 96)).astype(np.float32), rng.normal(size=(2, 96, 96)).astype(np.float32)]
    for preset_name in ("cpu", "paper"):
        preset = get_preset(preset_name)
        window = 5 if preset_name == "cpu" else 11
        trained = _random_classifier(preset.model, arrays, window)
        size = 96 if preset_name == "cpu" else 32
        sub = ArraySource([a[:, :size, :size] for a in arrays])
        yy, xx = np.mgrid[:size, :size]
        windows, _ = extract_windows(sub, trained.stats, yy.ravel(), xx.ravel(), window)

        def best_of(run, repeats=3):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter(); result = run(); times.append(time.perf_counter() - t0)
            return result, size * size / min(times)

        predictor = Predictor(trained, torch.device("cpu"))
        reference, ref_px_s = best_of(lambda: plain_forward(trained, windows))
        _, ref_same_batch_px_s = best_of(lambda: plain_forward(trained, windows, predictor.batch_size))
        (fp32, _), fp32_px_s = best_of(lambda: Predictor(trained, torch.device("cpu"), precision="fp32").predict(sub))
        (fast, _), fast_px_s = best_of(lambda: predictor.predict(sub))
        (naive, _), naive_px_s = best_of(lambda: predictor.predict_pixels(sub, yy.ravel(), xx.ravel()), 1)
        row = {"preset": preset_name, "window": window, "pixels": size * size, "reference_px_s": ref_px_s,
               "batch": predictor.batch_size, "reference_same_batch_px_s": ref_same_batch_px_s,
               "fp32_px_s": fp32_px_s, "fast_px_s": fast_px_s, "bf16": predictor.bf16, "naive_px_s": naive_px_s,
               "fp32_same_as_reference": bool((fp32.ravel() == reference).all()),
               "same_result": bool((fast.ravel() == naive).all()), **pretraining_speed(preset_name, log)}
        out.append(row)
        log(f"throughput {preset_name}: plain forward {ref_px_s:.0f} px/s (batches of 1024; of {predictor.batch_size}: "
            f"{ref_same_batch_px_s:.0f}), fast fp32 {fp32_px_s:.0f} "
            f"({fp32_px_s / ref_px_s:.2f}x), fast default {fast_px_s:.0f} ({fast_px_s / ref_px_s:.2f}x, bf16 "
            f"{predictor.bf16}), naive {naive_px_s:.0f} px/s; fp32 same classes as the plain forward: "
            f"{row['fp32_same_as_reference']}")
    return out


def _random_classifier(cfg: ModelConfig, arrays, window: int) -> TrainedModel:
    torch.manual_seed(0)
    net = DiffCLIP([a.shape[0] for a in arrays], cfg).eval()
    metas = [ModalityMeta(f"m{i}", a.shape[0], BandStats(list(range(a.shape[0])), np.full(a.shape[0], -2, np.float32),
                                                           np.full(a.shape[0], 2, np.float32))) for i, a in enumerate(arrays)]
    classes = complete_classes([ClassInfo(i, f"class {i}") for i in range(1, 9)])
    return TrainedModel(net, metas, cfg.window, window, classes)


MEMORY_BATCH = 4096  # the small model runs 25 % faster in larger batches than the default 1024
GDAL_CACHE_MB = 128  # GDAL's default block cache is 5 % of RAM, which would hide the tiled path's own footprint
SMALL_MODEL = ModelConfig(window=3, reduce_channels=16, dim=16, depth=1, heads=2, decoder_dim=16, decoder_depth=1,
                          text_width=16, text_layers=1, text_heads=2, embed_dim=16)


def benchmark_raster(size: int, workdir: str) -> RasterStack:
    """A size x size raster of 64 + 2 bands (VRT mosaics of one 500 px tile each), read through GDAL."""
    gdal.SetCacheMax(GDAL_CACHE_MB * 1024 * 1024)
    paths = []
    for name, bands in (("hsi", 64), ("lidar", 2)):
        tile = os.path.join(workdir, f"{name}_tile.tif")
        if not os.path.exists(tile):
            ds = gdal.GetDriverByName("GTiff").Create(tile, 500, 500, bands, gdal.GDT_Float32, ["TILED=YES"])
            ds.SetGeoTransform((0, 1, 0, 0, 0, -1))
            rng = np.random.default_rng(bands)
            for b in range(bands):
                ds.GetRasterBand(b + 1).WriteArray(rng.normal(size=(500, 500)).astype(np.float32))
            ds = None
        vrt = os.path.join(workdir, f"{name}_{size}.vrt")
        _mosaic_vrt(vrt, tile, size // 500, bands)
        paths.append(vrt)
    return RasterStack(paths)


def memory_child(size: int, workdir: str) -> dict:
    """Classify the benchmark raster of ``size`` through GDAL and the tiled path: time and peak memory."""
    stack = benchmark_raster(size, workdir)
    trained = _random_classifier(SMALL_MODEL, [np.zeros((64, 1, 1)), np.zeros((2, 1, 1))], 3)
    predictor = Predictor(trained, torch.device("cpu"), batch_size=MEMORY_BATCH)
    t0 = time.perf_counter()
    out = os.path.join(workdir, f"class_{size}.tif")
    write_classification(out, predictor.iter_tiles(stack), stack.height, stack.width, stack.geotransform,
                         stack.crs_wkt, trained.classes)
    seconds = time.perf_counter() - t0
    return {"size": size, "megapixels": size * size / 1e6, "seconds": seconds, "px_s": size * size / seconds,
            "peak_rss_mb": peak_rss_mb()}


def accuracy_child(size: int, workdir: str) -> dict:
    """Assess the map :func:`memory_child` wrote against 500 random points and against itself (a class raster),
    strip by strip as `diffclip:accuracy` does: seconds and peak memory above the start (MB); then the baseline,
    the map read whole (as accuracy did until 2026-12-01)."""
    from diffclip_qgis.gis.raster import read_label_raster
    from diffclip_qgis.gis.samples import read_features
    from diffclip_qgis.workflow.accuracy import assess_accuracy
    from diffclip_qgis.workflow.requests import AccuracyRequest, Samples
    from osgeo import ogr

    out_map = os.path.join(workdir, f"class_{size}.tif")
    points = os.path.join(workdir, f"points_{size}.gpkg")
    layer_ds = ogr.GetDriverByName("GPKG").CreateDataSource(points)
    layer = layer_ds.CreateLayer("reference", None, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("reference", ogr.OFTInteger))
    rng = np.random.default_rng(0)
    for x, y, c in zip(rng.uniform(0, size, 500), -rng.uniform(0, size, 500), rng.integers(1, 4, 500)):
        feature = ogr.Feature(layer.GetLayerDefn())   # on the raster's pixel grid (x = column, y = -row)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})"))
        feature.SetField("reference", int(c))
        layer.CreateFeature(feature)
    layer_ds = layer = None
    wkbs, values, crs = read_features(points, "reference")
    out = {}
    for key, reference in (("points", dict(reference_samples=Samples(wkbs, values, crs, [points]))),
                           ("raster", dict(reference=out_map))):   # the smaller first: freed memory stays with the process
        start = reset_peak_rss()
        t0 = time.perf_counter()
        assess_accuracy(AccuracyRequest(out_map, os.path.join(workdir, f"{key}_{size}.html"), **reference))
        out[f"accuracy_{key}_s"], out[f"accuracy_{key}_mb"] = time.perf_counter() - t0, peak_rss_mb() - start
    start = reset_peak_rss()
    read_label_raster(out_map)
    out["whole_map_mb"] = peak_rss_mb() - start
    return out


def statistics_child(size: int, workdir: str) -> dict:
    """:func:`statistics_cost` on the benchmark raster of ``size``, in a process of its own."""
    return statistics_cost(benchmark_raster(size, workdir))


def statistics_cost(source) -> dict:
    """What a run's statistics cost before it classifies: band statistics (seconds, and peak memory above the
    memory at their start, MB) from every pixel of their tiles and from STATS_PIXELS; seconds to draw 4000 random
    valid pixels and read their 3 x 3 windows (noise share, unlabelled windows, class proportions) from the whole
    raster and from SAMPLE_TILES random tiles. Resets the peak-memory counter."""
    out, stats = {}, None
    # The bounded statistics first: memory freed by a larger step stays with the process and would make them look free.
    # (Hence a process of its own, apart from the classification.)
    for key, max_pixels in (("stats", STATS_PIXELS), ("stats_all", 10 ** 12)):
        start = reset_peak_rss()
        t0 = time.perf_counter()
        fitted = fit_input_stats(source, max_pixels=max_pixels)
        out[f"{key}_s"], out[f"{key}_mb"] = time.perf_counter() - t0, peak_rss_mb() - start
        if stats is None:   # a run's own statistics, for the sampling below
            stats = fitted
    for key, max_tiles in (("sample_all_s", None), ("sample_tiles_s", SAMPLE_TILES)):
        t0 = time.perf_counter()
        rows, cols = sample_valid_pixels(source, stats, 4000, seed=0, max_tiles=max_tiles)
        extract_windows(source, stats, rows, cols, 3)
        out[key] = time.perf_counter() - t0
    return out


def reset_peak_rss() -> float:
    """Reset this process's peak resident memory to the current one and return it, in MB (Linux; elsewhere the
    peak so far, not reset)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (VmHWM).

    Not ``getrusage``'s ru_maxrss: after fork + exec that also counts the parent's memory at
    the fork, which made every size read as large as the benchmark's own process.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _mosaic_vrt(vrt: str, tile: str, n: int, bands: int) -> None:
    size = 500 * n
    parts = [f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><GeoTransform>0, 1, 0, 0, 0, -1</GeoTransform>']
    for b in range(1, bands + 1):
        parts.append(f'<VRTRasterBand dataType="Float32" band="{b}">')
        for i in range(n):
            for j in range(n):
                parts.append(f'<SimpleSource><SourceFilename relativeToVRT="0">{tile}</SourceFilename><SourceBand>{b}</SourceBand>'
                             f'<SrcRect xOff="0" yOff="0" xSize="500" ySize="500"/><DstRect xOff="{j * 500}" yOff="{i * 500}" xSize="500" ySize="500"/></SimpleSource>')
        parts.append("</VRTRasterBand>")
    parts.append("</VRTDataset>")
    with open(vrt, "w") as f:
        f.write("".join(parts))


def memory_section(sizes, log) -> list:
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        for size in sizes:
            row = {}
            for child in ("--memory-child", "--statistics-child", "--accuracy-child"):
                res = subprocess.run([sys.executable, __file__, child, str(size), "--workdir", workdir],
                                     capture_output=True, text=True, check=True)
                row.update(json.loads(res.stdout.strip().splitlines()[-1]))
            out.append(row)
            log(f"memory {size} x {size}: peak RSS {row['peak_rss_mb']:.0f} MB, {row['seconds']:.0f} s, {row['px_s']:.0f} px/s")
    return out


def preset_timing_section(scene: Scene, log) -> list:
    """End-to-end time of the default preset on the demo scene: [pretrain +] choose window + fine-tune + classify;
    the baseline row fine-tunes on every thread and cross-validates one fold at a time, as before 2026-12-02 (the
    plugin fine-tunes on one thread and runs the folds side by side)."""
    out = []
    r, c, ids = draw(scene.gt, scene.classes, 8, seed=8)
    all_mask, far_mask = test_masks(scene.gt, r, c)
    for name, label, baseline in (("cpu", "cpu", False),
                                  ("cpu", "cpu, fine-tuning on every thread, one fold at a time (baseline)", True)):
        preset = get_preset(name)
        with contextlib.ExitStack() as patches:
            if baseline:   # the plugin before 2026-12-02
                for module in (finetune_module, threads_module):
                    patches.enter_context(mock.patch.object(module, "one_cpu_thread",
                                                            lambda device: contextlib.nullcontext()))
                patches.enter_context(mock.patch.object(threads_module, "ThreadPoolExecutor",
                                                        lambda workers: ThreadPoolExecutor(1)))
            t0 = time.perf_counter()
            trained = fewshot_classifier(scene.source, r, c, ids, scene.classes, preset, torch.device("cpu"), scene.infos)
            pred, _ = Predictor(trained, torch.device("cpu")).predict(scene.source)
            sec = time.perf_counter() - t0
        row = {"preset": label, "seconds": sec, "window": trained.window, **scores(scene.gt, pred, all_mask)}
        out.append(row)
        log(f"preset {label}: {sec:.0f} s end to end ({torch.get_num_threads()} threads), window {trained.window}, "
            f"OA {row['oa']:.1f} AA {row['aa']:.1f} kappa {row['kappa']:.1f}")
    return out


def summarise(rows: list) -> list:
    """Mean and std per (scene, shots, method); a draw that two sections run (the SVM's) counts once."""
    groups: Dict[tuple, dict] = {}
    for r in rows:
        groups.setdefault((r["scene"], r["shots"], r["method"]), {}).setdefault(r["draw"], r)
    out = []
    for (scene, shots, method), by_draw in groups.items():
        rs = list(by_draw.values())
        s = {"scene": scene, "shots": shots, "method": method, "draws": len(rs),
             "seconds": float(np.mean([r["seconds"] for r in rs]))}
        for part in ("all", "far"):
            for k in ("oa", "aa", "kappa"):
                v = [r[part][k] for r in rs]
                s[f"{part}_{k}"] = (float(np.mean(v)), float(np.std(v)))
        s["windows"] = sorted({r["window"] for r in rs if r["window"] is not None})
        out.append(s)
    return out


def markdown(summary, throughput, memory, timing, workers, suggestions=None) -> str:
    lines = ["# DiffCLIP for QGIS benchmark", "", f"Machine: {os.cpu_count()} CPU threads, torch {torch.__version__}, CPU only.", ""]
    if timing:
        lines += ["## Default preset, end to end on the demo scene (8 shots)", "", "| preset | time (s) | window | OA | AA | kappa |", "|---|---|---|---|---|---|"]
        lines += [f"| {t['preset']} | {t['seconds']:.0f} | {t['window']} | {t['oa']:.1f} | {t['aa']:.1f} | {t['kappa']:.1f} |" for t in timing]
        lines.append("")
    if summary:
        lines += ["## Accuracy (mean +- std over K-shot draws, percent)", "",
                  "`all` = every other labelled pixel; `far` = labelled pixels outside every training pixel's 11 x 11 window. "
                  f"`s/run`: seconds per run (with the draw's pretraining where the method uses it) in one of {workers} "
                  "single-threaded processes running side by side.", "",
                  "| scene | shots | method | draws | OA all | AA all | kappa all | OA far | AA far | kappa far | windows | s/run |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in summary:
            f = lambda k: f"{s[k][0]:.1f} +- {s[k][1]:.1f}"  # noqa: E731
            lines.append(f"| {s['scene']} | {s['shots']} | {s['method']} | {s['draws']} | {f('all_oa')} | {f('all_aa')} | {f('all_kappa')} | "
                         f"{f('far_oa')} | {f('far_aa')} | {f('far_kappa')} | {','.join(map(str, s['windows']))} | {s['seconds']:.0f} |")
        lines.append("")
    if suggestions:
        lines += ["## Where to label next: suggested against random pixels (OA, mean +- std over paired draws)", "",
                  "A simulated user starts from 2 shots per class and adds K labels (K = number of classes) per "
                  "round, read from the reference, at the pixels `suggest` proposes or at random labelled pixels; "
                  "the `cpu` preset is trained again after each round and scored on every other labelled pixel.", "",
                  *suggestions, "", "![OA against labelled pixels](active_learning.png)", ""]
    if throughput:
        lines += ["## Inference throughput (64 + 2 bands, same weights)", "",
                  "| preset | window | plain batched forward px/s, batches of 1024 (baseline) | plain forward, the fast "
                  "path's batches | fast fp32 px/s (ratio) | fast default px/s (ratio, bf16) | naive px/s | "
                  "fp32 = baseline classes |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {t['preset']} | {t['window']} | {t['reference_px_s']:.0f} | {t['reference_same_batch_px_s']:.0f} "
                  f"({t['batch']}) | {t['fp32_px_s']:.0f} "
                  f"({t['fp32_px_s'] / t['reference_px_s']:.2f}x) | {t['fast_px_s']:.0f} "
                  f"({t['fast_px_s'] / t['reference_px_s']:.2f}x, {t['bf16']}) | {t['naive_px_s']:.0f} | "
                  f"{t['fp32_same_as_reference']} |" for t in throughput]
        lines += ["", "## Pretraining speed (64 + 2 bands, the preset's batch and window)", "",
                  "| preset | window | batch | encoder on every token (baseline), steps/s | on the visible tokens, steps/s (ratio) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {t['preset']} | {t['pretrain_window']} | {t['pretrain_batch']} | {t['full_steps_s']:.2f} | {t['visible_steps_s']:.2f} "
                  f"({t['visible_steps_s'] / t['full_steps_s']:.2f}x) |" for t in throughput]
        lines.append("")
    if memory:
        lines += [f"## Peak memory, tiled classification through GDAL (64 + 2 bands, small model, window 3, GDAL cache {GDAL_CACHE_MB} MB)", "",
                  "| raster | megapixels | peak RSS (MB) | time (s) | px/s | band statistics, every pixel of their tiles / "
                  f"{STATS_PIXELS} (s, MB above start) | 4000 random pixels + 3 x 3 windows: whole raster / "
                  f"{SAMPLE_TILES} tiles (s) | accuracy against a class raster / 500 points, strip by strip (s, MB "
                  "above start) | the map read whole (MB) |", "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {m['size']} x {m['size']} | {m['megapixels']:.0f} | {m['peak_rss_mb']:.0f} | {m['seconds']:.0f} | {m['px_s']:.0f} | "
                  f"{m['stats_all_s']:.1f} s, {m['stats_all_mb']:.0f} MB / {m['stats_s']:.1f} s, {m['stats_mb']:.0f} MB | "
                  f"{m['sample_all_s']:.1f} / {m['sample_tiles_s']:.1f} | {m['accuracy_raster_s']:.1f} s, "
                  f"{m['accuracy_raster_mb']:.0f} MB / {m['accuracy_points_s']:.1f} s, {m['accuracy_points_mb']:.0f} MB | "
                  f"{m['whole_map_mb']:.0f} |" for m in memory]
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--draws", type=int, default=5, help="K-shot draws at 8 shots")
    parser.add_argument("--draws-other", type=int, default=3, help="K-shot draws at 2 and 20 shots")
    parser.add_argument("--skip", nargs="*", default=[], choices=["accuracy", "real", "few", "suggestions", "throughput", "memory", "timing"])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="processes for the accuracy and suggestions draws")
    parser.add_argument("--suggest-draws", type=int, default=5, help="paired draws per scene, section suggestions")
    parser.add_argument("--suggest-rounds", type=int, default=3, help="rounds of K new labels, section suggestions")
    parser.add_argument("--suggest-scenes", nargs="*", choices=list(SCENES),
                        help="section suggestions (default: the demo and the real scenes present)")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[1000, 4000])
    parser.add_argument("--out", default=os.path.join(ROOT, "reports"))
    parser.add_argument("--memory-child", type=int)
    parser.add_argument("--statistics-child", type=int)
    parser.add_argument("--accuracy-child", type=int)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if args.accuracy_child:
        print(json.dumps(accuracy_child(args.accuracy_child, args.workdir)))
        return
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.workdir)))
        return
    if args.statistics_child:
        print(json.dumps(statistics_child(args.statistics_child, args.workdir)))
        return
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "benchmark.log")
    logf = open(log_path, "w")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n"); logf.flush()

    t_start = time.perf_counter()
    result = {"preset": args.preset, "workers": args.workers}
    rows, suggestion_lines = [], []

    def save():
        """Write the report so far, so a failure in a later section keeps the earlier ones."""
        result.update(runs=rows, summary=summarise(rows), total_seconds=time.perf_counter() - t_start)
        with open(os.path.join(args.out, "benchmark.json"), "w") as f:
            json.dump(result, f, indent=1)
        md = markdown(result["summary"], result.get("throughput"), result.get("memory"), result.get("timing"), args.workers,
                      suggestion_lines)
        md += f"\nTotal benchmark time: {result['total_seconds'] / 60:.1f} min.\n"
        with open(os.path.join(args.out, "benchmark.md"), "w") as f:
            f.write(md)
        return md

    if "timing" not in args.skip:
        result["timing"] = preset_timing_section(scene_by_key("demo"), log)
        save()
    jobs = accuracy_jobs(args.draws, args.draws_other, demo="accuracy" not in args.skip, real="real" not in args.skip,
                         few="few" not in args.skip)
    if jobs:
        log(f"{len(jobs)} K-shot draws in {args.workers} single-threaded worker processes")

        def done(rows_per_draw):
            rows[:] = [r for draw_rows in rows_per_draw for r in draw_rows]
            save()

        run_in_workers(partial(run_draw, preset_name=args.preset), jobs, args.workers, log, done)
    if "suggestions" not in args.skip:
        import bench_suggest  # not at the top: it imports this module

        def suggestions_done(draws):
            result["suggestions"] = draws
            suggestion_lines[:] = bench_suggest.summary_rows(bench_suggest.by_scene(draws))
            save()

        scenes = args.suggest_scenes or ["demo"] + [k for k in REAL_SCENES if os.path.isdir(os.path.join(SHARED, k))]
        log(f"suggestions: {len(scenes)} scenes x {args.suggest_draws} paired draws, {args.suggest_rounds} rounds")
        bench_suggest.measure(scenes, args.suggest_draws, args.suggest_rounds, args.workers,
                              os.path.join(args.out, "active_learning.png"), log, suggestions_done)
    if "throughput" not in args.skip:
        result["throughput"] = throughput_section(log)
        save()
    if "memory" not in args.skip:
        result["memory"] = memory_section(args.memory_sizes, log)
    print(save())


if __name__ == "__main__":
    main()
