"""Few-shot classification and applying a saved model: read, check, train, predict tile by tile, write.

Written once for every front end (Processing, the dock's task, the command line). Every
check that can fail runs before the first training step; the outputs of a run appear
together, complete, or not at all (:class:`~diffclip_qgis.core.files.PendingOutputs`).
"""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import replace
from itertools import combinations, count
from statistics import median
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.checkpoint import check_inputs, load_model, save_model
from ..core.classes import ClassInfo, complete_classes, load_class_list, match_prompts, matching_entry
from ..core.config import Preset, fewshot_pretrain_epochs, get_preset, set_fewshot_pretrain_epochs, set_finetune_epochs
from ..core.device import describe_device, resolve_device
from ..core.files import (GDAL_SIDECARS, GEOTIFF, MODEL_FILE, OutputPathError, PendingOutputs, check_output_kinds,
                          check_output_paths, check_writable, keep_alive, same_file, temp_folder_beside)
from ..core.infer import Predictor
from ..core.pipeline import fewshot_classifier
from ..core.normalize import BandStats, scale_mismatch
from ..core.window_rule import few_labels, skips_cross_validation
from ..core.windows import InputError, fit_input_stats, number_ranges, sample_valid_pixels
from ..core.progress import SILENT, Callback
from ..gis.raster import (RasterStack, SubsetSource, check_class_ids, dataset_files, grid_bounds, style_path,
                          write_classification)
from ..gis.samples import SampleSet, samples_from_geometries
from .distributed import from_main, gather_tiles, is_main, world
from .phases import RunProgress
from .requests import ApplyRequest, ClassifyRequest, ClassifyResult, Extent

MODEL_BYTES = 24 << 20   # room kept for a model file (3 MB with the cpu preset, 13 MB with paper)
ID_LIKE_CLASSES = 20     # more classes than this, each with one sample: the class field is a feature id


# -- shared steps --------------------------------------------------------------------------------------
def input_files(paths: Sequence[str]) -> List[str]:
    """The files input rasters read (a VRT's sources too)."""
    return [f for p in paths if p for f in dataset_files(p)]


def classification_files(path: str) -> List[str]:
    """A classification output and the sidecars that go with it (GDAL's, the .qml style)."""
    return raster_files(path) + [style_path(path)] if path else []


def check_input_styles(inputs: Sequence[str], output: str) -> None:
    """Refuse a map whose .qml would be an input's: QGIS loads ``name.qml`` as the style of ``name.vrt`` too."""
    style = style_path(output) if output else ""
    for path in inputs:
        if style and same_file(style, style_path(path)):
            raise OutputPathError(f"OUTPUT ({output}) would write its class style {os.path.basename(style)} beside "
                                  f"the input {os.path.basename(path)}, which QGIS would then draw as classes. Choose "
                                  "another name for OUTPUT.")


def raster_files(path: str) -> List[str]:
    """A raster output and its GDAL sidecars."""
    return [path] + [path + s for s in GDAL_SIDECARS] if path else []


def open_stack(paths: Sequence[str], callback: Callback) -> RasterStack:
    """The input rasters on the first one's grid, described in the log."""
    stack = RasterStack(paths, log=callback.gis_log)
    callback.log("Inputs: " + "; ".join(
        f"{info.name} ({count} bands)" for info, count in zip(stack.infos, stack.band_counts))
        + f" on a grid of {stack.width} x {stack.height} px (width x height).")
    return stack


def fine_tuning_length(cfg) -> str:
    """The fine-tuning length as the run will have it: the preset's step cap (the epochs follow from the sample
    count), or the epochs set."""
    if cfg.max_steps is None:
        return f"{cfg.epochs} fine-tuning epochs"
    return f"up to {max(cfg.max_steps, cfg.unlabelled_steps if cfg.unlabelled else 0)} fine-tuning steps"


def classified_area(stack: RasterStack, extent: Optional[Extent], callback: Callback):
    """The stack, or the part of it inside ``extent`` (error when it does not overlap)."""
    if extent is None:
        return stack
    xmin, ymin, xmax, ymax = extent
    rx0, ry0, rx1, ry1 = grid_bounds(stack.geotransform, stack.width, stack.height)
    share = max(0.0, min(xmax, rx1) - max(xmin, rx0)) * max(0.0, min(ymax, ry1) - max(ymin, ry0)) / max(
        (xmax - xmin) * (ymax - ymin), 1e-300)
    if 0 < share < 0.01:   # typed in GDAL's order?
        callback.warn(f"EXTENT reaches far beyond the raster (it overlaps {100 * share:.2g} % of it). EXTENT is in "
                      "QGIS's order xmin,xmax,ymin,ymax, not GDAL's xmin,ymin,xmax,ymax.")
    row0, col0, rows, cols = stack.pixel_window(*extent)
    callback.log(f"Classifying only inside the extent: rows {row0}-{row0 + rows - 1}, "
                 f"columns {col0}-{col0 + cols - 1} ({cols} x {rows} px).")
    return SubsetSource(stack, row0, col0, rows, cols)


def check_room(source, classes: Sequence[ClassInfo], output: str, confidence: str = "", model: str = "",
               smoothing: int = 0) -> None:
    """The output folders take files and have room for the outputs at their uncompressed size, and the
    output's folder for the working files beside it (the raw map to smooth, the ranks' tiles under torchrun)."""
    pixels = source.height * source.width
    class_bytes = 1 if max(c.id for c in classes) <= 255 else 2
    work = (class_bytes + (4 if confidence else 0) if smoothing > 0 else 0) + (12 if world()[1] > 1 else 0)
    check_writable({"OUTPUT": (output, pixels * (class_bytes + work)), "OUTPUT_CONFIDENCE": (confidence, pixels * 4),
                    "OUTPUT_MODEL": (model, MODEL_BYTES)})


def check_pixels_to_classify(source, stats: Sequence[BandStats], infos) -> None:
    """Refuse, before classifying, an area where no pixel has data in every band the model uses (``stats``),
    naming the bands that are empty there."""
    try:
        sample_valid_pixels(source, stats, 16)
        return
    except InputError:
        pass
    try:
        found = fit_input_stats(source, infos)
    except InputError as e:   # e.g. an extent that lies in a gap of a mosaic
        inside = isinstance(source, SubsetSource)
        raise InputError(f"Nothing to classify{' inside the extent' if inside else ''}: {e}"
                         + (" Or choose an extent where the inputs hold data." if inside else "")) from None
    empty = [f"{info.name} band(s) {number_ranges([b + 1 for b in sorted(set(used.bands) - set(there.bands))])}"
             for info, used, there in zip(infos, stats, found) if set(used.bands) - set(there.bands)]
    raise InputError("Nothing to classify: " + ("; ".join(empty) + " hold no data there" if empty else
                                                "no pixel has data in every input at once")
                     + ", and the model needs every band it was trained on. Check the inputs' nodata values, or "
                     "choose inputs (or an extent) where they hold data.")


def warn_of_other_units(trained: Sequence[BandStats], found: Sequence[BandStats], infos, callback: Callback) -> None:
    """A warning per input whose values look like other units or a scale factor than the model's training data."""
    for info, t, f in zip(infos, trained, found):
        difference = scale_mismatch(t, f)
        if difference:
            callback.warn(f"{info.name}: {difference}. Other units or a scale factor (e.g. reflectance x 10000)? "
                          "The map may be poor: give the inputs in the units of the training data.")


def device_for(name: str, callback: Callback):
    device = resolve_device(name)
    callback.log(f"Device: {describe_device(device)}.")
    return device


def classify_to_files(trained, source, device, output: str, confidence: str, smoothing: int,
                      callback: Callback, outputs: PendingOutputs) -> None:
    """Predict tile by tile into temporary files of ``outputs``, majority-smoothed when ``smoothing`` > 0.

    Smoothing reads a raw classification from a hidden folder beside the output, removed afterwards.
    Under torchrun every rank classifies its share of the tiles and rank 0 writes the files.
    """
    predictor = Predictor(trained, device)
    rank, ranks = world()

    def checked(blocks):
        yield from blocks
        callback.check()  # a cancel during the last block still leaves no output

    geo = dict(height=source.height, width=source.width, geotransform=source.geotransform,
               crs_wkt=source.crs_wkt, classes=trained.classes, log=callback.gis_log, outputs=outputs)
    callback.log(f"Classifying {source.width} x {source.height} px with {predictor.window} x "
                 f"{predictor.window} windows into {len(trained.classes)} classes.")
    tiles = checked(predictor.iter_tiles(source, callback=callback, shard=(rank, ranks)))
    if ranks > 1:
        tiles = gather_tiles(tiles, source.height, source.width, output)
        if not is_main():
            for _ in tiles:  # store this rank's tiles for rank 0
                pass
            return
    if smoothing <= 0:
        write_classification(output, tiles, confidence_path=confidence or None, **geo)
        callback.progress("writing", 1.0)
        return
    from ..gis.smoothing import smoothed_tiles

    with temp_folder_beside(output, "smoothing") as folder:
        raw = os.path.join(folder, "raw.tif")
        raw_conf = os.path.join(folder, "raw_confidence.tif") if confidence else None
        write_classification(raw, tiles, confidence_path=raw_conf, **dict(geo, outputs=None))
        callback.progress("smoothing", 0.0)
        callback.log(f"Majority smoothing with radius {smoothing} px (nodata stays nodata).")

        def smoothing_progress(fraction: float) -> None:
            keep_alive(folder)
            callback.progress("smoothing", fraction)

        smoothed = smoothed_tiles(raw, smoothing, raw_conf, progress=smoothing_progress, check=callback.check)
        write_classification(output, checked(smoothed), confidence_path=confidence or None, **geo)
        callback.progress("writing", 1.0)


# -- few-shot classification ---------------------------------------------------------------------------
def classify_preset(req: ClassifyRequest) -> Preset:
    """The named preset with the request's window, epochs, class proportions and seed."""
    preset = get_preset(req.preset)
    preset.window = "auto" if str(req.window) == "auto" else int(req.window)
    preset.pretrain.seed = preset.finetune.seed = req.seed
    set_fewshot_pretrain_epochs(preset, fewshot_pretrain_epochs(preset) if req.pretrain_epochs is None
                                else req.pretrain_epochs)
    if req.epochs is not None:
        if req.epochs < 1:
            raise ValueError(f"EPOCHS must be at least 1 (or -1 for the preset's {preset.finetune.epochs}).")
        set_finetune_epochs(preset, req.epochs)
    if not 0.0 <= req.class_proportions <= 1.0:   # also refuses NaN
        raise ValueError(f"CLASS_PROPORTIONS must be between 0 (equal shares) and 1 (the shares estimated in the "
                         f"scene); got {req.class_proportions}.")
    preset.finetune.prior_strength = req.class_proportions
    return preset


def will_pretrain(req: ClassifyRequest) -> bool:
    """Whether the run pretrains on its inputs before fine-tuning."""
    return not req.pretrained and classify_preset(req).pretrain.epochs > 0


def will_choose_window(req: ClassifyRequest) -> bool:
    """Whether the run cross-validates the window size: window auto, unless few labels take it from the scene.

    Counts sample features per class: a lower bound on the labelled pixels (a polygon may cover several).
    """
    preset = classify_preset(req)
    counts = Counter(str(v) for v in req.samples.values)
    return preset.window == "auto" and not skips_cross_validation(preset, median(counts.values()) if counts else 0)


def run_phases(req: ClassifyRequest) -> RunProgress:
    """The phases the run will have, for the progress bars of the dock and of Processing."""
    return RunProgress(pretrain=will_pretrain(req), choose_window=will_choose_window(req))


def read_samples(req: ClassifyRequest, stack: RasterStack, callback: Callback) -> SampleSet:
    s = req.samples
    samples = samples_from_geometries(s.wkbs, s.values, stack.geotransform, stack.height, stack.width,
                                      s.crs_wkt, stack.crs_wkt, log=callback.gis_log)
    check_class_ids(c.id for c in samples.classes)
    counts = {c.id: int((samples.class_ids == c.id).sum()) for c in samples.classes}
    if len(counts) > ID_LIKE_CLASSES and max(counts.values()) == 1:
        raise ValueError(f"{len(counts)} classes of one sample each: the class field looks like a feature id, not a "
                         "class. Choose the field that holds the class (CLASS_FIELD), e.g. class_id.")
    callback.log(f"{len(s.wkbs)} sample features -> {len(samples.rows)} labelled pixels: "
                 + ", ".join(f"{c.name} {counts[c.id]}" for c in samples.classes) + ".")
    return samples


def resolve_classes(req: ClassifyRequest, samples: SampleSet, callback: Callback) -> Tuple[List[ClassInfo], SampleSet]:
    """The request's classes, or the samples' classes named and prompted by the class list and template; and the
    samples, numbered by the class list where it gives ids for the names of a text class field."""
    if req.classes is not None:
        return complete_classes(req.classes, req.prompt_template), samples
    entries = load_class_list(req.prompts) if req.prompts else None
    # Integer class values only give placeholder names: let the class list name them.
    found = [ClassInfo(c.id, "" if c.name == f"class {c.id}" else c.name) for c in samples.classes]
    matches = [matching_entry(c, entries) for c in found]
    samples, found = numbered_by_class_list(samples, found, matches, entries, req.prompts)
    if entries and not any(matches):
        raise ValueError(f"None of the {len(entries)} classes of {os.path.basename(req.prompts)} matches the samples' "
                         f"classes ({', '.join(c.name or str(c.id) for c in found)}): entries match by id for a "
                         "whole-number class field and by name for a text one. Check that PROMPTS and CLASS_FIELD "
                         "belong to these samples.")
    unused = [e.name or str(e.id) for e in entries or [] if not any(e is m for m in matches)]
    if unused:
        callback.warn(f"{os.path.basename(req.prompts)}: no samples of {', '.join(unused)}; "
                      "these classes are left out.")
    classes = match_prompts(found, entries, req.prompt_template)
    if "{name}" not in req.prompt_template and len({c.prompt for c in classes}) < len(classes):
        raise ValueError(f"Several classes get the same prompt '{req.prompt_template}' from PROMPT_TEMPLATE, which "
                         "has no {name}: every class needs its own prompt. Use {name} in PROMPT_TEMPLATE or give "
                         "prompts in PROMPTS.")
    return classes, samples


def numbered_by_class_list(samples: SampleSet, found: List[ClassInfo], matches: List[Optional[ClassInfo]],
                           entries: Optional[List[ClassInfo]], prompts: str) -> Tuple[SampleSet, List[ClassInfo]]:
    """A text class field's classes (numbered by the names' order) take the ids their class-list entries give, so
    the map's values are the list's, as with an id field; the others keep theirs unless the list uses them, else
    follow above every id the list and the samples use."""
    pairs = [(c, m) for c, m in zip(found, matches) if c.name and m is not None and m.id > 0]
    for (a, entry), (b, other) in combinations(pairs, 2):
        if entry is other:
            raise ValueError(f"The sample classes '{a.name}' and '{b.name}' both match the class '{entry.name}' (id "
                             f"{entry.id}) of {os.path.basename(prompts)}: give them one spelling in the class field.")
    given = {c.id: m.id for c, m in pairs}
    listed = {e.id for e in entries or [] if e.id > 0} | set(given.values())
    spare = count(max([*listed, *(c.id for c in found)]) + 1)
    renumber = {}
    for c in found:
        if c.id in given:
            renumber[c.id] = given[c.id]
        elif c.name and c.id in listed:   # a text class's rank that the list gives another class
            renumber[c.id] = next(spare)
        else:
            renumber[c.id] = c.id
    if all(old == new for old, new in renumber.items()):
        return samples, found
    table = np.zeros(max(renumber) + 1, dtype=np.int64)
    table[list(renumber)] = list(renumber.values())
    renumbered = replace(samples, class_ids=table[samples.class_ids],
                         classes=[replace(c, id=renumber[c.id]) for c in samples.classes])
    return renumbered, [replace(c, id=renumber[c.id]) for c in found]


def fewshot_classify(req: ClassifyRequest, callback: Callback = SILENT) -> ClassifyResult:
    """Train a few-shot classifier on the samples and classify the inputs (inside ``req.extent``)."""
    t0 = time.perf_counter()
    callback.progress("reading", 0.0)
    check_output_paths({"INPUTS": input_files(req.inputs), "SAMPLES": req.samples.files, "PROMPTS": [req.prompts],
                        "PRETRAINED": [req.pretrained]},
                       {"OUTPUT": classification_files(req.output), "OUTPUT_CONFIDENCE": raster_files(req.output_confidence),
                        "OUTPUT_MODEL": [req.output_model]})
    check_input_styles(req.inputs, req.output)
    check_output_kinds({"OUTPUT": (req.output, GEOTIFF), "OUTPUT_CONFIDENCE": (req.output_confidence, GEOTIFF),
                        "OUTPUT_MODEL": (req.output_model, MODEL_FILE)})
    outputs = PendingOutputs([req.output, style_path(req.output), req.output_confidence, req.output_model])   # as now
    preset = classify_preset(req)
    device = device_for(req.device, callback)
    with open_stack(req.inputs, callback) as stack:
        samples = read_samples(req, stack, callback)
        classes, samples = resolve_classes(req, samples, callback)
        callback.log("Classes: " + "; ".join(f"{c.id} {c.name} ({c.prompt!r})" for c in classes) + ".")
        source = classified_area(stack, req.extent, callback)
        check_room(source, classes, req.output, req.output_confidence, req.output_model, req.smoothing)
        pretrained = None
        if req.pretrained:
            pretrained = load_model(req.pretrained)
            callback.log(f"Using the encoder of {req.pretrained} (pretrained with {pretrained.pretrain_window} x "
                         f"{pretrained.pretrain_window} windows); no pretraining on the inputs.")
        elif preset.pretrain.epochs == 0:
            callback.log("Pretraining epochs 0: fine-tuning a randomly initialised encoder.")
        stats = None
        if req.extent is not None:   # an extent without data in a band training will use fails now, not after it
            stats = pretrained.stats if pretrained else fit_input_stats(stack, stack.infos, callback=callback)
            check_pixels_to_classify(source, stats, stack.infos)
        callback.log(f"Preset {preset.name}: window {preset.window}, "
                     + (f"{preset.pretrain.epochs} pretraining epochs, " if not req.pretrained else "")
                     + fine_tuning_length(preset.finetune) + ", class proportions "
                     f"{preset.finetune.prior_strength:g}, seed {req.seed}.")
        callback.progress("reading", 1.0)
        trained = from_main(fewshot_classifier(stack, samples.rows, samples.cols, samples.class_ids, classes, preset,
                                               device, infos=stack.infos, pretrained=pretrained, callback=callback,
                                               stats=stats)
                            if is_main() else None)   # under torchrun rank 0 trains, every rank classifies
        with outputs:  # every output appears together, or none does
            classify_to_files(trained, source, device, req.output, req.output_confidence, req.smoothing, callback,
                              outputs)
            if req.output_model and is_main():
                save_model(trained, req.output_model, outputs)
    if req.output_model:
        callback.log(f"Model saved to {req.output_model}.")
    return ClassifyResult(output=req.output, output_confidence=req.output_confidence, output_model=req.output_model,
                          classes=trained.classes, window=trained.window,
                          window_scores=dict(trained.report.get("window_scores", {})), samples=int(len(samples.rows)),
                          seconds=time.perf_counter() - t0, device=describe_device(device),
                          few_samples=few_labels(preset, median(trained.report["samples_per_class"].values())))


# -- applying a saved model -----------------------------------------------------------------------------
def apply_model(req: ApplyRequest, callback: Callback = SILENT) -> Dict[str, str]:
    """Classify the inputs with a saved classifier; returns the written outputs."""
    callback.progress("reading", 0.0)
    check_output_paths({"INPUTS": input_files(req.inputs), "MODEL": [req.model]},
                       {"OUTPUT": classification_files(req.output), "OUTPUT_CONFIDENCE": raster_files(req.output_confidence)})
    check_input_styles(req.inputs, req.output)
    check_output_kinds({"OUTPUT": (req.output, GEOTIFF), "OUTPUT_CONFIDENCE": (req.output_confidence, GEOTIFF)})
    outputs = PendingOutputs([req.output, style_path(req.output), req.output_confidence])   # as they are now
    device = device_for(req.device, callback)
    trained = load_model(req.model)
    if not trained.is_classifier:
        raise ValueError(f"{req.model} is a pretrained encoder without classes. Fine-tune it with "
                         "'DiffCLIP Few-shot Classify' (PRETRAINED = this file) and apply the model it saves.")
    callback.log(f"Model {req.model}: {len(trained.classes)} classes ("
                 + ", ".join(f"{c.id} {c.name}" for c in trained.classes)
                 + f"), {trained.window} x {trained.window} windows, inputs "
                 + ", ".join(f"{m.name} ({m.band_count} bands)" for m in trained.modalities) + ".")
    with open_stack(req.inputs, callback) as stack:
        check_inputs(trained, stack.band_counts, stack.infos, warn=callback.warn)
        source = classified_area(stack, req.extent, callback)
        check_pixels_to_classify(source, trained.stats, stack.infos)
        warn_of_other_units(trained.stats, fit_input_stats(source, stack.infos), stack.infos, callback)
        check_room(source, trained.classes, req.output, req.output_confidence, smoothing=req.smoothing)
        callback.progress("reading", 1.0)
        with outputs:
            classify_to_files(trained, source, device, req.output, req.output_confidence, req.smoothing, callback,
                              outputs)
    return {"OUTPUT": req.output, "OUTPUT_CONFIDENCE": req.output_confidence}
