"""The end-of-run message: one short line in the message bar (1366 px wide screens), the details in the dock's log."""
from diffclip_qgis.core.classes import ClassInfo
from diffclip_qgis.workflow.requests import ClassifyResult


def result(window=9, scores=None, few=False):
    return ClassifyResult(output="c.tif", output_confidence="p.tif", output_model="m.pt",
                          classes=[ClassInfo(1, "a"), ClassInfo(2, "b")], window=window,
                          window_scores={5: 0.7, 9: 0.8567} if scores is None else scores, samples=24, seconds=41.6,
                          device="cpu", few_samples=few)


def test_message_gives_the_estimate_in_one_short_line_that_points_to_the_log(qgis_app):
    from diffclip_qgis.gui.results import success_message

    message = success_message(result())
    assert message == "Classified in 42 s. Estimated accuracy 86 % (see the Log)."
    assert success_message(result(scores={})) == "Classified in 42 s. No accuracy estimate (see the Log)."
    assert "Estimated accuracy 70 %" in success_message(result(window=5))


def test_with_few_samples_per_class_the_message_is_short_enough_for_its_suggest_button(qgis_app):
    from diffclip_qgis.gui.results import success_message

    message = success_message(result(window=1, scores={}, few=True))
    assert message == "Few samples per class (see the Log)."   # the log says what to do


def test_log_says_what_the_estimate_is_and_where_the_files_are(qgis_app, tmp_path):
    from diffclip_qgis.gui.results import result_log
    from diffclip_qgis.gui.task import Outputs

    accuracy, files = result_log(result(), Outputs(str(tmp_path), 3))
    assert accuracy.startswith("Accuracy estimate: 85.7 % balanced accuracy")
    assert "9 x 9 window" in accuracy and "24 samples" in accuracy and "validation sample" in accuracy
    assert files == (f"Files written to {tmp_path}: diffclip_classification_003.tif, diffclip_confidence_003.tif, "
                     "diffclip_model_003.pt.")
    assert "'auto'" in result_log(result(scores={}), Outputs(str(tmp_path), 3))[0]
