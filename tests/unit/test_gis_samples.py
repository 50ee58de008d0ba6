"""Sample vectors to labelled pixels, on real OGR files in tmp_path."""
import pytest
from osgeo import gdal, ogr, osr

from diffclip_qgis.gis.samples import (SampleError, class_values_to_ids, geometry_pixels, mixed_values_note,
                                       read_features, samples_from_geometries)

ogr.UseExceptions()
UTM = 32633
X0, Y0 = 366000.0, 5810000.0
GT = (X0, 10.0, 0.0, Y0, 0.0, -10.0)  # 10 m pixels
HEIGHT, WIDTH = 20, 30


def srs(epsg):
    s = osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


def wkb(wkt):
    return ogr.CreateGeometryFromWkt(wkt).ExportToWkb()


def point(col, row):
    """WKT of the point at the centre of pixel (row, col) of the grid."""
    return f"POINT ({X0 + 10 * col + 5} {Y0 - 10 * row - 5})"


def box(col0, row0, col1, row1):
    """WKT of the polygon covering pixel columns col0..col1-1 and rows row0..row1-1 exactly."""
    x0, x1, y0, y1 = X0 + 10 * col0, X0 + 10 * col1, Y0 - 10 * row0, Y0 - 10 * row1
    return f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"


class Log:
    def __init__(self):
        self.warnings = []

    def __call__(self, message, warning=False):
        if warning:
            self.warnings.append(message)


def pixels(samples):
    return sorted(zip(samples.rows.tolist(), samples.cols.tolist(), samples.class_ids.tolist()))


def test_points_give_the_pixel_under_them():
    samples = samples_from_geometries([wkb(point(2, 3)), wkb(point(29, 19)), wkb("POINT (366000.1 5809999.9)")],
                                      [1, 2, 2], GT, HEIGHT, WIDTH)
    assert pixels(samples) == [(0, 0, 2), (3, 2, 1), (19, 29, 2)]
    assert [(c.id, c.name) for c in samples.classes] == [(1, "class 1"), (2, "class 2")]
    assert samples.skipped == 0


def test_polygons_give_pixels_with_centre_inside_and_multipoints_all_points():
    multipoint = f"MULTIPOINT ({point(10, 10)[7:-1]}, {point(11, 12)[7:-1]})"
    said = []   # GDAL's own messages: rasterising a polygon once warned "Failed to fetch spatial reference"
    gdal.PushErrorHandler(lambda level, number, message: said.append(message))
    try:
        samples = samples_from_geometries([wkb(box(1, 1, 3, 4)), wkb(multipoint)], ["3", "7"], GT, HEIGHT, WIDTH,
                                          srs(UTM).ExportToWkt(), srs(UTM).ExportToWkt())
    finally:
        gdal.PopErrorHandler()
    expected = [(r, c, 3) for r in range(1, 4) for c in range(1, 3)] + [(10, 10, 7), (12, 11, 7)]
    assert pixels(samples) == sorted(expected) and said == []


def test_small_polygon_and_lines_take_the_pixels_they_touch():
    tiny = f"POLYGON (({X0 + 51} {Y0 - 51}, {X0 + 53} {Y0 - 51}, {X0 + 53} {Y0 - 53}, {X0 + 51} {Y0 - 51}))"
    line = f"LINESTRING ({X0 + 105} {Y0 - 5}, {X0 + 135} {Y0 - 5})"
    samples = samples_from_geometries([wkb(tiny), wkb(line)], ["a", "b"], GT, HEIGHT, WIDTH)
    assert pixels(samples) == [(0, c, 2) for c in range(10, 14)] + [(5, 5, 1)]


def test_samples_are_reprojected_to_the_grid_crs():
    to_wgs84 = osr.CoordinateTransformation(srs(UTM), srs(4326))
    lon, lat, _ = to_wgs84.TransformPoint(X0 + 10 * 4 + 5, Y0 - 10 * 6 - 5)
    other = to_wgs84.TransformPoint(X0 + 10 * 20 + 5, Y0 - 10 * 1 - 5)
    geometries = [wkb(f"POINT ({lon} {lat})"), wkb(f"POINT ({other[0]} {other[1]})")]
    samples = samples_from_geometries(geometries, [1, 2], GT, HEIGHT, WIDTH,
                                      source_crs_wkt=srs(4326).ExportToWkt(), grid_crs_wkt=srs(UTM).ExportToWkt())
    assert pixels(samples) == [(1, 20, 2), (6, 4, 1)]


def test_samples_outside_the_grid_are_skipped_with_a_warning():
    log = Log()
    samples = samples_from_geometries([wkb(point(1, 1)), wkb(point(-5, 1)), wkb(point(2, 2)), None],
                                      ["a", "a", "b", "b"], GT, HEIGHT, WIDTH, log=log)
    assert pixels(samples) == [(1, 1, 1), (2, 2, 2)]
    assert samples.skipped == 2
    assert any("2 of 4" in w for w in log.warnings)


def test_conflicting_pixels_keep_the_first_class():
    log = Log()
    samples = samples_from_geometries([wkb(box(0, 0, 2, 1)), wkb(point(1, 0)), wkb(point(5, 5))],
                                      [1, 2, 2], GT, HEIGHT, WIDTH, log=log)
    assert pixels(samples) == [(0, 0, 1), (0, 1, 1), (5, 5, 2)]
    assert any("different classes" in w for w in log.warnings)


def test_class_values_to_ids():
    assert class_values_to_ids([3, "1", 3.0]) == ([3, 1, 3], {1: "class 1", 3: "class 3"})
    assert class_values_to_ids(["water", "Forest", "water"]) == ([2, 1, 2], {1: "Forest", 2: "water"})
    assert class_values_to_ids([1, "water"]) == ([1, 2], {1: "1", 2: "water"})
    ids, names = class_values_to_ids(["10", "2", "1", "three"])   # numbers by value, then text
    assert ids == [3, 2, 1, 4] and names == {1: "1", 2: "2", 3: "10", 4: "three"}
    assert "mixes whole numbers with text ('three')" in mixed_values_note(["10", "2", "1", "three"])
    assert mixed_values_note(["water", "Forest"]) == "" and mixed_values_note([1, 2]) == ""
    with pytest.raises(SampleError, match="Class value 1.5 is not a whole number"):
        class_values_to_ids([1.5, 10.5, 2.0])
    with pytest.raises(SampleError, match="Class value 0 .*nodata"):
        class_values_to_ids([1, 0, 2])
    with pytest.raises(SampleError, match="Class value -1"):
        class_values_to_ids(["-1", "2"])
    with pytest.raises(SampleError, match="2 of 3 sample features have an empty"):
        class_values_to_ids(["a", None, " "])


def test_single_class_and_class_without_pixels_are_errors():
    with pytest.raises(SampleError, match="only one class"):
        samples_from_geometries([wkb(point(1, 1)), wkb(point(2, 2))], ["a", "a"], GT, HEIGHT, WIDTH)
    with pytest.raises(SampleError, match="Class 'far' has no sample pixel"):
        samples_from_geometries([wkb(point(1, 1)), wkb(point(500, 2))], ["near", "far"], GT, HEIGHT, WIDTH)


def write_layer(path, driver, features, epsg=UTM, field="class", field_type=ogr.OFTString):
    ds = ogr.GetDriverByName(driver).CreateDataSource(str(path))
    layer = ds.CreateLayer("samples", srs(epsg), ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn(field, field_type))
    for wkt, value in features:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        if value is not None:
            feature.SetField(field, value)
        layer.CreateFeature(feature)
    ds = None
    return str(path)


def read_samples_file(source, field, *grid, log=None):
    geometries, values, crs = read_features(source, field, log)
    return samples_from_geometries(geometries, values, *grid[:3], crs, *grid[3:], log=log)


def test_read_samples_from_geopackage(tmp_path):
    path = write_layer(tmp_path / "samples.gpkg", "GPKG",
                       [(point(1, 1), "water"), (box(5, 5, 7, 6), "forest"), (point(3, 3), "water")])
    log = Log()
    samples = read_samples_file(path, "class", GT, HEIGHT, WIDTH, srs(UTM).ExportToWkt(), log=log)
    assert pixels(samples) == [(1, 1, 2), (3, 3, 2), (5, 5, 1), (5, 6, 1)]
    assert [(c.id, c.name, c.colour, c.prompt) for c in samples.classes] == [(1, "forest", "", ""),
                                                                             (2, "water", "", "")]
    assert not log.warnings


def test_read_samples_from_geojson_in_other_crs(tmp_path):
    to_wgs84 = osr.CoordinateTransformation(srs(UTM), srs(4326))
    lon, lat, _ = to_wgs84.TransformPoint(X0 + 10 * 8 + 5, Y0 - 10 * 2 - 5)
    path = write_layer(tmp_path / "samples.geojson", "GeoJSON",
                       [(f"POINT ({lon} {lat})", 1), ("POINT (13.0 52.0)", 2), (f"POINT ({lon} {lat + 0.0002})", 2)],
                       epsg=4326, field="id", field_type=ogr.OFTInteger)
    samples = read_samples_file(path, "id", GT, HEIGHT, WIDTH, srs(UTM).ExportToWkt())
    assert pixels(samples) == [(0, 8, 2), (2, 8, 1)]
    assert samples.skipped == 1


def test_read_samples_errors(tmp_path):
    path = write_layer(tmp_path / "samples.shp", "ESRI Shapefile", [(point(1, 1), "a"), (point(2, 2), None)])
    with pytest.raises(SampleError, match="no field 'label'.*class"):
        read_samples_file(path, "label", GT, HEIGHT, WIDTH)
    with pytest.raises(SampleError, match="1 of 2 sample features have an empty"):
        read_samples_file(path, "class", GT, HEIGHT, WIDTH)
    with pytest.raises(SampleError, match="no layer 'other'"):
        read_samples_file(path + "|layername=other", "class", GT, HEIGHT, WIDTH)
    with pytest.raises(SampleError, match="Cannot open"):
        read_samples_file(str(tmp_path / "missing.gpkg"), "class", GT, HEIGHT, WIDTH)


def test_a_layer_of_a_multi_layer_file_is_chosen_by_name_number_and_filter_as_qgis_writes_them(tmp_path):
    path = write_layer(tmp_path / "many.gpkg", "GPKG", [(point(1, 1), "water"), (point(2, 2), "forest")])
    ds = ogr.Open(path, 1)
    names = ds.CreateLayer("names", srs(UTM), ogr.wkbPoint)
    names.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    for col, value in ((4, "tree"), (5, "grass"), (6, "tree")):
        feature = ogr.Feature(names.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(point(col, 1)))
        feature.SetField("name", value)
        names.CreateFeature(feature)
    ds = names = None
    log = Log()
    assert read_features(path, "class", log)[1] == ["water", "forest"]
    assert log.warnings == [f"{path} holds 2 layers (samples, names): reading the first, 'samples'. Choose another "
                            f"with {path}|layername=NAME."]
    assert read_features(path + "|layername=names", "name")[1] == ["tree", "grass", "tree"]
    assert read_features(path + "|layerid=1", "name")[1] == ["tree", "grass", "tree"]
    assert read_features(path + "|layername=names|subset=\"name\" = 'tree'", "name")[1] == ["tree", "tree"]
    with pytest.raises(SampleError, match=r"no field 'name'.*The file's other layers: names \(choose one with "):
        read_features(path, "name")
    with pytest.raises(SampleError, match="'geometrytype=Point' .* is not an option read here"):
        read_features(path + "|geometrytype=Point", "class")
    with pytest.raises(SampleError, match="has no layer 'number 7'"):
        read_features(path + "|layerid=7", "class")
    with pytest.raises(SampleError, match="The filter \\(subset\\) nonsense = = of"):
        read_features(path + "|subset=nonsense = =", "class")


def test_samples_of_which_none_lies_on_the_raster_name_both_extents_and_crs():
    """The usual cause is a wrong CRS on the sample layer: the message gives where each lies, in its CRS."""
    utm = [wkb(point(2, 3)), wkb(point(5, 5))]   # UTM coordinates, but the layer says WGS 84
    with pytest.raises(SampleError, match=r"None of the 2 sample features lies on the raster\. The samples span "
                                          r"x 366025 to 366055, y 5809945 to 5809965 \(EPSG:4326\); the "
                                          r"raster spans x 366000 to 366300, y 5809800 to 5810000 "
                                          r"\(EPSG:32633\)\. If the samples' coordinates are right, check the CRS"):
        samples_from_geometries(utm, [1, 2], GT, HEIGHT, WIDTH, "EPSG:4326", srs(UTM).ExportToWkt())


def test_samples_to_keep_away_from_that_miss_the_raster_are_counted():
    """Suggest Samples keeps away from the labelled pixels: those it cannot place are named, not dropped silently."""
    log = Log()
    rows, cols = geometry_pixels([wkb(point(2, 3)), wkb("POINT (0 0)")], GT, HEIGHT, WIDTH, log=log)
    assert (rows.tolist(), cols.tolist()) == ([3], [2])
    assert log.warnings == ["1 of 2 sample features have no pixel on the raster and are left out."]
    geometry_pixels([wkb(point(2, 3))], GT, HEIGHT, WIDTH, "EPSG:4326", srs(UTM).ExportToWkt(), log)
    assert log.warnings[-1].startswith("1 of 1 sample features have no pixel on the raster and are left out. The "
                                       "samples span x 366025 to 366025") and "check the CRS" in log.warnings[-1]
