"""RasterStack reading/alignment and classification writing, on real GeoTIFFs in tmp_path."""
import glob
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from osgeo import gdal, osr

from diffclip_qgis.core.classes import ClassInfo
from diffclip_qgis.gis.raster import (CONFIDENCE_NODATA, RasterInputError, RasterStack, SubsetSource, dataset_files,
                                      holds_data_at, read_label_raster, write_classification, write_qml)

gdal.UseExceptions()
UTM = 32633
UTM_ORIGIN = (366000.0, 5810000.0)


def srs_wkt(epsg):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs.ExportToWkt()


def make_tif(path, array, geotransform=None, epsg=None, nodata=None, data_type=gdal.GDT_Float32,
             band_metadata=None):
    array = np.asarray(array)
    array = array[None] if array.ndim == 2 else array
    ds = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[2], array.shape[1], array.shape[0],
                                              data_type)
    if geotransform is not None:
        ds.SetGeoTransform(geotransform)
    if epsg is not None:
        ds.SetProjection(srs_wkt(epsg))
    for i, plane in enumerate(array):
        band = ds.GetRasterBand(i + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if band_metadata is not None:
            band.SetMetadata(band_metadata[i])
        band.WriteArray(plane)
    ds = None
    return str(path)


def utm_tif(path, array, pixel=1.0, **kw):
    gt = (UTM_ORIGIN[0], pixel, 0, UTM_ORIGIN[1], 0, -pixel)
    return make_tif(path, array, gt, UTM, **kw)


class Log:
    def __init__(self):
        self.messages = []

    def __call__(self, message, warning=False):
        self.messages.append((message, warning))

    def warnings(self):
        return [m for m, w in self.messages if w]


# -- reading ------------------------------------------------------------------------------------
def test_read_window_and_nodata(tmp_path):
    data = np.arange(2 * 6 * 8, dtype=np.float32).reshape(2, 6, 8)
    data[0, 1, 2] = -9999
    data[1, 3, 4] = np.inf
    path = utm_tif(tmp_path / "a.tif", data, nodata=-9999)
    with RasterStack([path]) as stack:
        assert (stack.height, stack.width, stack.band_counts) == (6, 8, [2])
        assert stack.geotransform == (UTM_ORIGIN[0], 1.0, 0.0, UTM_ORIGIN[1], 0.0, -1.0)
        assert osr.SpatialReference(stack.crs_wkt).GetAuthorityCode(None) == str(UTM)
        assert stack.infos[0].name == "a.tif" and stack.infos[0].wavelengths is None
        (window,) = stack.read(1, 2, 3, 4)
    assert window.dtype == np.float32 and window.shape == (2, 3, 4)
    assert np.isnan(window[0, 0, 0]) and np.isnan(window[1, 2, 2])
    expected = data[:, 1:4, 2:6].copy()
    expected[0, 0, 0] = expected[1, 2, 2] = np.nan
    np.testing.assert_array_equal(window, expected)


def test_pixels_a_gdal_mask_or_alpha_band_hides_are_nodata(tmp_path):
    masked = utm_tif(tmp_path / "masked.tif", np.arange(32, dtype=np.float32).reshape(2, 4, 4))
    ds = gdal.Open(masked, gdal.GA_Update)
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    mask = np.full((4, 4), 255, np.uint8)
    mask[0] = 0
    ds.GetRasterBand(1).GetMaskBand().WriteArray(mask)
    ds = None
    rgba = np.full((4, 4, 4), 7, np.uint8)
    rgba[3] = 255
    rgba[3, :, 0] = 0                       # transparent first column
    rgba_path = utm_tif(tmp_path / "rgba.tif", rgba, data_type=gdal.GDT_Byte)
    ds = gdal.Open(rgba_path, gdal.GA_Update)
    ds.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None
    stack = RasterStack([masked, rgba_path])
    try:
        spectral, rgb = stack.read(0, 0, 4, 4)
    finally:
        stack.close()
    assert np.isnan(spectral[:, 0]).all() and np.isfinite(spectral[:, 1:]).all()
    assert np.isnan(rgb[:3, :, 0]).all() and np.isfinite(rgb[:3, :, 1:]).all()


def test_holds_data_at_reads_a_pixel_by_the_runs_rules(tmp_path):
    """The dock refuses a label where an input holds no data: nodata, a GDAL mask or alpha band, outside it."""
    data = np.ones((2, 4, 4), np.float32)
    data[:, 0, 0] = -9999                   # nodata in both bands
    data[0, 0, 1] = -9999                   # in one band only: the pixel still holds data
    path = utm_tif(tmp_path / "a.tif", data, nodata=-9999)
    rgba = np.full((4, 4, 4), 7, np.uint8)
    rgba[3] = 255
    rgba[3, 2, 2] = 0                       # one transparent pixel
    rgba_path = utm_tif(tmp_path / "rgba.tif", rgba, data_type=gdal.GDT_Byte)
    ds = gdal.Open(rgba_path, gdal.GA_Update)
    ds.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None

    def at(p, row, col):
        return holds_data_at(p, UTM_ORIGIN[0] + col + 0.5, UTM_ORIGIN[1] - row - 0.5)

    assert not at(path, 0, 0) and at(path, 0, 1) and at(path, 3, 3)
    assert not at(path, -1, 0) and not at(path, 0, 4)         # outside
    assert not at(rgba_path, 2, 2) and at(rgba_path, 2, 1)
    assert holds_data_at(str(tmp_path / "missing.tif"), 0, 0)  # cannot tell: the run will say


def test_integer_raster_scale_offset_and_nodata(tmp_path):
    data = np.array([[0, 100], [200, 65535]], dtype=np.uint16)
    path = utm_tif(tmp_path / "u.tif", data, nodata=0, data_type=gdal.GDT_UInt16)
    ds = gdal.Open(path, gdal.GA_Update)
    ds.GetRasterBand(1).SetScale(0.01)
    ds.GetRasterBand(1).SetOffset(1.0)
    ds = None
    (window,) = RasterStack([path]).read(0, 0, 2, 2)
    np.testing.assert_allclose(window[0], [[np.nan, 2.0], [3.0, 656.35]], rtol=1e-6)


def test_vrt_mosaic_is_read_across_tiles(tmp_path):
    left = utm_tif(tmp_path / "left.tif", np.full((4, 3), 1.0))
    right = make_tif(tmp_path / "right.tif", np.full((4, 3), 2.0), (UTM_ORIGIN[0] + 3, 1, 0, UTM_ORIGIN[1], 0, -1),
                     UTM)
    mosaic = str(tmp_path / "mosaic.vrt")
    gdal.BuildVRT(mosaic, [left, right]).FlushCache()
    with RasterStack([mosaic]) as stack:
        assert (stack.height, stack.width) == (4, 6)
        np.testing.assert_array_equal(stack.read(1, 2, 2, 2)[0][0], [[1, 2], [1, 2]])


def test_the_files_under_a_vrt_source_named_by_a_connection_string_or_a_vsi_path_are_inputs(tmp_path):
    """GDAL lists only a VRT's plain-file sources: an output over one of the others would overwrite an input."""
    import shutil
    import zipfile

    tif = utm_tif(tmp_path / "lidar.tif", np.ones((2, 4, 4)))
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as archive:
        archive.write(tif, "lidar.tif")
    sources = {"dir.vrt": f"GTIFF_DIR:1:{tif}", "sub.vrt": f"/vsisubfile/0_{os.path.getsize(tif)},{tif}",
               "zip.vrt": f"/vsizip/{tmp_path}/l.zip/lidar.tif"}
    for vrt, source in sources.items():
        gdal.Translate(str(tmp_path / vrt), source, format="VRT")
    shutil.copy(tmp_path / "dir.vrt", tmp_path / "copy.vrt")
    gdal.BuildVRT(str(tmp_path / "outer.vrt"), [str(tmp_path / "copy.vrt")]).FlushCache()
    for vrt in ("dir.vrt", "sub.vrt", "outer.vrt"):
        assert tif in dataset_files(str(tmp_path / vrt)), vrt
    assert str(tmp_path / "l.zip") in dataset_files(str(tmp_path / "zip.vrt"))
    assert tif in dataset_files(sources["sub.vrt"])   # an input given as a /vsi path


def test_read_outside_grid_is_an_error(tmp_path):
    stack = RasterStack([utm_tif(tmp_path / "a.tif", np.zeros((4, 4)))])
    with pytest.raises(ValueError):
        stack.read(2, 2, 3, 3)


def test_raster_without_georeferencing_is_placed_like_qgis(tmp_path):
    image = make_tif(tmp_path / "img.tif", np.ones((3, 5, 7)))
    labels = make_tif(tmp_path / "gt.tif", np.full((5, 7), 2), data_type=gdal.GDT_Byte, nodata=0)
    log = Log()
    stack = RasterStack([image, labels], log=log)
    assert stack.geotransform == (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    assert stack.crs_wkt == ""
    assert stack.band_counts == [3, 1]
    assert not log.warnings()  # same size, nothing resampled
    assert stack.pixel_window(1.0, -3.0, 4.0, -1.0) == (1, 1, 2, 3)
    np.testing.assert_array_equal(stack.read(0, 0, 5, 7)[1], 2)


def test_unreferenced_and_referenced_rasters_do_not_mix(tmp_path):
    referenced = utm_tif(tmp_path / "utm.tif", np.zeros((5, 7)))
    bare = make_tif(tmp_path / "bare.tif", np.zeros((5, 7)))
    with pytest.raises(RasterInputError, match="bare.tif has no CRS.*Assign"):
        RasterStack([referenced, bare])
    with pytest.raises(RasterInputError, match="bare.tif has no CRS"):
        RasterStack([bare, referenced])


def lidar_value(x, y):
    """A smooth field of UTM coordinates: bilinear resampling should reproduce it closely."""
    return 0.5 * (x - UTM_ORIGIN[0]) + 0.25 * (UTM_ORIGIN[1] - y)


def test_misaligned_modality_is_warped_onto_reference(tmp_path):
    size = 40
    reference = utm_tif(tmp_path / "optical.tif", np.ones((2, size, size)))
    # LiDAR in Web Mercator at 2 m, covering the reference except its eastmost ~10 m.
    utm, merc = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(UTM)
    merc.ImportFromEPSG(3857)
    for s in (utm, merc):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    xmin, ymin, xmax, ymax = osr.CoordinateTransformation(utm, merc).TransformBounds(
        UTM_ORIGIN[0] - 20, UTM_ORIGIN[1] - size - 20, UTM_ORIGIN[0] + size - 10, UTM_ORIGIN[1] + 20, 21)
    cols, rows = int((xmax - xmin) / 2), int((ymax - ymin) / 2)
    to_utm = osr.CoordinateTransformation(merc, utm)
    centres = [(xmin + 2 * c + 1, ymax - 2 * r - 1) for r in range(rows) for c in range(cols)]
    values = np.array([lidar_value(*p[:2]) for p in to_utm.TransformPoints(centres)], np.float32)
    lidar = make_tif(tmp_path / "lidar.tif", values.reshape(rows, cols), (xmin, 2, 0, ymax, 0, -2), 3857,
                     nodata=-9999)
    log = Log()
    stack = RasterStack([reference, lidar], log=log)
    assert stack.band_counts == [2, 1]
    (warning,) = log.warnings()
    assert "lidar.tif" in warning and "EPSG:3857" in warning and "pixel size" in warning
    window = stack.read(0, 0, size, size)[1][0]
    east = UTM_ORIGIN[0] + np.arange(size) + 0.5
    north = UTM_ORIGIN[1] - np.arange(size) - 0.5
    expected = lidar_value(east[None, :], north[:, None])
    inside = np.s_[:, :size - 14]
    assert np.isfinite(window[inside]).all()
    np.testing.assert_allclose(window[inside], expected[inside], atol=0.5)
    assert np.isnan(window[:, size - 6:]).all()  # outside the LiDAR extent


def test_modality_on_same_crs_other_extent_is_aligned(tmp_path):
    reference = utm_tif(tmp_path / "ref.tif", np.zeros((10, 10)))
    shifted_data = np.arange(100, dtype=np.float32).reshape(10, 10)
    gt = (UTM_ORIGIN[0] + 3, 1, 0, UTM_ORIGIN[1] - 2, 0, -1)  # 3 columns right, 2 rows down
    shifted = make_tif(tmp_path / "shifted.tif", shifted_data, gt, UTM)
    log = Log()
    window = RasterStack([reference, shifted], log=log).read(0, 0, 10, 10)[1][0]
    assert "other extent" in log.warnings()[0]
    np.testing.assert_allclose(window[2:, 3:], shifted_data[:8, :7])
    assert np.isnan(window[:2]).all() and np.isnan(window[:, :3]).all()


def test_modality_without_overlap_is_an_error(tmp_path):
    reference = utm_tif(tmp_path / "ref.tif", np.zeros((10, 10)))
    far = make_tif(tmp_path / "far.tif", np.zeros((10, 10)), (UTM_ORIGIN[0] + 5000, 1, 0, UTM_ORIGIN[1], 0, -1),
                   UTM)
    with pytest.raises(RasterInputError, match="far.tif does not overlap ref.tif"):
        RasterStack([reference, far])


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(RasterInputError, match="Cannot open"):
        RasterStack([str(tmp_path / "missing.tif")])


def test_wavelengths_and_bad_bands_from_band_metadata(tmp_path):
    metadata = [{"wavelength": "0.45", "wavelength_units": "Micrometers", "bbl": "1"},
                {"wavelength": "0.55", "wavelength_units": "Micrometers", "bbl": "0"}]
    path = utm_tif(tmp_path / "ms.tif", np.zeros((2, 3, 3)), band_metadata=metadata)
    info = RasterStack([path]).infos[0]
    assert info.wavelengths == pytest.approx([450.0, 550.0])
    assert info.bad_bands == [False, True]


def test_wavelengths_and_bad_bands_from_envi_header(tmp_path):
    path = str(tmp_path / "cube.img")
    ds = gdal.GetDriverByName("ENVI").Create(path, 4, 4, 3, gdal.GDT_Float32)
    ds.SetGeoTransform((UTM_ORIGIN[0], 1, 0, UTM_ORIGIN[1], 0, -1))
    ds.SetProjection(srs_wkt(UTM))
    ds.SetMetadata({"wavelength": "{400, 500, 600}", "wavelength_units": "Nanometers", "bbl": "{1, 0, 1}"},
                   "ENVI")
    ds = None
    info = RasterStack([path]).infos[0]
    assert info.wavelengths == pytest.approx([400.0, 500.0, 600.0])
    assert info.bad_bands == [False, True, False]


def test_enmap_tile_metadata(shared_data):
    tiles = sorted(glob.glob(os.path.join(shared_data, "enmap_potsdam", "images", "*.tif")))
    if not tiles:
        pytest.skip("No EnMAP tiles in shared data (enmap_potsdam/images/*.tif).")
    with RasterStack([tiles[0]]) as stack:
        info = stack.infos[0]
        assert stack.band_counts == [224] and len(info.wavelengths) == 224
        assert info.wavelengths[0] == pytest.approx(418.24)
        assert 2400 < info.wavelengths[-1] < 2500
        assert [i for i, bad in enumerate(info.bad_bands) if bad] == list(range(129, 135))
        (window,) = stack.read(0, 0, 8, 8)
    assert np.isnan(window[129:135]).all()  # bad bands are all nodata
    assert 0 < np.nanmedian(window[:129]) < 1  # scale 0.0001 applied: reflectance


# -- windows and subsets ------------------------------------------------------------------------
def test_pixel_window_and_subset(tmp_path):
    data = np.arange(100, dtype=np.float32).reshape(10, 10)
    stack = RasterStack([utm_tif(tmp_path / "a.tif", data, pixel=2.0)])
    x0, y0 = UTM_ORIGIN
    assert stack.pixel_window(x0 + 4, y0 - 10, x0 + 10, y0 - 4) == (2, 2, 3, 3)
    assert stack.pixel_window(x0 + 4.5, y0 - 9.5, x0 + 9.5, y0 - 4.5) == (2, 2, 3, 3)
    assert stack.pixel_window(x0 - 100, y0 - 100, x0 + 100, y0 + 100) == (0, 0, 10, 10)
    with pytest.raises(RasterInputError, match="does not overlap"):
        stack.pixel_window(x0 + 100, y0, x0 + 200, y0 + 10)
    subset = SubsetSource(stack, 2, 3, 4, 5)
    assert (subset.height, subset.width, subset.band_counts) == (4, 5, [1])
    assert subset.geotransform == (x0 + 6, 2.0, 0.0, y0 - 4, 0.0, -2.0)
    assert subset.crs_wkt == stack.crs_wkt
    np.testing.assert_array_equal(subset.read(1, 1, 2, 2)[0][0], data[3:5, 4:6])
    with pytest.raises(ValueError):
        SubsetSource(stack, 8, 0, 4, 4)


# -- writing ----------------------------------------------------------------------------------------
CLASSES = [ClassInfo(1, "water", "#0072b2"), ClassInfo(3, "forest & <trees>", "#009e73")]


def tiles_of(ids, confidence, size=4):
    for r in range(0, ids.shape[0], size):
        for c in range(0, ids.shape[1], size):
            yield r, c, ids[r:r + size, c:c + size], confidence[r:r + size, c:c + size]


def test_write_classification_round_trip(tmp_path):
    ids = np.zeros((6, 10), np.int32)
    ids[:, 3:] = 1
    ids[4:, :] = 3
    confidence = np.linspace(0, 1, 60, dtype=np.float32).reshape(6, 10)
    gt = (UTM_ORIGIN[0], 1.0, 0.0, UTM_ORIGIN[1], 0.0, -1.0)
    out, conf_out = str(tmp_path / "classes.tif"), str(tmp_path / "confidence.tif")
    write_classification(out, tiles_of(ids, confidence), 6, 10, gt, srs_wkt(UTM), CLASSES,
                         confidence_path=conf_out)

    labels, names = read_label_raster(out)
    np.testing.assert_array_equal(labels, ids)
    assert names == {1: "water", 3: "forest & <trees>"}
    ds = gdal.Open(out)
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert band.GetDescription() == "class"
    assert ds.GetGeoTransform() == gt
    assert osr.SpatialReference(ds.GetProjection()).GetAuthorityCode(None) == str(UTM)
    assert band.GetCategoryNames() == ["unclassified", "water", "", "forest & <trees>"]
    table = band.GetColorTable()
    assert table.GetColorEntry(1) == (0, 0x72, 0xb2, 255)
    assert table.GetColorEntry(3) == (0, 0x9e, 0x73, 255)
    assert table.GetColorEntry(0)[:3] == (0, 0, 0)  # GeoTIFF palettes have no alpha; 0 is nodata
    assert gdal.Info(out, format="json")["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"] == "DEFLATE"

    conf_ds = gdal.Open(conf_out)
    conf = conf_ds.GetRasterBand(1)
    assert conf.DataType == gdal.GDT_Float32 and conf.GetNoDataValue() == CONFIDENCE_NODATA
    assert conf.GetDescription() == "confidence"
    expected = np.where(ids == 0, CONFIDENCE_NODATA, confidence)
    np.testing.assert_allclose(conf.ReadAsArray(), expected)

    root = ET.parse(str(tmp_path / "classes.qml")).getroot()
    assert root.tag == "qgis"
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = [(e.get("value"), e.get("color"), e.get("label")) for e in renderer.iter("paletteEntry")]
    assert entries == [("1", "#0072b2", "water"), ("3", "#009e73", "forest & <trees>")]
    files = os.listdir(tmp_path)
    assert {"classes.tif", "classes.qml", "confidence.tif"} <= set(files)
    assert not [name for name in files if ".tmp-" in name]


def test_write_classification_uses_uint16_for_large_ids(tmp_path):
    ids = np.full((3, 3), 300, np.int32)
    out = str(tmp_path / "big.tif")
    write_classification(out, [(0, 0, ids, None)], 3, 3, (0, 1, 0, 0, 0, -1), "",
                         [ClassInfo(1, "a"), ClassInfo(300, "b")])
    ds = gdal.Open(out)
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_UInt16
    labels, names = read_label_raster(out)
    np.testing.assert_array_equal(labels, ids)
    assert names == {1: "a", 300: "b"}


def test_write_classification_rejects_unknown_class_ids(tmp_path):
    with pytest.raises(ValueError, match="class id 2"):
        write_classification(str(tmp_path / "x.tif"), [(0, 0, np.full((2, 2), 2), None)], 2, 2,
                             (0, 1, 0, 0, 0, -1), "", CLASSES)
    assert os.listdir(tmp_path) == []


class Cancelled(Exception):
    pass


def test_write_classification_is_atomic(tmp_path):
    out = tmp_path / "classes.tif"
    out.write_bytes(b"previous result")
    (tmp_path / "classes.qml").write_text("previous style")
    before = sorted(os.listdir(tmp_path))
    ids = np.ones((8, 8), np.int32)

    def cancelled_midway():
        yield 0, 0, ids[:4], np.ones((4, 8), np.float32)
        raise Cancelled()

    with pytest.raises(Cancelled):
        write_classification(str(out), cancelled_midway(), 8, 8, (0, 1, 0, 0, 0, -1), "", CLASSES,
                             confidence_path=str(tmp_path / "conf.tif"))
    assert sorted(os.listdir(tmp_path)) == before
    assert out.read_bytes() == b"previous result"
    assert (tmp_path / "classes.qml").read_text() == "previous style"


def test_write_classification_replaces_existing_output(tmp_path):
    out = str(tmp_path / "classes.tif")
    for value in (1, 3):
        write_classification(out, [(0, 0, np.full((2, 2), value), None)], 2, 2, (0, 1, 0, 0, 0, -1), "",
                             CLASSES)
    np.testing.assert_array_equal(read_label_raster(out)[0], 3)
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_a_replaced_output_keeps_no_pyramids_or_mask_of_the_old_one(tmp_path):
    """QGIS's "Build pyramids" writes .ovr beside a GeoTIFF, GDAL a .msk: left there, they show the old map."""
    out = str(tmp_path / "classes.tif")
    write_classification(out, [(0, 0, np.full((4, 4), 1), None)], 4, 4, (0, 1, 0, 0, 0, -1), "", CLASSES)
    ds = gdal.Open(out)
    ds.BuildOverviews("NEAREST", [2])
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    ds = None
    assert {"classes.tif.ovr", "classes.tif.msk"} <= set(os.listdir(tmp_path))
    write_classification(out, [(0, 0, np.full((4, 4), 3), None)], 4, 4, (0, 1, 0, 0, 0, -1), "", CLASSES)
    assert not {"classes.tif.ovr", "classes.tif.msk"} & set(os.listdir(tmp_path))
    ds = gdal.Open(out)
    band = ds.GetRasterBand(1)
    assert band.GetOverviewCount() == 0 and band.GetMaskFlags() != gdal.GMF_PER_DATASET
    np.testing.assert_array_equal(band.ReadAsArray(), 3)


def test_write_qml_standalone(tmp_path):
    path = str(tmp_path / "style.qml")
    write_qml(path, [ClassInfo(2, "b"), ClassInfo(1, "a", "#ff0000")])
    text = open(path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE qgis")
    entries = list(ET.fromstring(text.split("\n", 1)[1]).iter("paletteEntry"))
    assert [e.get("value") for e in entries] == ["1", "2"]
    assert entries[0].get("color") == "#ff0000" and entries[1].get("color").startswith("#")


def test_read_label_raster_float_labels_and_nodata(tmp_path):
    data = np.array([[0, 1.0, 2.0], [-1, np.nan, 255]], np.float32)
    path = utm_tif(tmp_path / "gt.tif", data, nodata=255)
    labels, names = read_label_raster(path)
    assert labels.dtype == np.int32 and names == {}
    np.testing.assert_array_equal(labels, [[0, 1, 2], [0, 0, 0]])
    with pytest.raises(RasterInputError, match="non-integer"):
        read_label_raster(utm_tif(tmp_path / "float.tif", np.array([[0.5]])))
