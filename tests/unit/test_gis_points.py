"""Point layers a run writes, and when an existing one may be replaced."""
import numpy as np
import pytest
from osgeo import ogr

from diffclip_qgis.core.files import OutputPathError, PendingOutputs
from diffclip_qgis.gis.points import check_replaceable, write_points

WRITTEN = (("rank", ogr.OFTInteger), ("best_class", ogr.OFTInteger))


def suggestions(path):
    with PendingOutputs() as outputs:
        write_points(str(path), "suggested_samples", np.array([0, 1]), np.array([0, 1]), (0, 1, 0, 0, 0, -1), "",
                     outputs, WRITTEN, ([1, 2], [3, 4]))
    return str(path)


def add_field(path, name, value):
    ds = ogr.Open(path, 1)
    layer = ds.GetLayer(0)
    layer.CreateField(ogr.FieldDefn(name, ogr.OFTInteger))
    if value is not None:
        feature = layer.GetNextFeature()
        feature.SetField(name, value)
        layer.SetFeature(feature)
    ds = None


def test_suggestions_with_a_field_a_user_filled_in_are_not_replaced(tmp_path):
    """Their help says: label the suggested points; a rerun to the same file must not delete those labels."""
    path = suggestions(tmp_path / "s.gpkg")
    check_replaceable("OUTPUT", path, "suggested_samples", schema=WRITTEN)   # as written: replaceable
    add_field(path, "class_id", None)
    check_replaceable("OUTPUT", path, "suggested_samples", schema=WRITTEN)   # an empty field: nothing lost
    add_field(path, "label", 5)
    with pytest.raises(OutputPathError, match="holds 1 point whose 'label' field was filled in"):
        check_replaceable("OUTPUT", path, "suggested_samples", schema=WRITTEN)
    check_replaceable("OUTPUT", path, "suggested_samples")   # without a schema only user_fields count
