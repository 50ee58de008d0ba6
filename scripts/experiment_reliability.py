"""Experiment: does an unsupervised indicator of a few-label map's quality follow its OA from draw to draw?

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/experiment_reliability.py --scenes demo --draws 15

Per draw of `make bench` (2 shots by default) the `cpu` default is trained and the whole scene classified;
printed with its OA: how often the network and the pixel teacher (the logistic regression on the labelled
pixels' bands) agree, the network's mean confidence, the total variation between the class shares of the two
maps, and the evenness of the map's shares; then, per scene, each indicator's Spearman correlation with OA.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import experiment_fewshot as E  # noqa: E402
from diffclip_qgis.core.infer import class_text, window_scores  # noqa: E402
from diffclip_qgis.core.pipeline import fewshot_classifier  # noqa: E402
from diffclip_qgis.core.semisupervised import pixel_logistic_regression  # noqa: E402
from diffclip_qgis.core.windows import extract_windows  # noqa: E402

B = E.B


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", nargs="+", default=["demo", "indian_pines_subset", "jasper_ridge", "enmap_potsdam"])
    ap.add_argument("--shots", type=int, default=2)
    ap.add_argument("--draws", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for key in args.scenes:
        scene = B.scene_by_key(key)
        ids_of = np.array([cl.id for cl in scene.classes])
        index = {cl.id: i for i, cl in enumerate(scene.classes)}
        rows = []
        for d in range(args.draws):
            r, c, ids = B.draw(scene.gt, scene.classes, args.shots, seed=1000 * d + args.shots)
            mask, _ = B.test_masks(scene.gt, r, c)
            y = np.array([index[int(v)] for v in ids])
            trained = fewshot_classifier(scene.source, r, c, ids, scene.classes, E.make_preset("new", d), E.CPU,
                                         scene.infos)
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
            lr = pixel_logistic_regression(f[at], y, f, k, seed=d)
            p = np.exp(log_p - log_p.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            net_cls, lr_cls = p.argmax(1), lr.argmax(1)
            agree = float((net_cls == lr_cls).mean())
            conf = float(p.max(1).mean())
            s_net, s_lr = np.bincount(net_cls, minlength=k) / len(net_cls), np.bincount(lr_cls, minlength=k) / len(lr_cls)
            tv = 0.5 * float(np.abs(s_net - s_lr).sum())
            ent = float(-(s_net * np.log(s_net + 1e-12)).sum() / np.log(k))   # evenness of the map's shares
            grid = np.zeros(scene.gt.size, np.int64)
            grid[vidx] = ids_of[net_cls]
            oa = B.scores(scene.gt, grid.reshape(scene.gt.shape), mask)["oa"]
            rows.append((oa, agree, conf, tv, ent))
            print(f"{key} draw {d} win={trained.window} OA {oa:.1f} agree {100 * agree:.1f} conf {conf:.3f} "
                  f"share_tv {tv:.3f} evenness {ent:.3f}", flush=True)
        a = np.array(rows)
        for j, name in enumerate(["agree", "conf", "share_tv", "evenness"], start=1):
            rho, pv = spearmanr(a[:, 0], a[:, j])
            print(f"{key:20s} spearman(OA, {name}) = {rho:+.2f} (p {pv:.3f})", flush=True)


if __name__ == "__main__":
    main()
