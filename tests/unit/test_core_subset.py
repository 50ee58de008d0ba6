"""Classifying inside an extent gives exactly the crop of the full classification:
windows at the subset's edges see the real neighbours outside it, not copied edge pixels."""
import numpy as np
import pytest
import torch

from diffclip_qgis.core.infer import Predictor
from diffclip_qgis.gis.raster import SubsetSource

from core_fixtures import cached_classifier


def test_subset_prediction_equals_crop_of_full_prediction():
    trained, source, _, _ = cached_classifier()
    predictor = Predictor(trained, torch.device("cpu"))
    full_ids, full_conf = predictor.predict(source)
    r0, c0, h, w = 5, 7, 9, 11
    sub_ids, sub_conf = predictor.predict(SubsetSource(source, r0, c0, h, w))
    np.testing.assert_array_equal(sub_ids, full_ids[r0:r0 + h, c0:c0 + w])
    np.testing.assert_allclose(sub_conf, full_conf[r0:r0 + h, c0:c0 + w], rtol=1e-5, atol=1e-6)


def test_subset_reads_its_margins_but_not_beyond_the_parent():
    _, source, _, _ = cached_classifier()
    subset = SubsetSource(source, 2, 3, 4, 5)
    assert subset.margins == (2, 3, source.height - 6, source.width - 8)
    np.testing.assert_array_equal(subset.read(-2, -3, 3, 3)[0], source.read(0, 0, 3, 3)[0])
    with pytest.raises(ValueError, match="not inside"):
        subset.read(-3, 0, 2, 2)
