"""A stratified random validation sample of a classification (strata = map classes)."""
from __future__ import annotations

from ..core.area import allocate
from ..core.files import GEOPACKAGE, PendingOutputs, check_output_kinds, check_output_paths, check_writable
from ..core.progress import SILENT, Callback
from ..gis.raster import dataset_files, read_category_names
from ..gis.points import check_replaceable
from ..gis.validation import (REFERENCE_FIELD, SAMPLE_FIELDS, SAMPLE_LAYER, class_pixel_counts, draw_pixels,
                              raster_grid, write_sample_points)
from .requests import ValidationSampleRequest


def validation_sample(req: ValidationSampleRequest, callback: Callback = SILENT) -> dict:
    """Draw the sample and write it as points with an empty ``reference`` field; returns the size per class."""
    check_output_paths({"CLASSIFICATION": dataset_files(req.classification)}, {"OUTPUT": [req.output]})
    check_output_kinds({"OUTPUT": (req.output, GEOPACKAGE)})
    outputs = PendingOutputs([req.output])   # as it is when checked: filled in meanwhile, it is not replaced
    check_replaceable("OUTPUT", req.output, SAMPLE_LAYER, [REFERENCE_FIELD], SAMPLE_FIELDS)
    check_writable({"OUTPUT": (req.output, 1 << 20)})
    if req.minimum_per_class < 1 or req.sample_size < 1:
        raise ValueError("SAMPLE_SIZE and MIN_PER_CLASS must be at least 1.")
    callback.progress("reading", 0.0)
    counts = class_pixel_counts(req.classification)
    if not counts:
        raise ValueError(f"{req.classification} has no classified pixel (only 0 / nodata): nothing to sample.")
    sizes = allocate(counts, req.sample_size, req.minimum_per_class)
    if sum(sizes.values()) > req.sample_size:
        callback.warn(f"{len(counts)} classes with at least {req.minimum_per_class} samples each need "
                      f"{sum(sizes.values())} samples, more than SAMPLE_SIZE {req.sample_size}.")
    names = read_category_names(req.classification)
    rows, cols, classes = draw_pixels(req.classification, sizes, counts, req.seed)
    callback.progress("writing", 0.0)
    gt, _, _, crs = raster_grid(req.classification)
    with outputs:
        write_sample_points(req.output, rows, cols, classes, names, gt, crs, outputs)
    callback.log(f"{len(rows)} validation points (stratified by map class): " + ", ".join(
        f"{names.get(c, f'class {c}')} {n} of {counts[c]} px" for c, n in sorted(sizes.items())) + ". Fill in the "
        "'reference' field with the class you see at each point, then run the accuracy assessment with it.")
    callback.progress("writing", 1.0)
    return sizes
