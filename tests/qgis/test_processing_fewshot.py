"""diffclip:fewshotclassify on small synthetic scenes: outputs, style, options, misaligned inputs."""
import os

import numpy as np
import pytest
from osgeo import gdal
from test_processing_helpers import (  # noqa: F401  (scene and torch_threads are fixtures)
    QUICK,
    classify,
    EPSG,
    NAMES,
    PIXEL,
    X0,
    Y0,
    LogFeedback,
    category_names,
    read,
    run_alg,
    scene,
    torch_threads,
    write_raster,
)

pytestmark = pytest.mark.usefixtures("torch_threads")


def test_fewshot_writes_styled_classification(qgis_app, scene, tmp_path):
    from qgis.core import QgsPalettedRasterRenderer, QgsRasterLayer

    fb = LogFeedback()
    out = classify(scene, tmp_path, fb, PROMPTS=scene.classes_json, PRETRAIN_EPOCHS=1, EPOCHS=30,
                   OUTPUT_CONFIDENCE=str(tmp_path / "conf.tif"), OUTPUT_MODEL=str(tmp_path / "model.pt"))
    assert out["OUTPUT"] == str(tmp_path / "class.tif")
    assert os.path.isfile(out["OUTPUT_CONFIDENCE"]) and os.path.isfile(out["OUTPUT_MODEL"])
    ids = read(out["OUTPUT"])
    assert ids.shape == (32, 32) and set(np.unique(ids)) <= {1, 2, 3}
    assert np.mean(ids == scene.labels) > 0.6
    conf = read(out["OUTPUT_CONFIDENCE"])
    assert np.all((conf > 0.3) & (conf <= 1.0))
    # georeferencing follows the first input
    ds = gdal.Open(out["OUTPUT"])
    assert ds.GetGeoTransform() == (X0, PIXEL, 0, Y0, 0, -PIXEL)
    assert "32633" in ds.GetProjection() or "UTM zone 33N" in ds.GetProjection()
    # log: device, samples per class, time per phase, phases reported as progress
    text = fb.text
    assert "Device: CPU" in text
    assert "water 8, forest 8, road 8" in text
    assert "Class proportions estimated from" in text and "with strength 0.5" in text
    assert "Time per phase" in text and "pretraining" in text.lower()
    assert fb.progress_values and max(fb.progress_values) == 100
    assert sorted(fb.progress_values) == fb.progress_values  # monotonic
    # opens as a paletted layer with the class names once the .qml is applied
    layer = QgsRasterLayer(out["OUTPUT"], "c")
    assert layer.isValid()
    _, ok = layer.loadNamedStyle(str(tmp_path / "class.qml"))
    assert ok
    renderer = layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert {c.value: c.label for c in renderer.classes()} == NAMES
    assert {c.value: c.color.name() for c in renderer.classes()}[1] == "#0000ff"
    assert category_names(out["OUTPUT"])[:4] == ["unclassified", "water", "forest", "road"]


def test_style_applied_when_loaded_on_completion(qgis_app, scene, tmp_path):
    """As in the desktop: the output loaded into the project gets the paletted style via the post-processor."""
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (QgsApplication, QgsPalettedRasterRenderer, QgsProcessingContext,
                           QgsProcessingOutputLayerDefinition, QgsProject)

    project = QgsProject.instance()
    context = QgsProcessingContext()
    context.setProject(project)
    fb = LogFeedback()
    path = str(tmp_path / "loaded.tif")
    import processing

    confidence = str(tmp_path / "confidence.tif")
    params = dict(QUICK, INPUTS=[scene.hsi, scene.lidar], SAMPLES=scene.samples, CLASS_FIELD="class_id",
                  PROMPTS=scene.classes_json, OUTPUT=QgsProcessingOutputLayerDefinition(path, project),
                  OUTPUT_CONFIDENCE=QgsProcessingOutputLayerDefinition(confidence, project))
    processing.run("diffclip:fewshotclassify", params, feedback=fb, context=context,
                   onFinish=lambda alg, ctx, feedback: None)
    assert context.willLoadLayerOnCompletion(path)
    alg = QgsApplication.processingRegistry().createAlgorithmById("diffclip:fewshotclassify")
    assert handleAlgorithmResults(alg, context, feedback=fb, parameters=params)  # 3.22 and 3.44 signatures
    layers = [lyr for lyr in project.mapLayers().values() if lyr.source() == path]
    assert layers
    renderer = layers[0].renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [c.label for c in renderer.classes()] == ["water", "forest", "road"]
    tagged = [lyr.source() for lyr in project.mapLayers().values() if lyr.customProperty("diffclip/output")]
    assert sorted(tagged) == sorted([path, confidence])   # the dock does not offer them as input rasters
    project.removeAllMapLayers()


def test_text_class_field_and_template(qgis_app, scene, tmp_path):
    from test_processing_helpers import write_points
    from osgeo import ogr

    names = [NAMES[k] for _, _, k in scene.points]
    samples = write_points(str(tmp_path / "named.gpkg"), scene.points, field="label", values=names,
                           field_type=ogr.OFTString)
    fb = LogFeedback()
    out = classify(scene, tmp_path, fb, SAMPLES=samples, CLASS_FIELD="label",
                   PROMPT_TEMPLATE="remote sensing patch of {name}")
    # names sorted alphabetically -> 1 forest, 2 road, 3 water
    assert category_names(out["OUTPUT"])[1:4] == ["forest", "road", "water"]
    assert "'remote sensing patch of road'" in fb.text

    # A class list matches these classes by name and numbers them with its ids (1 water, 2 forest, 3 road)
    fb = LogFeedback()
    out = classify(scene, tmp_path, fb, SAMPLES=samples, CLASS_FIELD="label", PROMPTS=scene.classes_json)
    assert category_names(out["OUTPUT"])[1:4] == ["water", "forest", "road"]
    ds = gdal.Open(out["OUTPUT"])   # kept: the band needs its dataset alive
    table = ds.GetRasterBand(1).GetColorTable()
    colours = ["#%02x%02x%02x" % table.GetColorEntry(i)[:3] for i in (1, 2, 3)]
    ds = None
    assert colours == ["#0000ff", "#00aa00", "#444444"]  # water, forest, road
    assert "'a patch of forest.'" in fb.text and "left out" not in fb.text


def test_polygons_in_other_crs_memory_layer_selected_only(qgis_app, scene, tmp_path):
    """Polygon samples in EPSG:4326 from a memory layer; only the selected features are used."""
    from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsFeature, QgsGeometry,
                           QgsProcessingFeatureSourceDefinition, QgsProject, QgsRectangle, QgsVectorLayer)

    layer = QgsVectorLayer("Polygon?crs=EPSG:4326&field=cls:integer", "polys", "memory")
    to_wgs = QgsCoordinateTransform(QgsCoordinateReferenceSystem(f"EPSG:{EPSG}"),
                                    QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    boxes = {1: (2, 2, 5, 5), 2: (4, 20, 8, 26), 3: (22, 22, 26, 26)}  # row0, col0, row1, col1 (pixels)
    features = []
    for k, (r0, c0, r1, c1) in boxes.items():
        xmin, ymax = X0 + c0 * PIXEL, Y0 - r0 * PIXEL
        xmax, ymin = X0 + c1 * PIXEL, Y0 - r1 * PIXEL
        geom = QgsGeometry.fromRect(QgsRectangle(xmin, ymin, xmax, ymax))
        geom.transform(to_wgs)
        f = QgsFeature(layer.fields())
        f.setGeometry(geom)
        f["cls"] = k
        features.append(f)
    # an unselected polygon of a 4th class over the water: must be ignored
    extra = QgsFeature(layer.fields())
    geom = QgsGeometry.fromRect(QgsRectangle(X0 + 2, Y0 - 60, X0 + 20, Y0 - 40))
    geom.transform(to_wgs)
    extra.setGeometry(geom)
    extra["cls"] = 4
    features.append(extra)
    layer.dataProvider().addFeatures(features)
    QgsProject.instance().addMapLayer(layer)
    try:
        layer.selectByIds([f.id() for f in layer.getFeatures() if f["cls"] != 4])
        fb = LogFeedback()
        out = classify(scene, tmp_path, fb,
                       SAMPLES=QgsProcessingFeatureSourceDefinition(layer.id(), selectedFeaturesOnly=True),
                       CLASS_FIELD="cls")
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    ids = read(out["OUTPUT"])
    assert set(np.unique(ids)) <= {1, 2, 3}
    # 3 x 3, 4 x 6 and 4 x 4 pixel centres inside the boxes (polygons cover pixel centres)
    assert "3 sample features -> 49 labelled pixels" in fb.text


def test_extent_smoothing_and_pretrained(qgis_app, scene, tmp_path):
    pre = run_alg("diffclip:pretrain", dict(INPUTS=[scene.hsi, scene.lidar], EPOCHS=1, SAMPLE_COUNT=64,
                                            WINDOW="5", DEVICE="cpu", OUTPUT_MODEL=str(tmp_path / "enc.pt")))
    fb = LogFeedback()
    # extent: columns 4..19, rows 8..23 of the grid
    extent = f"{X0 + 4 * PIXEL},{X0 + 20 * PIXEL},{Y0 - 24 * PIXEL},{Y0 - 8 * PIXEL} [EPSG:{EPSG}]"
    out = classify(scene, tmp_path, fb, PRETRAINED=pre["OUTPUT_MODEL"], WINDOW="5", EXTENT=extent, SMOOTHING=2,
                   OUTPUT_CONFIDENCE=str(tmp_path / "conf.tif"))
    assert "Using the encoder of" in fb.text
    assert "rows 8-23, columns 4-19 (16 x 16 px)" in fb.text
    ds = gdal.Open(out["OUTPUT"])
    assert (ds.RasterXSize, ds.RasterYSize) == (16, 16)
    assert ds.GetGeoTransform()[0] == X0 + 4 * PIXEL and ds.GetGeoTransform()[3] == Y0 - 8 * PIXEL
    assert read(out["OUTPUT_CONFIDENCE"]).shape == (16, 16)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary files left


def test_window_larger_than_pretrained_is_refused(qgis_app, scene, tmp_path):
    from qgis.core import QgsProcessingException

    pre = run_alg("diffclip:pretrain", dict(INPUTS=[scene.hsi, scene.lidar], EPOCHS=0, SAMPLE_COUNT=32,
                                            WINDOW="3", DEVICE="cpu", OUTPUT_MODEL=str(tmp_path / "enc3.pt")))
    with pytest.raises(QgsProcessingException, match="at most 3"):
        classify(scene, tmp_path, PRETRAINED=pre["OUTPUT_MODEL"], WINDOW="7")


def test_misaligned_lidar_other_resolution_and_crs(qgis_app, scene, tmp_path):
    """LiDAR at 3 m in EPSG:3857 (the HSI is 2 m in EPSG:32633): warped onto the HSI grid with a warning."""
    src = gdal.Open(scene.lidar)
    warped = str(tmp_path / "lidar_3857.tif")
    gdal.Warp(warped, src, dstSRS="EPSG:3857", xRes=3.0, yRes=3.0, resampleAlg="bilinear")
    fb = LogFeedback()
    out = classify(scene, tmp_path, fb, INPUTS=[scene.hsi, warped], EPOCHS=30)
    assert any("lidar_3857.tif" in w and "resampled" in w for w in fb.warnings), fb.warnings
    ds = gdal.Open(out["OUTPUT"])
    assert (ds.RasterXSize, ds.RasterYSize) == (32, 32)
    assert ds.GetGeoTransform() == (X0, PIXEL, 0, Y0, 0, -PIXEL)
    ids = read(out["OUTPUT"])
    # pixels at the edge may fall outside the warped LiDAR (nodata -> 0); the rest is classified
    assert np.mean(ids > 0) > 0.8
    assert np.mean(ids[ids > 0] == scene.labels[ids > 0]) > 0.6


def test_nodata_stays_nodata(qgis_app, scene, tmp_path):
    """Nodata pixels in an input are 0 in the output, also after smoothing."""
    ds = gdal.Open(scene.hsi)
    hsi = ds.ReadAsArray()
    hsi[:, 10:14, 10:14] = -9999
    path = write_raster(str(tmp_path / "hsi_nodata.tif"), hsi, nodata=-9999)
    out = classify(scene, tmp_path, INPUTS=[path, scene.lidar], SMOOTHING=2)
    ids = read(out["OUTPUT"])
    assert np.all(ids[10:14, 10:14] == 0)
    assert np.all(ids[:10] > 0)


def test_extent_warnings_in_gdal_order_and_in_a_crs_on_a_raster_without_one(qgis_app, scene, tmp_path):
    """As on the command line: an extent typed xmin,ymin,xmax,ymax reaches far beyond the raster, and an extent's
    CRS cannot be honoured on a raster that has none."""
    model = classify(scene, tmp_path, OUTPUT_MODEL=str(tmp_path / "m.pt"))["OUTPUT_MODEL"]
    fb = LogFeedback()
    gdal_order = f"{X0 + 4 * PIXEL},{Y0 - 24 * PIXEL},{X0 + 20 * PIXEL},{Y0 - 8 * PIXEL} [EPSG:{EPSG}]"
    run_alg("diffclip:applymodel", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=model, EXTENT=gdal_order, DEVICE="cpu",
                                        OUTPUT=str(tmp_path / "a.tif")), feedback=fb)
    assert "EXTENT reaches far beyond the raster" in fb.text and "not GDAL's xmin,ymin,xmax,ymax" in fb.text
    plain = []
    for path in (scene.hsi, scene.lidar):   # the same rasters without CRS or georeferencing
        plain.append(str(tmp_path / os.path.basename(path)))
        source = gdal.Open(path)
        ds = gdal.GetDriverByName("GTiff").Create(plain[-1], source.RasterXSize, source.RasterYSize,
                                                  source.RasterCount, gdal.GDT_Float32)
        ds.WriteArray(source.ReadAsArray())
        ds = source = None
    fb = LogFeedback()
    run_alg("diffclip:applymodel", dict(INPUTS=plain, MODEL=model, EXTENT="2,10,-10,-2 [EPSG:4326]", DEVICE="cpu",
                                        OUTPUT=str(tmp_path / "b.tif")), feedback=fb)
    assert "EXTENT is given in EPSG:4326, but" in fb.text and "has no CRS" in fb.text, fb.text
