"""Few-shot experiment: today's default vs candidates on the same paired K-shot draws.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/experiment_fewshot.py \
        --scenes demo indian_pines_subset jasper_ridge enmap_potsdam --shots 2 --draws 3 \
        --methods default ssl

Draw d at K shots uses benchmark.draw(..., seed=1000 * d + K), as `make bench` does. Imports the
core from the source tree (not build/). Prints OA/AA per run and, per (scene, shots, method), the
mean, std, worst draw and seconds per run (fine-tune + classify the whole scene).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import defaultdict

import numpy as np
import torch
from scipy.special import softmax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import diffclip_qgis.core.pipeline  # noqa: E402,F401  (source tree first; benchmark then reuses these modules)
import diffclip_qgis.gis.raster  # noqa: E402,F401

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import benchmark as B  # noqa: E402
from diffclip_qgis.core.config import get_preset, set_fewshot_pretrain_epochs  # noqa: E402
from diffclip_qgis.core import finetune as FT, pipeline  # noqa: E402
from diffclip_qgis.core.config import CLASSIFY_WINDOW_CHOICES  # noqa: E402
from diffclip_qgis.core.infer import Predictor  # noqa: E402
from diffclip_qgis.core.pipeline import fewshot_classifier, pretrain_encoder  # noqa: E402

CPU = torch.device("cpu")
SCENE_WINDOW, FEW_LABELS = pipeline.scene_window, pipeline.few_labels


def denoised_indian_pines(components: int = 8):
    """Indian Pines with every pixel projected onto the scene's first ``components`` principal components (bands
    standardised) and back, as after a PCA or MNF denoising: its noise share falls from 37 % to 10 % at 8, so the
    window rule sees a clean scene, while its fields still gain from a window (docs/few_labels.md)."""
    scene = B.scene_by_key("indian_pines_subset")
    cube = scene.arrays[0].astype(np.float64)
    bands, h, w = cube.shape
    x = cube.reshape(bands, -1).T
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    _, _, vt = np.linalg.svd((x - mean) / std, full_matrices=False)
    basis = vt[:components]
    denoised = (((x - mean) / std) @ basis.T @ basis * std + mean).T.reshape(bands, h, w).astype(np.float32)
    return B.Scene(f"indian_pines_denoised{components}", B.ArraySource([denoised]), scene.infos, scene.gt.copy(),
                   scene.classes, [denoised])


B.SCENES["indian_pines_denoised"] = denoised_indian_pines


def make_preset(method: str, seed: int):
    """The preset of a method name: '+'-separated tokens applied to the `cpu` preset (as it is in the core)."""
    cpu = get_preset("cpu").finetune
    preset = get_preset("cpu")
    preset.finetune.seed = seed
    # "default" = the `cpu` preset before unlabelled pixels and the window rule; "ssl" = unlabelled pixels
    # with equal-share alignment and no pixel teacher (the first screening); "new" = the `cpu` preset now.
    preset.finetune.unlabelled, preset.finetune.pixel_teacher, preset.finetune.window_from_scene = False, False, False
    preset.finetune.alignment_target, preset.finetune.unlabelled_weight = "uniform", 1.0
    for tok in method.split("+"):
        if tok in ("default", ""):
            continue
        elif tok == "new":
            preset.finetune.unlabelled, preset.finetune.pixel_teacher = cpu.unlabelled, cpu.pixel_teacher
            preset.finetune.window_from_scene = cpu.window_from_scene
            preset.finetune.alignment_target = cpu.alignment_target
            preset.finetune.unlabelled_weight = cpu.unlabelled_weight
        elif tok.startswith("w") and tok[1:].isdigit():
            preset.window = int(tok[1:])
        elif tok == "cv1":  # cross-validation (more labels) also considers the 1 x 1 window; run() restores it
            pipeline.WINDOW_CHOICES = CLASSIFY_WINDOW_CHOICES
        elif tok == "cvall":  # with more labels, cross-validation among 1, 3, 5 and 7 even on a clean scene
            pipeline.WINDOW_CHOICES = CLASSIFY_WINDOW_CHOICES
            pipeline.scene_window = lambda noise, split, few, sizes, largest: (
                SCENE_WINDOW(noise, split, few, sizes, largest) if few else None)
        elif tok == "gatefew":  # the clean scene's window may be overruled by cross-validation with few labels too
            pipeline.few_labels = lambda preset, median: False
        elif tok == "ssl":
            preset.finetune.unlabelled = True
        elif tok == "nossl":
            preset.finetune.unlabelled = False
        elif tok == "noDA":
            preset.finetune.distribution_alignment = False
        elif tok == "lr":
            preset.finetune.pixel_teacher = True
        elif tok.startswith("tau"):
            preset.finetune.unlabelled_threshold = float(tok[3:])
        elif tok.startswith("steps"):
            preset.finetune.unlabelled_steps = int(tok[5:])
        elif tok.startswith("lam"):
            preset.finetune.unlabelled_weight = float(tok[3:])
        elif tok.startswith("prior"):
            preset.finetune.prior_strength = float(tok[5:])
        elif tok.startswith("warm"):
            preset.finetune.unlabelled_warmup = float(tok[4:])
        elif tok.startswith("prewin"):  # prewinS: pretraining (and largest) window S
            preset.model.window = int(tok[6:])
        elif tok in ("pcainit", "lrshape", "lronlyshape") or tok.startswith(("nbr", "soup")):
            continue   # applied around the network's training: run() and _run_network()
        elif tok.startswith("pre="):  # pre=EPOCHSxWINDOWS: masked-diffusion pretraining first (run() caches it)
            epochs, count = tok[4:].split("x")
            set_fewshot_pretrain_epochs(preset, int(epochs))
            preset.pretrain.sample_count = int(count)
        elif hasattr(preset.finetune, tok.split("=")[0]) and "=" in tok:
            name, value = tok.split("=")
            cur = getattr(preset.finetune, name)
            setattr(preset.finetune, name, type(cur)(value) if not isinstance(cur, bool) else value == "1")
        else:
            raise ValueError(f"unknown method token {tok!r}")
    return preset


def run(scene, method, r, c, ids, seed):
    if method == "svm":
        t0 = time.perf_counter()
        pred = B.svm_predict(B.svm_features(scene, False), scene, r, c, ids)
        return pred, None, None, time.perf_counter() - t0
    if method == "lr" or method.startswith("gmm"):  # a per-pixel teacher alone (gmm[=LABELLED_SHARE])
        from diffclip_qgis.core.semisupervised import pixel_logistic_regression
        t0 = time.perf_counter()
        f = B.svm_features(scene, False).astype(np.float32)
        index = {cl.id: i for i, cl in enumerate(scene.classes)}
        y = np.array([index[int(v)] for v in ids])
        labelled = f[r * scene.gt.shape[1] + c]
        if method == "lr":
            probs = pixel_logistic_regression(labelled, y, f, len(scene.classes), seed=seed)
        else:
            share = float(method.split("=")[1]) if "=" in method else 0.5
            probs = pixel_gaussian_mixture(labelled, y, f, len(scene.classes), labelled_share=share)
        pred = np.array([cl.id for cl in scene.classes])[probs.argmax(1)].reshape(scene.gt.shape)
        return pred, None, None, time.perf_counter() - t0
    nbr = [t for t in method.split("+") if t.startswith("nbr")]
    if nbr:
        r, c, ids = look_alike_neighbours(scene, r, c, ids, float(nbr[0][3:] or 50))
    choices = pipeline.WINDOW_CHOICES
    try:
        return _run_network(scene, method, r, c, ids, seed)
    finally:
        pipeline.WINDOW_CHOICES, pipeline.scene_window, pipeline.few_labels = choices, SCENE_WINDOW, FEW_LABELS


def pixel_gaussian_mixture(labelled: np.ndarray, labels: np.ndarray, unlabelled: np.ndarray, k: int,
                           components: int = 10, iterations: int = 30, labelled_share: float = 0.5) -> np.ndarray:
    """Class-balanced posteriors (N_u, K) of a semi-supervised Gaussian mixture (screened, not shipped).

    One Gaussian per class with a shared covariance, in the unlabelled pixels' main principal
    components (bands standardised). The means start at the labelled pixels' class means; EM over
    the unlabelled pixels then moves them to the scene's clusters while the labelled pixels keep
    their classes, together weighing ``labelled_share`` of the unlabelled pixels (Shahshahani and
    Landgrebe, 1994). docs/few_labels.md has what it scored as a per-pixel classifier alone.
    """
    mean = unlabelled.mean(axis=0, keepdims=True)
    std = unlabelled.std(axis=0, keepdims=True) + 1e-6
    xu = ((unlabelled - mean) / std).astype(np.float64)
    _, _, vt = np.linalg.svd(xu[:: max(1, len(xu) // 4000)], full_matrices=False)
    basis = vt[:min(components, vt.shape[0])].T
    xu = xu @ basis
    xl = (((labelled - mean) / std).astype(np.float64)) @ basis
    onehot = np.eye(k)[np.asarray(labels)]
    wl = onehot * (labelled_share * len(xu) / len(xl))
    means = (onehot.T @ xl) / onehot.sum(axis=0)[:, None]
    cov = np.cov(xu, rowvar=False) + 1e-6 * np.eye(xu.shape[1])
    log_prior = np.full(k, -np.log(k))

    def log_likelihood(x):
        inv = np.linalg.inv(cov)
        diff = x[:, None, :] - means[None]
        return -0.5 * np.einsum("nkd,de,nke->nk", diff, inv, diff) - 0.5 * np.linalg.slogdet(cov)[1]

    for _ in range(iterations):
        resp = softmax(log_likelihood(xu) + log_prior, axis=1)
        weights = np.concatenate([resp, wl])
        x = np.concatenate([xu, xl])
        total = weights.sum(axis=0)
        means = (weights.T @ x) / total[:, None]
        diff = x[:, None, :] - means[None]
        cov = np.einsum("nk,nkd,nke->de", weights, diff, diff) / weights.sum() + 1e-6 * np.eye(x.shape[1])
        share = np.maximum(resp.mean(axis=0), 0.01 / k)
        log_prior = np.log(share / share.sum())
    return softmax(log_likelihood(xu), axis=1).astype(np.float32)


def look_alike_neighbours(scene, r, c, ids, percentile: float):
    """The samples plus each one's 8 neighbours whose standardised bands lie closer to it than ``percentile``
    of the scene's neighbour pairs do (screened, not shipped: docs/few_labels.md)."""
    h, w = scene.gt.shape
    f = B.svm_features(scene, False).astype(np.float32)
    f = ((f - f.mean(0)) / (f.std(0) + 1e-6)).reshape(h, w, -1)
    pairs = np.concatenate([np.linalg.norm(f[:, 1:] - f[:, :-1], axis=-1).ravel(),
                            np.linalg.norm(f[1:] - f[:-1], axis=-1).ravel()])
    limit = np.percentile(pairs, percentile)
    taken = {(int(a), int(b)): int(v) for a, b, v in zip(r, c, ids)}
    extra = {}
    for (a, b), v in taken.items():
        for da in (-1, 0, 1):
            for db in (-1, 0, 1):
                aa, bb = a + da, b + db
                if (da or db) and 0 <= aa < h and 0 <= bb < w and (aa, bb) not in taken \
                        and np.linalg.norm(f[aa, bb] - f[a, b]) < limit:
                    extra.setdefault((aa, bb), set()).add(v)
    extra = {k: v.pop() for k, v in extra.items() if len(v) == 1}
    rows = np.array([k[0] for k in extra], dtype=np.asarray(r).dtype)
    cols = np.array([k[1] for k in extra], dtype=np.asarray(c).dtype)
    vals = np.array(list(extra.values()), dtype=np.asarray(ids).dtype)
    return np.concatenate([r, rows]), np.concatenate([c, cols]), np.concatenate([ids, vals])


def pca_initialised(finetune):
    """``finetune`` whose network's first band-reduction layer starts at the unlabelled pixels' principal
    components, whitened (screened, not shipped: docs/few_labels.md)."""
    from diffclip_qgis.core.model import spectral_shape

    def wrapped(model, windows, labels, prompts, cfg, device, callback, unlabelled=None):
        for stem, u in zip(model.stems, unlabelled or []):
            x = torch.from_numpy(u)
            if stem.spectral:
                x = torch.cat([x, spectral_shape(x)], dim=1)   # it returns a new tensor
            px = x.movedim(1, -1).reshape(-1, x.shape[1]).double()
            px = px[torch.randperm(len(px), generator=torch.Generator().manual_seed(0))[:20000]]
            mean = px.mean(0)
            _, sv, vt = torch.linalg.svd(px - mean, full_matrices=False)
            conv = stem.reduce[0]
            c = min(conv.out_channels, vt.shape[0])
            w = vt[:c] / (sv[:c, None] / np.sqrt(len(px))).clamp(min=1e-6)
            with torch.no_grad():
                conv.weight[:c, :, 0, 0] = w.float()
                conv.bias[:c] = -(w @ mean).float()
        return finetune(model, windows, labels, prompts, cfg, device, callback, unlabelled=unlabelled)
    return wrapped


def _run_network(scene, method, r, c, ids, seed):
    preset = make_preset(method, seed)
    encoder = None
    if preset.pretrain_before_fewshot and preset.pretrain.epochs > 0:
        encoder = pretrained(scene, preset)
    t0 = time.perf_counter()
    tokens = method.split("+")
    finetune, centre = pipeline.finetune, FT.centre_pixels
    if "pcainit" in tokens:  # band reduction started at the unlabelled pixels' principal components
        pipeline.finetune = pca_initialised(finetune)
    soup = [int(t[4:]) for t in tokens if t.startswith("soup")]
    if soup:  # soupN: N fine-tunes from the same start, weights averaged
        pipeline.finetune = weight_soup(pipeline.finetune, soup[0])
    if "lrshape" in tokens or "lronlyshape" in tokens:  # the pixel teacher also (or only) on the spectral shape
        FT.centre_pixels = centre_pixels_with_shape("lrshape" in tokens)
    try:
        trained = fewshot_classifier(scene.source, r, c, ids, scene.classes, preset, CPU, scene.infos, pretrained=encoder)
    finally:
        pipeline.finetune = finetune
        FT.centre_pixels = centre
    pred, _ = Predictor(trained, CPU).predict(scene.source)
    sec = time.perf_counter() - t0
    if trained.report.get("window_scores"):
        print("# window scores " + " ".join(f"{s}:{100 * v:.1f}" for s, v in trained.report["window_scores"].items()),
              flush=True)
    equal = None
    if trained.network.class_bias is not None:
        trained.network.set_class_bias(None)
        equal, _ = Predictor(trained, CPU).predict(scene.source)
    return pred, equal, trained.window, sec


ENCODERS = {}


def pretrained(scene, preset):
    """The scene's encoder pretrained with the preset's schedule, once per (scene, epochs, windows): labels play
    no part in it, so every draw fine-tunes from the same one. Prints the pretraining time."""
    key = (scene.name, preset.pretrain.epochs, preset.pretrain.sample_count, preset.model.window)
    if key not in ENCODERS:
        t0 = time.perf_counter()
        ENCODERS[key] = pretrain_encoder(scene.source, preset, CPU, scene.infos)
        print(f"# pretrained {key}: {time.perf_counter() - t0:.0f} s", flush=True)
    return ENCODERS[key]


RUN_LINE = re.compile(r"^(\S+)\s+(\d+)-shot draw (\d+) (\S+)\s+win=(\S+) OA ([\d.]+) AA ([\d.]+)"
                      r"(?: \| prior 0: OA ([\d.]+) AA ([\d.]+))? (\d+) s$")


def summarise_logs(paths, aliases):
    """Per-run lines of earlier runs of this script -> the summary table (the last line of a run wins)."""
    runs = {}
    for path in paths:
        for line in open(path):
            m = RUN_LINE.match(line.strip())
            if m:
                key, shots, d, method = m.group(1), int(m.group(2)), int(m.group(3)), aliases.get(m.group(4), m.group(4))
                runs[(key, shots, method, d)] = (float(m.group(6)), float(m.group(7)), float(m.group(10)))
    res = defaultdict(list)
    for (key, shots, method, d), v in sorted(runs.items()):
        res[(key, shots, method)].append(v + (None,))
    print_table(res)


def print_table(res):
    print("\n| scene | shots | method | draws | OA mean +- std | worst OA | AA mean | s/run |")
    print("|---|---|---|---|---|---|---|---|")
    for (key, shots, m), v in res.items():
        oa = np.array([x[0] for x in v]); aa = np.array([x[1] for x in v])
        print(f"| {key} | {shots} | {m} | {len(v)} | {oa.mean():.1f} +- {oa.std():.1f} | {oa.min():.1f} | {aa.mean():.1f} | "
              f"{np.mean([x[2] for x in v]):.0f} |", flush=True)


def weight_soup(finetune, n: int):
    """``finetune`` run ``n`` times from the same starting weights (seeds seed, seed + 1, ...), the
    resulting weights averaged: one network, so prediction costs the same (screened)."""
    import copy
    import dataclasses

    def wrapped(model, windows, labels, prompts, cfg, device, callback, unlabelled=None):
        start = copy.deepcopy(model.state_dict())
        states, history = [], None
        for i in range(n):
            model.load_state_dict(start)
            history = finetune(model, windows, labels, prompts, dataclasses.replace(cfg, seed=cfg.seed + i), device,
                               callback, unlabelled=unlabelled)
            states.append(copy.deepcopy(model.state_dict()))
        model.load_state_dict({k: (sum(st[k].double() for st in states) / n).to(v.dtype) if v.is_floating_point()
                               else v for k, v in states[0].items()})
        return history
    return wrapped


def centre_pixels_with_shape(keep_bands: bool):
    """The pixel teacher's features with each spectral modality's brightness-free shape (screened)."""
    from diffclip_qgis.core.model import SHAPE_MIN_BANDS, spectral_shape

    def features(windows):
        s = windows[0].shape[-1]
        parts = []
        for w in windows:
            x = np.ascontiguousarray(w[:, :, s // 2, s // 2]).astype(np.float32)
            if x.shape[1] >= SHAPE_MIN_BANDS:
                shape = spectral_shape(torch.from_numpy(x)[:, :, None, None])[:, :, 0, 0].numpy()
                parts += [x, shape] if keep_bands else [shape]
            else:
                parts.append(x)
        return np.concatenate(parts, axis=1)
    return features


def uneven_draw(scene, per_class: float, seed: int):
    """Labelled pixels as an analyst clicks them: each class in proportion to its share of the reference,
    ``per_class`` x classes in all, at least 2 per class (rows, cols, class ids)."""
    rng = np.random.default_rng(seed)
    sizes = {cl.id: int((scene.gt == cl.id).sum()) for cl in scene.classes}
    total = per_class * len(scene.classes)
    rows, cols, ids = [], [], []
    for cl in scene.classes:
        yy, xx = np.nonzero(scene.gt == cl.id)
        n = min(len(yy), max(2, int(round(total * sizes[cl.id] / sum(sizes.values())))))
        pick = rng.choice(len(yy), n, replace=False)
        rows += list(yy[pick])
        cols += list(xx[pick])
        ids += [cl.id] * n
    return np.array(rows), np.array(cols), np.array(ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--summarise", nargs="*", help="only summarise these logs of earlier runs")
    ap.add_argument("--alias", nargs="*", default=[], help="OLD=NEW method names, for --summarise")
    ap.add_argument("--scenes", nargs="+", default=["demo", "indian_pines_subset", "jasper_ridge", "enmap_potsdam"])
    ap.add_argument("--shots", nargs="+", type=int, default=[2])
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--first-draw", type=int, default=0)
    ap.add_argument("--methods", nargs="+", default=["default", "ssl"])
    ap.add_argument("--uneven", action="store_true",
                    help="labels in proportion to the classes' shares of the reference: SHOTS x classes in all, at "
                         "least 2 per class (draw d seeded 100 + d)")
    args = ap.parse_args()
    if args.summarise:
        summarise_logs(args.summarise, dict(a.split("=", 1) for a in args.alias))
        return
    torch.set_num_threads(1)
    res = defaultdict(list)
    print(f"# experiment_fewshot {time.strftime('%Y-%m-%d %H:%M')} methods={args.methods} shots={args.shots} "
          f"draws={args.first_draw}..{args.first_draw + args.draws - 1} scenes={args.scenes}", flush=True)
    for key in args.scenes:
        scene = B.scene_by_key(key)
        for shots in args.shots:
            for d in range(args.first_draw, args.first_draw + args.draws):
                r, c, ids = (uneven_draw(scene, shots, seed=100 + d) if args.uneven
                             else B.draw(scene.gt, scene.classes, shots, seed=1000 * d + shots))
                mask, _ = B.test_masks(scene.gt, r, c)
                for m in args.methods:
                    pred, equal, win, sec = run(scene, m, r, c, ids, d)
                    s = B.scores(scene.gt, pred, mask)
                    res[(key, shots, m)].append((s["oa"], s["aa"], sec, win))
                    extra = ""
                    if equal is not None:
                        e = B.scores(scene.gt, equal, mask)
                        res[(key, shots, m + " [prior 0]")].append((e["oa"], e["aa"], sec, win))
                        extra = f" | prior 0: OA {e['oa']:.1f} AA {e['aa']:.1f}"
                    print(f"{key:20s} {shots:2d}-shot draw {d} {m:28s} win={win} OA {s['oa']:.1f} AA {s['aa']:.1f}"
                          f"{extra} {sec:.0f} s", flush=True)
    print_table(res)


if __name__ == "__main__":
    main()
