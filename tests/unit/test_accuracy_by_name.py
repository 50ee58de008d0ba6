"""Accuracy against a reference raster whose class ids differ from the map's but whose names are the same."""
import os

import numpy as np
from osgeo import gdal

from diffclip_qgis.core.classes import ClassInfo
from diffclip_qgis.core.progress import Callback
from diffclip_qgis.gis.raster import read_category_names, read_label_raster, write_classification
from diffclip_qgis.workflow.accuracy import assess_accuracy
from diffclip_qgis.workflow.requests import AccuracyRequest

GT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__import__("diffclip_qgis").__file__))),
                  "diffclip_qgis", "demo", "demo_gt.tif")


def renumbered_map(path, relabel):
    """The demo reference written as a map, each class with the (id, name) ``relabel(name, id)`` gives."""
    labels, names = read_label_raster(GT)
    table = np.zeros(labels.max() + 1, np.int64)
    classes = []
    for i, name in names.items():
        table[i], new_name = relabel(name, i)
        classes.append(ClassInfo(int(table[i]), new_name))
    ds = gdal.Open(GT)
    write_classification(str(path), [(0, 0, table[labels], None)], *labels.shape, ds.GetGeoTransform(),
                         ds.GetProjection(), classes)
    return str(path)


def warnings_of(request):
    said = []
    result = assess_accuracy(request, Callback(warn=said.append))
    return result, said


def test_a_map_numbered_alphabetically_is_compared_by_name(tmp_path):
    """A map classified by a text class field numbers its classes 1..K alphabetically; the reference does not."""
    alphabetical = {n: i for i, n in enumerate(sorted(read_category_names(GT).values()), 1)}
    classification = renumbered_map(tmp_path / "map.tif", lambda name, _: (alphabetical[name], name))
    result, said = warnings_of(AccuracyRequest(classification, str(tmp_path / "r.html"), reference=GT))
    assert result.overall == 100.0
    assert len(said) == 1 and "classes are compared by name" in said[0]
    tens = renumbered_map(tmp_path / "tens.tif", lambda name, i: (10 * i, name))   # ids no map class has
    result, said = warnings_of(AccuracyRequest(classification, reference=tens))
    assert result.overall == 100.0 and "classes are compared by name" in said[0]


def test_other_names_on_the_same_ids_are_compared_by_id_with_a_warning(tmp_path):
    relabelled = renumbered_map(tmp_path / "named.tif", lambda name, i: (i, f"type {i}"))
    result, said = warnings_of(AccuracyRequest(relabelled, reference=GT))
    assert result.overall == 100.0
    assert len(said) == 1 and "compared by id" in said[0] and "'type 1' in the classification" in said[0]
    classification = renumbered_map(tmp_path / "map.tif", lambda name, i: (i, name))
    os.remove(classification + ".aux.xml")   # where GeoTIFF keeps category names: a map without names
    result, said = warnings_of(AccuracyRequest(classification, reference=GT))
    assert result.overall == 100.0 and said == []   # by id, nothing to say
