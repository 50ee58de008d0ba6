"""The phases a classification run will have, known before it starts (for the progress bars)."""
from diffclip_qgis.workflow.classify import will_choose_window, will_pretrain
from diffclip_qgis.workflow.requests import ClassifyRequest, Samples


def request(per_class: int, **kw) -> ClassifyRequest:
    values = [c for c in (1, 2, 3) for _ in range(per_class)]
    return ClassifyRequest(inputs=["a.tif"], samples=Samples(wkbs=[None] * len(values), values=values),
                           output="out.tif", **kw)


def test_few_labels_take_the_window_from_the_scene_more_cross_validate_it():
    assert not will_choose_window(request(2))
    assert will_choose_window(request(8))
    assert not will_choose_window(request(8, window="5"))
    assert will_choose_window(request(2, preset="paper"))  # the window rule is the cpu preset's


def test_pretraining_follows_the_preset_and_the_epochs():
    assert not will_pretrain(request(2)) and will_pretrain(request(2, pretrain_epochs=5))
    assert not will_pretrain(request(2, pretrain_epochs=5, pretrained="encoder.pt"))
