"""Post-hoc experiment: the `cpu` default's posteriors combined with a per-pixel classifier, or its prompts
moved towards the scene's embeddings, on the draws of `make bench`.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/experiment_posthoc.py --shots 2 \
        --scenes demo indian_pines_subset jasper_ridge enmap_potsdam

Per draw, the default classifier is trained once (as `experiment_fewshot.py new`); every pixel is then
classified by:

- ``net``: the classifier as shipped; ``lr`` and ``nm``: the two per-pixel classifiers below alone;
- ``net*lr^w``: its posteriors times the pixel teacher's (the logistic regression on the centre pixel's
  scaled bands, ``core/semisupervised.py``) to the power w;
- ``net*nm t``: times a nearest-mean classifier's (softmax of minus the mean squared distance of the
  standardised bands to each class mean, over temperature t);
- ``text+proto``: prompts replaced by the normalised sum of the prompt and the mean embedding of the
  labelled windows of the class;
- ``softkm lam``: five soft k-means steps on 4000 unlabelled embeddings started at the prompts, the
  labelled windows weighted 10, each step blended with the prompts (weight lam);
- ``net+avg3``: the posteriors averaged over each pixel's 3 x 3 neighbourhood; ``net+maj r``: ``net``'s map
  after the majority filter that SMOOTHING applies (``gis/smoothing.py``), radius r.

Prints OA per draw and, per method, the mean and the worst draw. Also, per draw, four indicators that need
no reference (does one tell a weak draw?): how often ``net`` and ``lr`` agree, the network's mean
confidence, the total variation between the class shares of their maps, and the evenness of ``net``'s
shares; per scene, each one's Spearman correlation with ``net``'s OA.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from scipy.ndimage import uniform_filter
from scipy.stats import spearmanr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import experiment_fewshot as E  # noqa: E402  (puts the source tree first)
from diffclip_qgis.core.infer import class_text, window_scores  # noqa: E402
from diffclip_qgis.core.pipeline import fewshot_classifier  # noqa: E402
from diffclip_qgis.core.semisupervised import pixel_logistic_regression  # noqa: E402
from diffclip_qgis.core.windows import extract_windows  # noqa: E402
from diffclip_qgis.gis.smoothing import majority_filter  # noqa: E402

B = E.B


def normalise(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def variants(trained, scene, r, c, y, d):
    """Class indices (valid pixels) per method, and the flat indices of the valid pixels."""
    h, w = scene.gt.shape
    k, net = len(scene.classes), trained.network
    rr, cc = np.divmod(np.arange(h * w), w)
    windows, valid = extract_windows(scene.source, trained.stats, rr, cc, trained.window)
    text = class_text(net, [x.prompt for x in trained.classes], E.CPU)
    log_p, emb = window_scores(net, text, [x[valid] for x in windows])
    vidx = np.flatnonzero(valid)
    at = np.searchsorted(vidx, r * w + c)
    pixels, _ = extract_windows(scene.source, trained.stats, rr[vidx], cc[vidx], 1)
    f = np.concatenate([p[:, :, 0, 0] for p in pixels], axis=1).astype(np.float32)
    out = {"net": log_p.argmax(1)}
    prob = np.zeros((h * w, k))
    prob[vidx] = softmax(log_p)
    out["net+avg3"] = uniform_filter(prob.reshape(h, w, k), size=(3, 3, 1), mode="nearest").reshape(h * w, k)[
        vidx].argmax(1)
    lr = np.log(pixel_logistic_regression(f[at], y, f, k, seed=d) + 1e-12)
    indicators = quality_indicators(log_p, lr, k)
    for wt in (0.3, 0.5, 1.0):
        out[f"net*lr^{wt}"] = (log_p + wt * lr).argmax(1)
    fs = (f - f.mean(0)) / (f.std(0) + 1e-6)
    means = np.stack([fs[at][y == i].mean(0) for i in range(k)])
    d2 = np.stack([((fs - m) ** 2).mean(1) for m in means], axis=1)
    out["lr"], out["nm"] = lr.argmax(1), d2.argmin(1)
    for t in (0.1, 0.3):
        out[f"net*nm{t}"] = (log_p + np.log(softmax(-d2 / t) + 1e-12)).argmax(1)
    scale = float(net.logit_scale.detach().clamp(max=np.log(100.0)).exp())
    bias = net.class_bias.numpy() if net.class_bias is not None else np.zeros(k)
    t0, lab = text.numpy(), emb[at]
    out["text+proto"] = (scale * emb @ normalise(t0 + normalise(
        np.stack([lab[y == i].mean(0) for i in range(k)]))).T + bias).argmax(1)
    sample = emb[np.random.default_rng(d).choice(len(emb), min(4000, len(emb)), replace=False)]
    labelled_sums = np.stack([lab[y == i].sum(0) for i in range(k)])
    for lam in (0.5, 0.8):
        t = t0.copy()
        for _ in range(5):
            p = softmax(scale * sample @ t.T + bias)
            t = normalise(lam * t0 + (1 - lam) * normalise(p.T @ sample + 10 * labelled_sums))
        out[f"softkm{lam}"] = (scale * emb @ t.T + bias).argmax(1)
    return out, vidx, indicators


INDICATORS = ("agree", "conf", "share_tv", "evenness")


def quality_indicators(log_p, log_lr, k):
    """The indicators of the module docstring, from the network's and the pixel teacher's log posteriors."""
    p = softmax(log_p)
    net, lr = p.argmax(1), log_lr.argmax(1)
    s_net, s_lr = np.bincount(net, minlength=k) / len(net), np.bincount(lr, minlength=k) / len(lr)
    return {"agree": float((net == lr).mean()), "conf": float(p.max(1).mean()),
            "share_tv": 0.5 * float(np.abs(s_net - s_lr).sum()),
            "evenness": float(-(s_net * np.log(s_net + 1e-12)).sum() / np.log(k))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", nargs="+", default=["demo", "indian_pines_subset", "jasper_ridge", "enmap_potsdam"])
    ap.add_argument("--shots", type=int, default=2)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--first-draw", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for key in args.scenes:
        scene = B.scene_by_key(key)
        ids_of = np.array([cl.id for cl in scene.classes])
        index = {cl.id: i for i, cl in enumerate(scene.classes)}
        res, found = {}, []
        for d in range(args.first_draw, args.first_draw + args.draws):
            r, c, ids = B.draw(scene.gt, scene.classes, args.shots, seed=1000 * d + args.shots)
            mask, _ = B.test_masks(scene.gt, r, c)
            y = np.array([index[int(v)] for v in ids])
            trained = fewshot_classifier(scene.source, r, c, ids, scene.classes, E.make_preset("new", d), E.CPU,
                                         scene.infos)
            preds, vidx, indicators = variants(trained, scene, r, c, y, d)
            found.append(indicators)
            line = []
            maps = {}
            for m, p in preds.items():
                grid = np.zeros(scene.gt.size, np.int64)
                grid[vidx] = ids_of[p]
                maps[m] = grid.reshape(scene.gt.shape)
            for radius in (1, 2):
                maps[f"net+maj{radius}"] = majority_filter(maps["net"], radius)
            for m, grid in maps.items():
                oa = B.scores(scene.gt, grid, mask)["oa"]
                res.setdefault(m, []).append(oa)
                line.append(f"{m} {oa:.1f}")
            print(f"{key} {args.shots}-shot draw {d} win={trained.window}: " + " | ".join(line)
                  + " || " + " ".join(f"{n} {v:.3f}" for n, v in indicators.items()), flush=True)
        for m, v in res.items():
            print(f"{key:20s} {args.shots} {m:12s} mean {np.mean(v):5.1f} worst {np.min(v):5.1f}", flush=True)
        for n in INDICATORS:
            rho, p = spearmanr(res["net"], [x[n] for x in found])
            print(f"{key:20s} {args.shots} spearman(OA, {n}) = {rho:+.2f} (p {p:.3f})", flush=True)


if __name__ == "__main__":
    main()
