"""The phases a classification run will have, known before it starts (for the progress bars)."""
from diffclip_qgis.workflow.classify import run_phases, will_choose_window, will_pretrain
from diffclip_qgis.workflow.phases import PhaseClock, RunProgress, format_seconds
from diffclip_qgis.workflow.requests import ClassifyRequest, Samples


def request(per_class: int, **kw) -> ClassifyRequest:
    values = [c for c in (1, 2, 3) for _ in range(per_class)]
    return ClassifyRequest(inputs=["a.tif"], samples=Samples(wkbs=[None] * len(values), values=values),
                           output="out.tif", **kw)


def test_cross_validation_runs_with_more_than_few_labels_or_the_rule_off():
    assert not will_choose_window(request(2))
    assert will_choose_window(request(8))
    assert not will_choose_window(request(8, window="5"))
    assert will_choose_window(request(2, preset="paper"))  # the window rule is the cpu preset's


def test_pretraining_follows_the_preset_and_the_epochs():
    assert not will_pretrain(request(2)) and will_pretrain(request(2, pretrain_epochs=5))
    assert not will_pretrain(request(2, pretrain_epochs=5, pretrained="encoder.pt"))


def test_run_phases_weigh_only_the_phases_a_run_has():
    full = RunProgress(pretrain=True, choose_window=True)
    finetune_only = run_phases(request(2))
    assert full.percent("pretraining", 0.0) == 0 and round(full.percent("classifying", 1.0)) == 100
    assert full.percent("fine-tuning", 0.5) < full.percent("classifying", 0.0)
    assert finetune_only.percent("pretraining", 0.5) is None and finetune_only.percent("fine-tuning", 0.0) == 0
    bar = finetune_only.ranges(2, 97)  # the Processing bar: the same phases and weights
    assert set(bar) == {"fine-tuning", "classifying"} and bar["fine-tuning"][0] == 2 and bar["classifying"][1] == 97
    assert "choosing window" in run_phases(request(8)).share


def test_time_left_from_the_phase_rate():
    now = [0.0]
    clock = PhaseClock(lambda: now[0])
    assert clock.update("fine-tuning", 0.1) is None  # the rate is not known yet
    now[0] = 10.0
    assert clock.update("fine-tuning", 0.3) == 35.0  # 0.2 in 10 s: 0.7 left takes 35 s
    assert clock.update("classifying", 0.1) is None
    assert [format_seconds(s) for s in (45, 185, 3725)] == ["45 s", "3 min 05 s", "1 h 02 min"]


def test_the_log_gives_the_fine_tuning_length_the_run_will_have():
    """The cpu preset's 100 epochs are capped at 200 steps and stretched to them: the log said '100 epochs' while
    the progress counted to 200."""
    from diffclip_qgis.core.config import get_preset, set_finetune_epochs
    from diffclip_qgis.workflow.classify import fine_tuning_length

    preset = get_preset("cpu")
    assert fine_tuning_length(preset.finetune) == "up to 200 fine-tuning steps"
    set_finetune_epochs(preset, 30)
    assert fine_tuning_length(preset.finetune) == "30 fine-tuning epochs"
