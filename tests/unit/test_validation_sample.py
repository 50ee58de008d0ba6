"""Validation sample -> fill in the reference -> accuracy with area estimates, through the workflow layer."""
import os

import numpy as np
import pytest
from osgeo import gdal, ogr

from diffclip_qgis.core.files import OutputPathError
from diffclip_qgis.workflow.accuracy import assess_accuracy
from diffclip_qgis.workflow.requests import AccuracyRequest, Samples, ValidationSampleRequest
from diffclip_qgis.workflow.validation import validation_sample

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__import__("diffclip_qgis").__file__))),
                    "diffclip_qgis", "demo")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The demo reference as the 'map', and a 'truth' that differs from it on a known share of pixels."""
    gt = os.path.join(DEMO, "demo_gt.tif")
    if not os.path.isfile(gt):
        pytest.skip("the demo scene is missing")
    folder = tmp_path_factory.mktemp("validation")
    ds = gdal.Open(gt)
    labels = ds.GetRasterBand(1).ReadAsArray()
    truth = labels.copy()
    rng = np.random.default_rng(1)
    flip = (labels > 0) & (rng.random(labels.shape) < 0.2)
    truth[flip] = rng.integers(1, labels.max() + 1, flip.sum())
    path = str(folder / "truth.tif")
    out = gdal.GetDriverByName("GTiff").CreateCopy(path, ds)
    out.GetRasterBand(1).WriteArray(truth)
    out = None
    return gt, truth, labels, folder


def _points(path):
    vector = ogr.Open(path)
    layer = vector.GetLayer(0)
    rows = [(f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY(), f.GetField("map_class"), f.IsFieldNull("reference"))
            for f in layer]
    return rows, layer.GetSpatialRef()


def test_sample_is_stratified_on_map_classes(scene, tmp_path):
    gt, _, labels, _ = scene
    sizes = validation_sample(ValidationSampleRequest(gt, str(tmp_path / "s.gpkg"), 300, 15, seed=3))
    points, srs = _points(str(tmp_path / "s.gpkg"))
    assert len(points) == sum(sizes.values()) == 300 and min(sizes.values()) >= 15 and srs is not None
    g = gdal.Open(gt).GetGeoTransform()
    for x, y, cls, empty in points:
        row, col = int((y - g[3]) / g[5]), int((x - g[0]) / g[1])
        assert labels[row, col] == cls and empty
    counts = {c: int((labels == c).sum()) for c in sizes}
    big = max(counts, key=counts.get)
    assert sizes[big] == max(sizes.values())   # the rest follows the mapped areas
    validation_sample(ValidationSampleRequest(gt, str(tmp_path / "again.gpkg"), 300, 15, seed=3))
    assert _points(str(tmp_path / "again.gpkg"))[0] == points   # the seed draws the same points


def test_filled_sample_gives_area_estimates_around_the_truth(scene, tmp_path):
    gt, truth, labels, folder = scene
    sample = str(tmp_path / "s.gpkg")
    validation_sample(ValidationSampleRequest(gt, sample, 600, 30, seed=0))
    vector = ogr.Open(sample, 1)
    layer = vector.GetLayer(0)
    g = gdal.Open(gt).GetGeoTransform()
    for feature in layer:   # the analyst fills in what they see
        geom = feature.GetGeometryRef()
        feature.SetField("reference", int(truth[int((geom.GetY() - g[3]) / g[5]), int((geom.GetX() - g[0]) / g[1])]))
        layer.SetFeature(feature)
    vector = layer = None
    from diffclip_qgis.gis.samples import read_features

    wkbs, values, crs = read_features(sample, "reference")
    result = assess_accuracy(AccuracyRequest(gt, str(tmp_path / "r.html"), str(tmp_path / "r.csv"),
                                             reference_samples=Samples(wkbs, values, crs, [sample]),
                                             drawn_classes=read_features(sample, "map_class")[1]))
    html = (tmp_path / "r.html").read_text()
    assert "Area-weighted estimates" in html and "Error-adjusted area (ha)" in html
    assert "stratified_estimates" in (tmp_path / "r.csv").read_text()
    true_oa = 100 * np.mean(truth[labels > 0] == labels[labels > 0])
    line = next(line for line in html.splitlines() if "Overall accuracy: <b>" in line)
    oa, ci = (float(v) for v in line.split("<b>")[1].split("%")[0].split(" &plusmn; "))
    assert abs(oa - true_oa) < 2 * ci + 1, (oa, ci, true_oa)
    assert result.pixels == 600


def test_maps_are_assessed_strip_by_strip_with_the_same_result(scene, tmp_path, monkeypatch):
    """Accuracy reads the map and the reference a strip of rows at a time: strips of 4 rows give the same reports."""
    import diffclip_qgis.gis.raster as raster

    _, truth, labels, folder = scene
    gt = str(tmp_path / "map.tif")   # the map in strips of 2 rows: read in several strips
    gdal.GetDriverByName("GTiff").CreateCopy(gt, gdal.Open(scene[0]), options=["BLOCKYSIZE=2"]).FlushCache()
    sample = str(tmp_path / "s.gpkg")
    validation_sample(ValidationSampleRequest(gt, sample, 200, 10, seed=2))
    from diffclip_qgis.gis.samples import read_features

    wkbs, values, crs = read_features(sample, "map_class")
    references = [dict(reference=str(folder / "truth.tif")),
                  dict(reference_samples=Samples(wkbs, values, crs, [sample]), drawn_classes=values)]
    reports = {}
    for pixels, strips in ((raster.STRIP_PIXELS, 1), (4 * labels.shape[1], -(-labels.shape[0] // 4))):
        monkeypatch.setattr(raster, "STRIP_PIXELS", pixels)
        assert len(list(raster.LabelRaster(gt).strips())) == strips
        for n, reference in enumerate(references):
            html, csv = str(tmp_path / f"{pixels}_{n}.html"), str(tmp_path / f"{pixels}_{n}.csv")
            result = assess_accuracy(AccuracyRequest(gt, html, csv, **reference))
            figures = (result.overall, result.average, result.kappa, result.pixels)
            reports.setdefault(n, []).append((figures, open(csv).read()))
    assert reports[0][0] == reports[0][1] and reports[1][0] == reports[1][1]
    assert abs(reports[0][0][0][0] - 100 * np.mean(truth[labels > 0] == labels[labels > 0])) < 1e-9
    assert reports[1][0][0][3] == 200 and reports[1][0][0][0] == 100.0   # map classes as reference: all agree


def test_pairs_are_counted_alike_for_small_and_large_class_ids():
    from collections import Counter

    from diffclip_qgis.workflow.accuracy import count_pairs

    rng = np.random.default_rng(0)
    a, b = rng.integers(1, 5, 1000), rng.integers(1, 7, 1000)
    expected = Counter(zip(a.tolist(), b.tolist()))
    assert count_pairs(a, b) == expected                                   # one bincount
    assert count_pairs(a + 60000, b + 60000) == {(x + 60000, y + 60000): n for (x, y), n in expected.items()}  # a sort
    assert count_pairs(a[:0], b[:0]) == {}


def test_a_reference_with_huge_unset_values_ignores_them(scene, tmp_path):
    """A UInt32 reference filled with 4294967295 where unlabelled (no nodata tag): those pixels are not labels."""
    gt, truth, labels, _ = scene
    ds = gdal.Open(gt)
    path = str(tmp_path / "uint32.tif")
    out = gdal.GetDriverByName("GTiff").Create(path, ds.RasterXSize, ds.RasterYSize, 1, gdal.GDT_UInt32)
    out.SetGeoTransform(ds.GetGeoTransform())
    out.SetProjection(ds.GetProjection())
    out.GetRasterBand(1).WriteArray(np.where(labels > 0, labels, 4294967295).astype(np.uint32))
    out = None
    result = assess_accuracy(AccuracyRequest(gt, str(tmp_path / "r.html"), reference=path))
    assert result.overall == 100.0 and result.pixels == int((labels > 0).sum())


def test_a_sample_with_reference_classes_filled_in_is_never_replaced(scene, tmp_path):

    gt = scene[0]
    sample = str(tmp_path / "s.gpkg")
    validation_sample(ValidationSampleRequest(gt, sample, 50, 2, seed=0))
    validation_sample(ValidationSampleRequest(gt, sample, 60, 2, seed=1))   # nothing filled in yet: replaced
    assert len(_points(sample)[0]) == 60
    vector = ogr.Open(sample, 1)
    layer = vector.GetLayer(0)
    feature = layer.GetNextFeature()
    feature.SetField("reference", 3)   # an hour of the analyst's work, in short
    layer.SetFeature(feature)
    vector = layer = feature = None
    with pytest.raises(OutputPathError, match="holds 1 point whose 'reference' field was filled in"):
        validation_sample(ValidationSampleRequest(gt, sample, 50, 2, seed=0))
    assert len(_points(sample)[0]) == 60
    other = str(tmp_path / "o.gpkg")
    validation_sample(ValidationSampleRequest(gt, other, 50, 2, seed=0))
    vector = ogr.Open(other, 1)
    layer = vector.GetLayer(0)
    layer.CreateField(ogr.FieldDefn("checked_by", ogr.OFTString))   # a field of the analyst's own
    feature = layer.GetNextFeature()
    feature.SetField("checked_by", "AB")
    layer.SetFeature(feature)
    vector = layer = feature = None
    with pytest.raises(OutputPathError, match="holds 1 point whose 'checked_by' field was filled in"):
        validation_sample(ValidationSampleRequest(gt, other, 50, 2, seed=1))


def test_a_geopackage_holding_other_layers_is_never_replaced(scene, tmp_path):

    samples = str(tmp_path / "project_diffclip_samples.gpkg")   # e.g. the dock's training samples
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(samples)
    ds.CreateLayer("diffclip_samples", None, ogr.wkbPoint)
    ds = None
    with pytest.raises(OutputPathError, match="also holds diffclip_samples; a new file would replace it"):
        validation_sample(ValidationSampleRequest(scene[0], samples, 50, 2, seed=0))
    assert ogr.Open(samples).GetLayer(0).GetName() == "diffclip_samples"
    sample = str(tmp_path / "s.gpkg")
    validation_sample(ValidationSampleRequest(scene[0], sample, 50, 2, seed=0))
    ogr.Open(sample, 1).CreateLayer("layer_styles", None, ogr.wkbNone)   # a style saved in it
    with pytest.raises(OutputPathError, match=r"also holds a QGIS layer style \(layer_styles\)"):
        validation_sample(ValidationSampleRequest(scene[0], sample, 50, 2, seed=0))


def test_a_sample_open_for_editing_elsewhere_is_not_replaced(scene, tmp_path):
    """QGIS edits a GeoPackage in write-ahead-log mode: edits it saves after a run replaced the file would go to the
    old one and be lost, so the run refuses before any work and names the fix."""
    gt = scene[0]
    sample = str(tmp_path / "s.gpkg")
    validation_sample(ValidationSampleRequest(gt, sample, 80, 2, seed=0))
    gdal.SetConfigOption("OGR_SQLITE_JOURNAL", "WAL")
    try:
        elsewhere = ogr.Open(sample, 1)   # another program, editing in write-ahead-log mode
        layer = elsewhere.GetLayer(0)
        layer.DeleteFeature(layer.GetNextFeature().GetFID())
        elsewhere.FlushCache()
        assert os.path.exists(sample + "-wal")
        with pytest.raises(OutputPathError, match="open for editing in another program .*s.gpkg-wal.*remove the layer"):
            validation_sample(ValidationSampleRequest(gt, sample, 30, 2, seed=1))
    finally:
        gdal.SetConfigOption("OGR_SQLITE_JOURNAL", None)
    elsewhere = layer = None
    assert not os.path.exists(sample + "-wal") and len(_points(sample)[0]) == 79   # the edit is in the file


def test_a_sample_another_run_writes_while_this_one_works_is_not_replaced(scene, tmp_path):
    """The job takes its output as it is when it starts: one written before its own writing begins stays."""
    from diffclip_qgis.core.progress import Callback

    gt = scene[0]
    sample, other = str(tmp_path / "s.gpkg"), str(tmp_path / "other.gpkg")
    validation_sample(ValidationSampleRequest(gt, other, 40, 2, seed=2))   # what the other run writes

    def meanwhile(phase, fraction, message):
        if phase == "writing" and fraction == 0.0 and not os.path.exists(sample):
            os.replace(other, sample)

    with pytest.raises(OSError, match="another run or program wrote it .*while this run was working"):
        validation_sample(ValidationSampleRequest(gt, sample, 60, 2, seed=0), Callback(meanwhile))
    assert len(_points(sample)[0]) == 40


def test_accuracy_reports_another_run_writes_meanwhile_are_not_replaced(scene, tmp_path):
    from diffclip_qgis.core.progress import Callback

    gt = scene[0]
    html, csv = tmp_path / "r.html", tmp_path / "r.csv"

    def meanwhile(phase, fraction, message):
        if phase == "writing" and fraction == 0.0:
            csv.write_text("the other run's")

    with pytest.raises(OSError, match="another run or program wrote it .*while this run was working"):
        assess_accuracy(AccuracyRequest(gt, str(html), str(csv), reference=gt), Callback(meanwhile))
    assert csv.read_text() == "the other run's" and not html.exists()


def test_rasters_that_are_not_class_maps_are_refused_before_any_draw(scene, tmp_path):
    """A confidence raster (fractions), a resampled map (bilinear floats) and the image (many bands) give wrong
    samples and accuracies if read as class ids."""
    gt, _, labels, _ = scene
    ds = gdal.Open(gt)

    def raster(name, arrays, data_type):
        out = gdal.GetDriverByName("GTiff").Create(str(tmp_path / name), ds.RasterXSize, ds.RasterYSize, len(arrays),
                                                   data_type)
        out.SetGeoTransform(ds.GetGeoTransform())
        out.SetProjection(ds.GetProjection())
        for i, array in enumerate(arrays):
            out.GetRasterBand(i + 1).WriteArray(array)
        out = None
        return str(tmp_path / name)

    confidence = raster("conf.tif", [np.full(labels.shape, 0.75)], gdal.GDT_Float32)
    image = raster("image.tif", [labels * 10 + b for b in range(3)], gdal.GDT_Int16)
    for path, message in ((confidence, "non-integer values such as 0.75, so it is not a class raster"),
                          (image, "has 3 bands, so it is not a class raster")):
        with pytest.raises(Exception, match=message):
            validation_sample(ValidationSampleRequest(path, str(tmp_path / "s.gpkg"), 50, 2))
        with pytest.raises(Exception, match=message):
            assess_accuracy(AccuracyRequest(path, reference=gt))
        with pytest.raises(Exception, match=message):
            assess_accuracy(AccuracyRequest(gt, reference=path))
    assert not os.path.exists(tmp_path / "s.gpkg")


def test_points_left_empty_or_0_are_unlabelled_and_left_out(scene, tmp_path):
    """0 is unlabelled in a reference raster; in a vector reference it was refused as a training class id."""
    from diffclip_qgis.core.progress import Callback
    from diffclip_qgis.gis.samples import read_features

    gt, _, _, _ = scene
    sample = str(tmp_path / "s.gpkg")
    validation_sample(ValidationSampleRequest(gt, sample, 60, 3, seed=0))
    wkbs, values, crs = read_features(sample, "map_class")
    values = [None if i % 3 == 0 else 0 if i % 3 == 1 else v for i, v in enumerate(values)]
    warnings = []
    result = assess_accuracy(AccuracyRequest(gt, str(tmp_path / "r.html"),
                                             reference_samples=Samples(wkbs, values, crs, [sample])),
                             Callback(warn=warnings.append))
    assert result.pixels == 20 and result.overall == 100.0
    assert warnings == ["40 of 60 reference features have no class (empty or 0, as 0 is unlabelled in a reference "
                        "raster) and are left out."]
    with pytest.raises(ValueError, match="None of the 60 reference features has a class"):
        assess_accuracy(AccuracyRequest(gt, str(tmp_path / "r.html"),
                                        reference_samples=Samples(wkbs, [0] * 60, crs, [sample])))


def test_area_estimates_only_for_a_validation_sample_of_this_map_with_2_points_in_every_class(scene, tmp_path):
    """Weights and variances of the stratified estimators hold only for points drawn per map class from this map,
    with two or more labelled in each; otherwise the report gives the confusion matrix alone and says why."""
    from diffclip_qgis.core.progress import Callback
    from diffclip_qgis.gis.samples import read_features

    gt, truth, labels, folder = scene
    sample = str(tmp_path / "s.gpkg")
    validation_sample(ValidationSampleRequest(gt, sample, 120, 5, seed=4))
    wkbs, drawn, crs = read_features(sample, "map_class")
    html = str(tmp_path / "r.html")

    def assess(values, drawn_classes, classification=gt):
        said = []
        assess_accuracy(AccuracyRequest(classification, html, reference_samples=Samples(wkbs, values, crs, [sample]),
                                        drawn_classes=drawn_classes), Callback(log=said.append, warn=said.append))
        return "Error-adjusted area" in open(html).read(), " ".join(said)

    assert assess(drawn, drawn)[0]
    estimated, said = assess(drawn, None)   # points that are not a Validation Sample
    assert not estimated and "they need a stratified sample of this map" in said
    one_left = [v if v != 2 else None for v in drawn]
    one_left[drawn.index(2)] = 2
    estimated, said = assess(one_left, drawn)
    assert not estimated and "every map class needs 2 or more labelled points, and class 2 has 1." in said
    estimated, said = assess([v if v != 3 else None for v in drawn], drawn)
    assert not estimated and "class 3 has 0" in said
    other = str(tmp_path / "other_map.tif")   # the sample assessed against a map it was not drawn from
    ds = gdal.GetDriverByName("GTiff").CreateCopy(other, gdal.Open(gt))
    ds.GetRasterBand(1).WriteArray(truth)
    ds = None
    estimated, said = assess(drawn, drawn, other)
    assert not estimated and "points lie on another class of this map than the one they were drawn from" in said
