"""The two jobs users run: pretrain an encoder, and train a few-shot classifier.

Both take a :class:`~.source.PixelSource`, so they work on numpy arrays and on GDAL
rasters alike. Processing algorithms, the dock's task and the benchmark all call these.
"""
from __future__ import annotations

import copy
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .classes import ClassInfo
from .config import WINDOW_CHOICES, Preset, fewshot_pretrain_epochs
from .checkpoint import check_inputs
from .finetune import finetune
from .infer import class_text, classify_windows
from .model import DiffCLIP
from .normalize import BandStats
from .pretrain import pretrain
from .priors import fit_class_priors
from .progress import SILENT, Callback
from .source import ModalityInfo, PixelSource
from .threads import side_by_side
from .tokenizer import check_prompts
from .trained import ModalityMeta, TrainedModel
from .window_rule import few_labels, neighbour_noise_share, scene_window
from .windows import InputError, extract_windows, fit_input_stats, sample_valid_pixels, window_offsets

# How many standard errors a window's cross-validated accuracy must beat the scene's choice by to overrule it:
# the scene's choice stands unless the labels clearly say otherwise (docs/few_labels.md).
CLEARLY_BETTER_Z = 2.0


# Logged with few_label_max_shots samples per class or fewer (docs/few_labels.md: the draws' spread).
FEW_LABELS_HINT = ("Few samples per class (median {median:g}): the map depends on which pixels were labelled. Look "
                   "for a class that covers far more of the map than it should and label more pixels there; Suggest "
                   "samples (the dock's button, the DiffCLIP Suggest Samples algorithm or the command line's "
                   "suggestsamples) marks where labels would help most.")


def _metas(source: PixelSource, infos: Optional[Sequence[ModalityInfo]], stats) -> List[ModalityMeta]:
    infos = infos or [ModalityInfo(f"modality {m + 1}") for m in range(len(source.band_counts))]
    return [ModalityMeta(info.name, count, st, info.wavelengths)
            for info, count, st in zip(infos, source.band_counts, stats)]


def pretrain_encoder(source: PixelSource, preset: Preset, device: torch.device,
                     infos: Optional[Sequence[ModalityInfo]] = None, callback: Callback = SILENT,
                     stats: Optional[List[BandStats]] = None) -> TrainedModel:
    """Masked-diffusion pretraining on windows sampled from the valid pixels of the whole input.

    Sizes and schedule come from ``preset`` (``preset.model.window`` is the pretraining window);
    ``stats`` are the inputs' band statistics when already fitted.
    """
    t0 = time.perf_counter()
    stats = stats or fit_input_stats(source, infos, callback=callback)
    cfg = preset.pretrain
    window = preset.model.window
    _check_window_fits(source, window)
    torch.manual_seed(cfg.seed)
    network = DiffCLIP([len(st.bands) for st in stats], preset.model)
    history, samples = [], 0
    if cfg.epochs > 0:
        rows, cols = sample_valid_pixels(source, stats, cfg.sample_count, cfg.seed)
        windows, _ = extract_windows(source, stats, rows, cols, window)
        samples = len(rows)
        callback.log(f"Pretraining on {samples} unlabelled {window} x {window} windows, {cfg.epochs} epochs.")
        history = pretrain(network, windows, cfg, device, callback)
        callback.log(f"Pretraining took {time.perf_counter() - t0:.1f} s; loss {history[0]:.4f} -> {history[-1]:.4f}.")
    else:
        callback.log(f"No pretraining: the encoder starts from random weights (windows up to {window} x {window}).")
    return TrainedModel(network, _metas(source, infos, stats), pretrain_window=window,
                        report={"pretrain_loss": history, "pretrain_seconds": time.perf_counter() - t0,
                                "pretrain_samples": samples})


def _check_window_fits(source: PixelSource, window: int) -> None:
    if window > min(source.height, source.width):
        raise InputError(
            f"The {window} x {window} window is larger than the raster ({source.width} x {source.height} px). "
            "Choose a smaller window or a larger raster."
        )


def _largest_window(source: PixelSource) -> int:
    """The largest odd window that fits inside the raster."""
    side = min(source.height, source.width)
    return side if side % 2 else side - 1


def _center_crop(windows: List[np.ndarray], size: int) -> List[np.ndarray]:
    full = windows[0].shape[-1]
    o = (full - size) // 2
    return [np.ascontiguousarray(w[..., o:o + size, o:o + size]) for w in windows]


def _labels(class_ids: np.ndarray, classes: Sequence[ClassInfo]) -> np.ndarray:
    index = {c.id: i for i, c in enumerate(classes)}
    unknown = sorted(set(int(v) for v in class_ids) - set(index))
    if unknown:
        raise InputError(f"Samples use class ids {unknown} that are not in the class list. Add them to the class list.")
    return np.array([index[int(v)] for v in class_ids], dtype=np.int64)


def validate_samples(labels: np.ndarray, classes: Sequence[ClassInfo]) -> None:
    """At least two classes, and every class with at least one valid sample."""
    if len(classes) < 2:
        raise InputError(f"At least 2 classes are needed; got {len(classes)}. Label samples of another class.")
    counts = np.bincount(labels, minlength=len(classes))
    empty = [c.name for c, n in zip(classes, counts) if n == 0]
    if empty:
        raise InputError(f"Class(es) {', '.join(empty)} have no valid samples (none on valid pixels of every input). "
                         "Add samples on valid pixels or remove the class.")


def fewshot_classifier(source: PixelSource, rows: np.ndarray, cols: np.ndarray, class_ids: np.ndarray,
                       classes: Sequence[ClassInfo], preset: Preset, device: torch.device,
                       infos: Optional[Sequence[ModalityInfo]] = None,
                       pretrained: Optional[TrainedModel] = None, callback: Callback = SILENT,
                       stats: Optional[List[BandStats]] = None) -> TrainedModel:
    """Fine-tune a classifier on labelled pixels, pretraining first when no encoder is given.

    ``preset.window`` is a size or ``'auto'`` (:func:`auto_window`: from the scene's neighbour
    noise share, or by cross-validation on the labelled pixels). Without ``pretrained``, the encoder is
    pretrained on ``source`` for ``fewshot_pretrain_epochs(preset)`` epochs (0: randomly
    initialised, the ``cpu`` preset's default). ``stats``: the input statistics, when the caller has fitted them
    already (used without ``pretrained``).
    """
    classes = list(classes)
    labels = _labels(np.asarray(class_ids), classes)
    validate_samples(labels, classes)
    text_cfg = pretrained.config if pretrained is not None else preset.model
    check_prompts(classes, text_cfg.context_length, text_cfg.vocab_size, warn=callback.log)
    preset = copy.deepcopy(preset)
    limit = _largest_window(source)
    if preset.window != "auto" and int(preset.window) > limit:
        raise InputError(f"The {preset.window} x {preset.window} window is larger than the raster "
                         f"({source.width} x {source.height} px). Choose a smaller window.")
    if pretrained is not None:
        check_inputs(pretrained, source.band_counts, infos, warn=callback.log)
        trained = TrainedModel(copy.deepcopy(pretrained.network), pretrained.modalities, pretrained.pretrain_window,
                               report=dict(pretrained.report))
        trained.network.linear_head = None
        trained.network.set_class_bias(None)
    else:
        preset.pretrain.epochs = fewshot_pretrain_epochs(preset)
        if preset.window != "auto":   # at least 3 x 3: masked diffusion needs visible tokens; 1 x 1 crops from it
            preset.model.window = max(int(preset.window), WINDOW_CHOICES[0])
        preset.model.window = min(preset.model.window, limit)
        if preset.model.window < WINDOW_CHOICES[0] and preset.pretrain.epochs > 0:
            raise InputError(f"Pretraining needs 3 x 3 windows, which are larger than the raster ({source.width} x "
                             f"{source.height} px). Set the pretraining epochs to 0, or use a larger raster.")
        stats = stats or fit_input_stats(source, infos, callback=callback)
        if preset.pretrain.epochs > 0:   # samples on nodata: refused before the long pretraining, not after it
            validate_samples(labels[extract_windows(source, stats, rows, cols, 1)[1]], classes)
        trained = pretrain_encoder(source, preset, device, infos, callback, stats)
    max_window = trained.pretrain_window
    if preset.window == "auto":
        candidates = [s for s in WINDOW_CHOICES if s <= min(max_window, limit)] or [min(max_window, limit)]
        extract = max(candidates)
    else:
        extract = int(preset.window)
        if extract > max_window:
            raise InputError(f"The encoder was pretrained with {max_window} x {max_window} windows; choose a window of "
                             f"at most {max_window}, or pretrain with a larger window.")

    windows, valid = extract_windows(source, trained.stats, rows, cols, extract)
    if not valid.all():
        callback.log(f"Skipped {int((~valid).sum())} sample(s) on nodata pixels.")
    windows, labels = [w[valid] for w in windows], labels[valid]
    validate_samples(labels, classes)
    counts = np.bincount(labels, minlength=len(classes))
    callback.log("Samples per class: " + ", ".join(f"{c.name} {n}" for c, n in zip(classes, counts)) + ".")
    median = float(np.median(counts[counts > 0]))
    if few_labels(preset, median):
        callback.log(FEW_LABELS_HINT.format(median=median))
    prompts = [c.prompt for c in classes]

    t0 = time.perf_counter()
    window = (auto_window(trained, source, windows, labels, prompts, candidates, median, preset, device, callback)
              if preset.window == "auto" else int(preset.window))
    trained.report["window_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    unlabelled = None
    if preset.finetune.unlabelled:
        hood = pseudo_label_neighbourhood(preset.finetune.pseudo_label_neighbourhood, window, source)
        unlabelled = unlabelled_windows(source, trained.stats, preset.finetune.unlabelled_samples, max(window, hood),
                                        preset.finetune.seed, rows, cols, whole_window_valid=hood > 1)
        if len(unlabelled[0]):
            callback.log(f"Fine-tuning also on {len(unlabelled[0])} unlabelled {window} x {window} windows "
                         f"(pseudo-labels above {preset.finetune.unlabelled_threshold:g} confidence"
                         + (f" over their {hood} x {hood} neighbourhood" if hood > 1 else "")
                         + (", distribution alignment" if preset.finetune.distribution_alignment else "") + ").")
        else:
            callback.warn("No unlabelled pixel of the inputs could join fine-tuning (too much nodata around them): "
                          "fine-tuning on the samples alone.")
    history = finetune(trained.network, _center_crop(windows, window), labels, prompts, preset.finetune, device, callback,
                       unlabelled=unlabelled)
    trained.report.update(finetune_loss=history, finetune_seconds=time.perf_counter() - t0,
                          samples_per_class={c.name: int(n) for c, n in zip(classes, counts)})
    callback.log(f"Fine-tuning took {trained.report['finetune_seconds']:.1f} s; loss {history[0]:.4f} -> {history[-1]:.4f}.")
    trained.window, trained.classes = window, classes
    if preset.finetune.prior_strength > 0:
        fit_class_priors(trained, source, preset.finetune.prior_strength, preset.finetune.prior_samples,
                         preset.finetune.seed, device, callback)
    return trained


def auto_window(trained: TrainedModel, source: PixelSource, windows: List[np.ndarray], labels: np.ndarray,
                prompts: Sequence[str], candidates: Sequence[int], median: float, preset: Preset,
                device: torch.device, callback: Callback) -> int:
    """The 'auto' window: from the scene's noise share where it decides (``core/window_rule.py``), else by
    cross-validation; the scores (the dock's accuracy estimate) and the share go to ``trained.report``."""
    ft = preset.finetune
    window = None
    if ft.window_from_scene:
        noise = neighbour_noise_share(source, trained.stats, ft.seed)
        trained.report["neighbour_noise_share"] = noise
        few = few_labels(preset, median)
        window = scene_window(noise, ft.noise_split, few, ft.scene_windows, max(candidates))
        why = ("the scene's noise could not be measured (10 bands or fewer, or too few valid pixels)" if noise is None else
               f"{100 * noise:.0f}% of the differences between neighbouring pixels is noise "
               f"({'below' if noise < ft.noise_split else 'at or above'} {100 * ft.noise_split:g}%)")
        if window is None:
            callback.log(f"Window by cross-validation, as {why}.")
        elif few:
            callback.log(f"Few labels (median {median:g} per class): window {window} x {window} from the scene, as {why}.")
        else:   # enough labels for cross-validation to overrule the scene where a window is clearly better
            sizes = sorted({window, *candidates})
            scores, hits = cross_validate(trained.network, windows, labels, prompts, sizes, preset, device, callback)
            trained.report["window_scores"] = scores
            better = clearly_better_window(window, hits, labels)
            listed = ", ".join(f"{s} x {s}: {100 * v:.1f}%" for s, v in scores.items())
            if better is None:
                callback.log(f"Window {window} x {window} from the scene, as {why}"
                             + (f"; in cross-validation ({listed}) no window beat it by more than "
                                f"{CLEARLY_BETTER_Z:g} standard errors of the difference, which few samples make wide "
                                "(WINDOW sets one)." if hits else "."))
            else:
                callback.log(f"The scene would take {window} x {window}, as {why}, but cross-validation scores "
                             f"{better} x {better} clearly better ({listed}): {better} x {better}.")
                window = better
    if window is None:
        window, scores = select_window(trained.network, windows, labels, prompts, candidates, preset, device, callback)
        trained.report["window_scores"] = scores
        if scores:
            callback.log("Window chosen by cross-validation on the samples: "
                         + ", ".join(f"{s} x {s}: {100 * v:.1f}%" for s, v in scores.items()) + f" -> {window} x {window}.")
    return window


def pseudo_label_neighbourhood(size: int, window: int, source: PixelSource) -> int:
    """The neighbourhood unlabelled pixels are pseudo-labelled over: ``size`` at window 1 where the raster holds it,
    else 1 (the window itself)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"pseudo_label_neighbourhood must be an odd size of 1 or more, not {size}.")
    return size if window == 1 and size <= min(source.height, source.width) else 1


def unlabelled_windows(source: PixelSource, stats, count: int, window: int, seed: int,
                       rows: np.ndarray, cols: np.ndarray, whole_window_valid: bool = False) -> List[np.ndarray]:
    """Windows at up to ``count`` random valid pixels of the whole input, the labelled pixels left out (and, with
    ``whole_window_valid``, those with nodata in their window)."""
    u_rows, u_cols = sample_valid_pixels(source, stats, count, seed + 7919)
    labelled = set(zip(np.asarray(rows).tolist(), np.asarray(cols).tolist()))
    keep = np.array([(r, c) not in labelled for r, c in zip(u_rows.tolist(), u_cols.tolist())], dtype=bool)
    valid_at = tuple(zip(*window_offsets(window))) if whole_window_valid else ((0, 0),)
    out, valid = extract_windows(source, stats, u_rows[keep], u_cols[keep], window, valid_at=valid_at)
    return [w[valid] for w in out]


def select_window(network: DiffCLIP, windows: List[np.ndarray], labels: np.ndarray, prompts: Sequence[str],
                  candidates: Sequence[int], preset: Preset, device: torch.device,
                  callback: Callback = SILENT, folds: int = 3) -> Tuple[int, Dict[int, float]]:
    """Pick the window size with the best cross-validated balanced accuracy on the labelled samples.

    Each candidate is fine-tuned briefly (a third of the epochs) from the same encoder on
    stratified folds. Ties (within one percentage point) go to the smaller, faster window.
    """
    if len(candidates) == 1:
        callback.log(f"Only the {candidates[0]} x {candidates[0]} window fits the inputs and the encoder: "
                     "no window size to compare.")
        return candidates[0], {}
    scores = cross_validate(network, windows, labels, prompts, candidates, preset, device, callback, folds)[0]
    if not scores:
        callback.log(f"A class has a single sample, so cross-validation cannot run: using the largest window that "
                     f"fits, {max(candidates)} x {max(candidates)}.")
        return max(candidates), {}
    best = max(scores.values())
    window = min(s for s, v in scores.items() if v >= best - 0.01)
    return window, scores


def cross_validate(network: DiffCLIP, windows: List[np.ndarray], labels: np.ndarray, prompts: Sequence[str],
                   sizes: Sequence[int], preset: Preset, device: torch.device, callback: Callback = SILENT,
                   folds: int = 3) -> Tuple[Dict[int, float], Dict[int, np.ndarray]]:
    """Balanced accuracy per window size of short fine-tunes (a third of the epochs) on stratified folds, and per
    size whether each sample was right when its fold was held out.

    The fine-tunes run side by side (:func:`.threads.side_by_side`: the scores do not depend on how many run at
    once). Both empty when a class has a single sample.
    """
    counts = np.bincount(labels)
    folds = int(min(folds, counts[counts > 0].min()))
    if folds < 2:
        return {}, {}
    rng = np.random.default_rng(preset.finetune.seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        fold_of[idx] = np.arange(len(idx)) % folds
    short = copy.copy(preset.finetune)
    short.epochs = max(10, preset.finetune.epochs // 3)
    if short.max_steps is not None:
        short.max_steps = min(short.max_steps, max(10, short.max_steps // 3))
    cropped = {size: _center_crop(windows, size) for size in sizes}
    jobs = [(size, f) for size in sizes for f in range(folds)]

    def held_out(job: Tuple[int, int], in_fold: Callback) -> np.ndarray:
        size, f = job
        train, test = fold_of != f, fold_of == f
        net = copy.deepcopy(network)
        finetune(net, [w[train] for w in cropped[size]], labels[train], prompts, short, device, in_fold)
        return classify_windows(net, class_text(net, prompts, device), [w[test] for w in cropped[size]])[0]

    hits = {size: np.zeros(len(labels), dtype=bool) for size in sizes}
    accs: Dict[int, List[float]] = {size: [] for size in sizes}
    with side_by_side(held_out, jobs, device, callback.cancelled) as predictions:
        for done, ((size, f), pred) in enumerate(zip(jobs, predictions), 1):
            test = fold_of == f
            accs[size].append(balanced_accuracy(labels[test], pred))
            hits[size][test] = pred == labels[test]
            callback.check()
            callback.progress("choosing window", done / len(jobs), f"{size} x {size}"
                              + (" (accuracy estimate)" if len(sizes) == 1 else "") + f", fold {f + 1}/{folds}")
    return {size: float(np.mean(a)) for size, a in accs.items()}, hits


def clearly_better_window(window: int, hits: Dict[int, np.ndarray], labels: np.ndarray,
                          z: float = CLEARLY_BETTER_Z) -> Optional[int]:
    """The size whose cross-validated hits beat ``window``'s by more than ``z`` standard errors, the best such;
    None when none does.

    Compared on the class-balanced mean of the paired per-sample differences (each sample weighted by
    1 / (classes x its class's samples)), whose standard error comes from the spread of those differences
    over all samples as one pool (a little stricter than per class when a window helps some classes only).
    """
    if window not in hits:
        return None
    counts = np.bincount(labels)
    weight = len(labels) / (np.count_nonzero(counts) * counts[labels])
    best, margin = None, 0.0
    for size, right in hits.items():
        d = weight * (right.astype(np.float64) - hits[window])
        se = d.std(ddof=1) / np.sqrt(len(d))
        if d.mean() > z * se and d.mean() > margin:
            best, margin = size, d.mean()
    return best


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``truth``."""
    return float(np.mean([np.mean(pred[truth == k] == k) for k in np.unique(truth)]))
