"""Runs from the dock: a background QgsTask on tiny rasters, results in the project, failure and cancel."""
import os

import pytest

from qgis.core import Qgis, QgsApplication, QgsPalettedRasterRenderer, QgsProject

from test_dock_support import (RUN_INPUTS, add_rasters, changeable, dock, held_by_a_crashed_session,  # noqa: F401
                               held_by_another_session, iface, label_scene, process_events, scene, truth_grid,
                               wait_for)

TINY = {"preset": "cpu", "pretrain_epochs": 1, "finetune_epochs": 10, "window": "auto", "device": "cpu"}


def configure(dock, folder, **overrides):
    dock.settings.set_values(dict(TINY, output_folder=folder, **overrides))


def wait_for_run(dock, timeout=300):
    """Until the task has finished and the dock has posted its message."""
    wait_for(lambda: dock.task is None, timeout=timeout)
    process_events(0.1)


def log_in_view(dock):
    """The Log group is open and shown whole in the dock's scrolling part."""
    from qgis.gui import QgsCollapsibleGroupBox
    from qgis.PyQt.QtCore import QPoint, QRect

    group = next(g for g in dock.findChildren(QgsCollapsibleGroupBox) if g.title() == "Log")
    viewport = dock.scroll.viewport()
    return not group.isCollapsed() and viewport.rect().contains(QRect(group.mapTo(viewport, QPoint(0, 0)),
                                                                      group.size()))


def no_diffclip_task_running():
    return not any(t.description().startswith("DiffCLIP") for t in QgsApplication.taskManager().activeTasks())


def test_run_adds_styled_layers_and_reports_held_out_accuracy(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=5)
    out = str(tmp_path / "out")
    configure(dock, out)
    assert dock.run()
    reported = []
    dock.task.phaseChanged.connect(lambda phase, _, message: reported.append((phase, message)))
    assert dock.task is not None and not dock.run_button.isEnabled() and dock.cancel_button.isEnabled()
    assert changeable(dock) == [] and dock.log_group.isEnabled()   # what the run read is locked; the Log is not
    assert any(t is dock.task for t in QgsApplication.taskManager().activeTasks())
    wait_for_run(dock, timeout=300)
    assert changeable(dock) == RUN_INPUTS
    fine_tuning = [message for phase, message in reported if phase == "fine-tuning" and message]
    assert fine_tuning and all(m.startswith("epoch ") for m in fine_tuning)
    assert fine_tuning[-1].startswith("epoch 10/10,")   # the fine-tuning epochs set in Settings

    assert sorted(os.listdir(out)) == ["diffclip_classification_001.qml", "diffclip_classification_001.tif",
                                       "diffclip_classification_001.tif.aux.xml", "diffclip_confidence_001.tif",
                                       "diffclip_model_001.pt"]
    order = [node.layer() for node in QgsProject.instance().layerTreeRoot().findLayers()]
    assert [l.name() for l in order[:3]] == ["DiffCLIP samples", "DiffCLIP classification 001",
                                             "DiffCLIP confidence 001"]
    renderer = order[1].renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    classes = dock.classes.model.classes()
    assert [(e.value, e.color.name(), e.label) for e in renderer.classes()] == [(c.id, c.colour, c.name)
                                                                              for c in classes]
    message = iface.messages()[0]
    assert message.startswith("Classified in ") and "Estimated accuracy" in message and "(see the Log)" in message
    assert log_in_view(dock)
    log = dock.log.toPlainText()
    assert "Accuracy estimate:" in log and "balanced accuracy" in log and "window-choice runs" in log
    assert out in log and "diffclip_model_001.pt" in log
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled()

    # A second run never overwrites the first; the first one's message goes when it starts.
    configure(dock, out, window="3", smoothing=1)
    assert dock.run()
    assert message not in iface.messages()
    wait_for_run(dock, timeout=300)
    assert os.path.isfile(os.path.join(out, "diffclip_classification_002.tif"))
    assert os.path.isfile(os.path.join(out, "diffclip_model_002.pt"))
    assert "No accuracy estimate" in iface.messages()[0]
    assert "Majority smoothing with radius 1 px" in dock.log.toPlainText()
    assert len([l for l in QgsProject.instance().mapLayers().values() if l.name().startswith("DiffCLIP class")]) == 2
    assert dock.phase_label.text() == "Done."
    QgsProject.instance().clear()
    assert dock.phase_label.text() == ""   # nothing of the last project's run


def test_failed_run_reports_the_reason_and_leaves_no_files(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    import torch

    bogus = tmp_path / "not_a_model.pt"
    torch.save({"weights": torch.zeros(2)}, str(bogus))
    out = str(tmp_path / "out")
    configure(dock, out, pretrained_path=str(bogus))
    assert dock.run()
    assert changeable(dock) == []
    wait_for_run(dock, timeout=120)
    assert changeable(dock) == RUN_INPUTS
    assert iface.messages()[0].startswith("Classification failed:")
    assert "not a DiffCLIP model file" in iface.messages()[0]
    assert not os.path.isdir(out) or os.listdir(out) == []
    assert dock.phase_label.text() == "Failed."


def test_cancel_stops_the_task_and_writes_nothing(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    out = str(tmp_path / "out")
    configure(dock, out, pretrain_epochs=5000)
    assert dock.run()
    wait_for(lambda: "pretraining" in dock.phase_label.text(), timeout=120)
    assert changeable(dock) == []
    description = dock.task.description()
    # QGIS's own notice for a task that returns False, as the desktop shows it where there is no system tray
    dock.task.done.connect(lambda ok: iface.bar.pushMessage("Task failed", description, Qgis.MessageLevel.Info, 0))
    dock.cancel()
    wait_for_run(dock, timeout=60)
    wait_for(no_diffclip_task_running, timeout=10)
    process_events(0.2)
    assert changeable(dock) == RUN_INPUTS
    assert "cancelled" in iface.messages()[0]
    assert description not in iface.messages()  # reported as cancelled, not as failed
    assert os.listdir(out) == []
    assert not [l for l in QgsProject.instance().mapLayers().values() if l.name().startswith("DiffCLIP class")]


def test_a_run_that_ends_after_another_project_was_opened_adds_nothing_to_it(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    out = str(tmp_path / "out")
    configure(dock, out)
    iface.window.resize(1000, 500)   # the Log is out of view until the dock scrolls to it
    assert dock.run()
    QgsProject.instance().clear()   # what File > New and opening another project do first
    assert not log_in_view(dock)
    wait_for_run(dock)
    assert iface.messages()[0] == "Nothing added: another project was opened (see the Log)."
    assert iface.bar.items()[0].duration() == 0   # stays until closed
    assert f"its files are in {out}." in dock.log.toPlainText() and log_in_view(dock)
    assert dock.phase_label.text() == ""   # no "Done." for the project now open
    assert not QgsProject.instance().mapLayers() and not QgsProject.instance().isDirty()
    assert "diffclip_classification_001.tif" in os.listdir(out)
    assert dock.project.readEntry("DiffCLIP", "model", "")[0] == ""


def test_dock_samples_and_class_list_feed_the_processing_algorithm(dock, iface, scene, tmp_path):
    """The sample layer (CLASS_FIELD=class_id) and the saved class list work as SAMPLES and PROMPTS."""
    import processing
    import torch
    from qgis.core import QgsRasterLayer

    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=3)
    prompts = str(tmp_path / "classes.json")
    assert dock.classes.save_file(prompts)
    output = str(tmp_path / "processing.tif")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the dock's task does on a 2-core machine: far faster when cores are busy
    try:
        result = processing.run("diffclip:fewshotclassify", {
            "INPUTS": list(scene["paths"]), "SAMPLES": dock.store.layer(), "CLASS_FIELD": "class_id",
            "PROMPTS": prompts, "PRETRAIN_EPOCHS": 0, "EPOCHS": 5, "WINDOW": "3", "DEVICE": "cpu", "OUTPUT": output})
    finally:
        torch.set_num_threads(threads)
    layer = QgsRasterLayer(result["OUTPUT"], "out")
    assert layer.isValid() and layer.width() == 24
    assert isinstance(layer.renderer(), QgsPalettedRasterRenderer)  # its .qml, with the dock's class names
    assert {e.value: e.label for e in layer.renderer().classes()} == {1: "field", 2: "roof", 3: "tree"}


def test_output_numbering(tmp_path):
    from diffclip_qgis.gui.task import next_outputs

    assert next_outputs(str(tmp_path / "new")).number == 1
    (tmp_path / "diffclip_model_007.pt").write_bytes(b"")
    (tmp_path / "my_notes_099.txt").write_bytes(b"")
    outputs = next_outputs(str(tmp_path))
    assert outputs.number == 8 and outputs.classification.endswith("diffclip_classification_008.tif")


def test_a_run_reserves_its_number_against_concurrent_runs(tmp_path):
    """Two QGIS sessions numbering into one folder: a number another running session holds is skipped, a crashed
    one's is free again, and a run gives its number back when it ends."""
    from diffclip_qgis.gui.task import next_outputs

    first = next_outputs(str(tmp_path))
    assert first.number == 1 and next_outputs(str(tmp_path)).number == 2   # no files yet: the reservation counts
    first.lock.unlock()
    other = held_by_another_session(str(tmp_path / ".diffclip_run_001.lock"))
    try:
        ours = next_outputs(str(tmp_path))
        assert ours.number == 2
        ours.lock.unlock()
    finally:
        other.kill()
        other.wait()
    held_by_a_crashed_session(str(tmp_path / ".diffclip_run_001.lock"))
    ours = next_outputs(str(tmp_path))
    assert ours.number == 1
    ours.lock.unlock()
    assert os.listdir(tmp_path) == []


def test_a_number_written_between_the_listing_and_the_lock_is_skipped(tmp_path, monkeypatch):
    """A job that ends in another session between the folder's listing and the lock has written its number."""
    import re

    from diffclip_qgis.gui import reservations

    numbered = re.compile(r"x_(\d+)\.txt")
    listings = iter([[], ["x_001.txt"], ["x_001.txt"]])   # empty when listed, x_001 written by the lock
    monkeypatch.setattr(reservations.os, "listdir", lambda folder: next(listings))
    number, lock = reservations.reserve_number(str(tmp_path), numbered, ".x_{number:03d}.lock")
    assert number == 2
    lock.unlock()
    monkeypatch.undo()
    with pytest.raises(ValueError, match="Cannot write into the output folder"):
        reservations.reserve_number(str(tmp_path / "gone"), numbered, ".x_{number:03d}.lock")


def test_suggestions_reserve_their_file_against_concurrent_sessions(tmp_path):
    """Two QGIS sessions suggesting into one folder get two files; an existing file's number is never taken."""
    from diffclip_qgis.gui.suggestions import reserve_suggestion_path

    (tmp_path / "diffclip_suggestions_004.gpkg").write_bytes(b"")
    path, lock = reserve_suggestion_path(str(tmp_path))
    assert os.path.basename(path) == "diffclip_suggestions_005.gpkg"
    lock.unlock()
    other = held_by_another_session(str(tmp_path / ".diffclip_suggestions_005.lock"))
    try:
        path, lock = reserve_suggestion_path(str(tmp_path))
        assert os.path.basename(path) == "diffclip_suggestions_006.gpkg"
        lock.unlock()
    finally:
        other.kill()
        other.wait()
    path, lock = reserve_suggestion_path(str(tmp_path))   # the killed session's reservation is stale
    assert os.path.basename(path) == "diffclip_suggestions_005.gpkg"
    lock.unlock()
    assert os.listdir(tmp_path) == ["diffclip_suggestions_004.gpkg"]
