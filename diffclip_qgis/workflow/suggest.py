"""Suggest where to label next: the pixels the model is least sure about, spread over map and classes."""
from __future__ import annotations

import numpy as np

from ..core.checkpoint import check_inputs, load_model
from ..core.files import GEOPACKAGE, PendingOutputs, check_output_kinds, check_output_paths, check_writable
from ..core.progress import SILENT, Callback
from ..core.suggest import Suggestions, suggest
from ..gis.points import SUGGESTION_FIELDS, SUGGESTIONS_LAYER, check_replaceable, write_points
from ..gis.samples import geometry_pixels
from .classify import classified_area, device_for, input_files, open_stack
from .requests import SuggestRequest


def suggest_samples(req: SuggestRequest, callback: Callback = SILENT) -> Suggestions:
    """Write the suggestions as points (rank, best_class, second_class, margin and the class names)."""
    callback.progress("reading", 0.0)
    sample_files = req.samples.files if req.samples is not None else []
    check_output_paths({"INPUTS": input_files(req.inputs), "MODEL": [req.model], "SAMPLES": sample_files},
                       {"OUTPUT": [req.output]})
    check_output_kinds({"OUTPUT": (req.output, GEOPACKAGE)})
    outputs = PendingOutputs([req.output])
    check_replaceable("OUTPUT", req.output, SUGGESTIONS_LAYER, schema=SUGGESTION_FIELDS)
    check_writable({"OUTPUT": (req.output, 1 << 20)})
    device = device_for(req.device, callback)
    trained = load_model(req.model)
    if not trained.is_classifier:
        raise ValueError(f"{req.model} is a pretrained encoder without classes: suggestions need a classifier from "
                         "'DiffCLIP Few-shot Classify'.")
    count = req.count if req.count is not None else 2 * len(trained.classes)
    if count < 1:
        raise ValueError(f"COUNT must be at least 1 (or -1 for 2 per class: {2 * len(trained.classes)}).")
    with open_stack(req.inputs, callback) as stack:
        check_inputs(trained, stack.band_counts, stack.infos, warn=callback.warn)
        source = classified_area(stack, req.extent, callback)
        rows = cols = np.empty(0, np.int64)
        if req.samples is not None:   # labelled pixels, in the classified area's pixel coordinates
            rows, cols = geometry_pixels(req.samples.wkbs, stack.geotransform, stack.height, stack.width,
                                         req.samples.crs_wkt, stack.crs_wkt, callback.gis_log)
            rows, cols = rows - getattr(source, "row0", 0), cols - getattr(source, "col0", 0)
        callback.progress("classifying", 0.0)
        found = suggest(trained, source, count, rows, cols, device, seed=req.seed, callback=callback)
    names = [c.name for c in trained.classes]
    ids = np.array([c.id for c in trained.classes])
    callback.progress("writing", 0.0)
    values = (list(range(1, len(found.rows) + 1)), ids[found.best].tolist(), ids[found.second].tolist(),
              [round(float(m), 4) for m in found.margin], [names[i] for i in found.best],
              [names[i] for i in found.second])
    with outputs:
        write_points(req.output, SUGGESTIONS_LAYER, found.rows, found.cols, source.geotransform, source.crs_wkt,
                     outputs, SUGGESTION_FIELDS, values)
    callback.log(f"{len(found.rows)} suggested samples (smallest margin between the two best classes first, spread "
                 "over the map and the classes): label them and run again.")
    callback.progress("writing", 1.0)
    return found
