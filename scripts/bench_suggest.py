"""Active-learning benchmark: a simulated user labels suggested pixels or random ones, round after round.

Each draw starts from the same 2-shot sample; each of ``rounds`` rounds adds K labels (K =
number of classes), read from the reference raster, either at the pixels `suggest` proposes or
at random labelled pixels; the classifier is trained again after each round (the preset's
defaults) and scored on every other labelled pixel. Candidates are the scene's labelled pixels
only (the simulated user can label nothing else). Used by `make bench` (section "suggestions");
alone, it imports the plugin from the source tree:

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/bench_suggest.py \
        --scenes demo jasper_ridge --draws 5 --rounds 3 --workers 1
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import diffclip_qgis  # noqa: E402,F401  (source tree when run alone; under benchmark.py already imported from build/)

from benchmark import SCENES, draw, run_in_workers, scene_by_key, scores  # noqa: E402
from diffclip_qgis.core.config import get_preset  # noqa: E402
from diffclip_qgis.core.infer import Predictor  # noqa: E402
from diffclip_qgis.core.pipeline import fewshot_classifier  # noqa: E402
from diffclip_qgis.core.suggest import suggest  # noqa: E402

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


@dataclass
class Job:
    """One paired draw of one scene (a key of benchmark.SCENES)."""
    scene: str
    draw: int
    rounds: int


def run_job(job: Job) -> Tuple[dict, List[str]]:
    """One draw's curves (with scene, draw and seconds) and its log line."""
    t0 = time.perf_counter()
    curves = active_learning_draw(job.scene, job.draw, job.rounds)
    seconds = time.perf_counter() - t0
    start, sug, rnd = curves["suggested"][0], curves["suggested"][-1], curves["random"][-1]
    line = (f"[{job.scene}] suggestions draw {job.draw}: OA {start['oa']:.1f} at {start['labels']} labels -> "
            f"suggested {sug['oa']:.1f}, random {rnd['oa']:.1f} ({sug['oa'] - rnd['oa']:+.1f}) at {sug['labels']} "
            f"labels, {seconds:.0f} s")
    return {"scene": job.scene, "draw": job.draw, "seconds": seconds, **curves}, [line]


def by_scene(draws: List[dict]) -> Dict[str, List[dict]]:
    """The draws grouped by scene, in order."""
    out: Dict[str, List[dict]] = {}
    for d in draws:
        out.setdefault(d["scene"], []).append(d)
    return out


def measure(scenes: List[str], draws: int, rounds: int, workers: int, png: str, log, done=lambda draws: None) -> List[dict]:
    """Run every scene's paired draws in ``workers`` processes; after each, plot those so far to ``png`` and
    pass them to ``done``. Returns them."""
    def finished(results):
        plot(by_scene(results), png)
        done(results)

    jobs = [Job(scene, d, rounds) for scene in scenes for d in range(draws)]
    return run_in_workers(run_job, jobs, workers, log, finished)


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
    rounds = len(next(iter(results.values()))[0]["suggested"]) - 1
    lines = [f"| scene | draws | start (2 shots) | after {rounds} rounds, suggested | after {rounds} rounds, random | "
             "suggested - random |", "|---|---|---|---|---|---|"]
    for scene, draws in results.items():
        start = np.mean([d["suggested"][0]["oa"] for d in draws])
        last = {s: np.array([d[s][-1]["oa"] for d in draws]) for s in STRATEGIES}
        gain = last["suggested"] - last["random"]
        lines.append(f"| {scene} | {len(draws)} | {start:.1f} | {last['suggested'].mean():.1f} +- "
                     f"{last['suggested'].std():.1f} | {last['random'].mean():.1f} +- {last['random'].std():.1f} | "
                     f"{gain.mean():+.1f} (worst draw {gain.min():+.1f}) |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", nargs="+", default=["demo"], choices=list(SCENES))
    parser.add_argument("--draws", type=int, default=5, help="paired draws per scene")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of K new labels")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="single-threaded processes")
    parser.add_argument("--png", default=os.path.join(ROOT, "reports", "active_learning.png"))
    args = parser.parse_args()
    draws = measure(args.scenes, args.draws, args.rounds, args.workers, args.png, lambda line: print(line, flush=True))
    if not draws:
        sys.exit("no draw finished")
    print("\n".join(summary_rows(by_scene(draws))))
    print(f"plot: {args.png}")


if __name__ == "__main__":
    main()
