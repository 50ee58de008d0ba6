"""Active-learning benchmark: a simulated user labels suggested pixels or random ones, round after round.

Each draw starts from the same 2-shot sample; each of ``rounds`` rounds adds K labels (K =
number of classes), read from the reference raster, either at the pixels `suggest` proposes or
at random labelled pixels; the classifier is trained again after each round (the preset's
defaults) and scored on every other labelled pixel. Candidates are the scene's labelled pixels
only (the simulated user can label nothing else). Used by `make bench` (section "suggestions").
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np
import torch

from benchmark import draw, scene_by_key, scores
from diffclip_qgis.core.config import get_preset
from diffclip_qgis.core.infer import Predictor
from diffclip_qgis.core.pipeline import fewshot_classifier
from diffclip_qgis.core.suggest import suggest

STRATEGIES = ("suggested", "random")


def _train_and_score(scene, rows, cols, seed):
    preset = get_preset("cpu")
    preset.finetune.seed = seed
    labels = scene.gt[rows, cols]
    trained = fewshot_classifier(scene.source, rows, cols, labels, scene.classes, preset, torch.device("cpu"),
                                 scene.infos)
    pred, _ = Predictor(trained, torch.device("cpu")).predict(scene.source)
    test = scene.gt > 0
    test[rows, cols] = False
    return trained, scores(scene.gt, pred, test)["oa"]


def active_learning_draw(scene_key: str, draw_index: int, rounds: int = 3) -> Dict[str, List[dict]]:
    """OA after the start and after every round, for both strategies, on one paired draw."""
    scene = scene_by_key(scene_key)
    k = len(scene.classes)
    r0, c0, _ = draw(scene.gt, scene.classes, 2, seed=1000 * draw_index + 2)
    pool_r, pool_c = np.nonzero(scene.gt > 0)
    rng = np.random.default_rng(77 + draw_index)
    out = {}
    trained0, oa0 = _train_and_score(scene, r0, c0, draw_index)
    for strategy in STRATEGIES:
        rows, cols, trained = r0.copy(), c0.copy(), trained0
        curve = [{"labels": len(rows), "oa": oa0}]
        for step in range(rounds):
            if strategy == "suggested":
                found = suggest(trained, scene.source, k, rows, cols, torch.device("cpu"), seed=step,
                                pool=(pool_r, pool_c))
                new_r, new_c = found.rows, found.cols
            else:
                taken = set(zip(rows.tolist(), cols.tolist()))
                free = np.array([(r, c) not in taken for r, c in zip(pool_r.tolist(), pool_c.tolist())])
                pick = rng.choice(np.flatnonzero(free), size=k, replace=False)
                new_r, new_c = pool_r[pick], pool_c[pick]
            rows, cols = np.concatenate([rows, new_r]), np.concatenate([cols, new_c])
            trained, oa = _train_and_score(scene, rows, cols, draw_index)
            curve.append({"labels": len(rows), "oa": oa})
        out[strategy] = curve
    return out


def plot(results: Dict[str, List[Dict[str, List[dict]]]], path: str) -> None:
    """OA against labels per scene: mean over draws, suggested against random."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.4), squeeze=False)
    for ax, (scene, draws) in zip(axes[0], results.items()):
        for strategy, style in zip(STRATEGIES, ("o-", "s--")):
            labels = [p["labels"] for p in draws[0][strategy]]
            oa = np.array([[p["oa"] for p in d[strategy]] for d in draws])
            ax.errorbar(labels, oa.mean(0), yerr=oa.std(0), fmt=style, capsize=3, label=strategy)
        ax.set_title(scene, fontsize=9)
        ax.set_xlabel("labelled pixels")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("OA (%)")
    axes[0][0].legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_rows(results) -> List[str]:
    """Markdown rows: scene, OA at the start and after the last round for both strategies, the gain."""
    lines = ["| scene | draws | start (2 shots) | after 3 rounds, suggested | after 3 rounds, random | suggested - random |",
             "|---|---|---|---|---|---|"]
    for scene, draws in results.items():
        start = np.mean([d["suggested"][0]["oa"] for d in draws])
        last = {s: np.array([d[s][-1]["oa"] for d in draws]) for s in STRATEGIES}
        gain = last["suggested"] - last["random"]
        lines.append(f"| {scene} | {len(draws)} | {start:.1f} | {last['suggested'].mean():.1f} +- "
                     f"{last['suggested'].std():.1f} | {last['random'].mean():.1f} +- {last['random'].std():.1f} | "
                     f"{gain.mean():+.1f} (worst draw {gain.min():+.1f}) |")
    return lines
