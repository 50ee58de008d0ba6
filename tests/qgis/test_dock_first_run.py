"""The first-run experience (issue 15): the layout at 1366 x 768, the demo, asking before replacing classes,
phase reporting, the default output folder, the sample path after the first save and the sample markers."""
import json
import os

from qgis.core import QgsMultiBandColorRenderer, QgsProject
from qgis.PyQt.QtCore import QPoint, QRect

from test_dock_support import (add_rasters, dock, iface, label_scene, process_events, scene,  # noqa: F401
                               truth_grid)

from diffclip_qgis.gui import class_table
from diffclip_qgis.gui.class_table import PROMPT
from diffclip_qgis.gui.true_colour import wavelengths

#: QGIS's menus, toolbars and status bar leave the dock 577 px of a 768 px laptop screen.
LAPTOP = (1366, 768 - 190)


def on_screen(widget, window):
    """The widget is shown whole inside the window, without scrolling."""
    top_left = widget.mapTo(window, QPoint(0, 0))
    return (widget.isVisible() and not widget.visibleRegion().isEmpty()
            and window.rect().contains(QRect(top_left, widget.size())))


def test_laptop_screen_shows_run_progress_all_classes_and_readable_prompts(dock, iface):
    iface.window.resize(*LAPTOP)
    assert dock.load_demo()
    assert dock.settings_group.isCollapsed()  # collapsed by default
    long_prompt = "tall tree canopy of live oak, several metres above ground, " * 3
    dock.classes.select_class(1)
    dock.classes.prompt_edit.setPlainText(long_prompt[:170])
    dock._set_running(True)
    process_events(0.3)
    for widget in (dock.run_button, dock.cancel_button, dock.progress, dock.phase_label):
        assert on_screen(widget, iface.window), widget
    view = dock.classes.view
    assert view.model().rowCount() == 12 and view.verticalScrollBar().maximum() == 0  # every row, no scrolling
    assert view.columnWidth(PROMPT) >= 0.4 * view.viewport().width()  # the prompt gets the spare width
    assert dock.classes.prompt_edit.verticalScrollBar().maximum() == 0  # a 170-character prompt fits
    dock._set_running(False)

    dock.settings_group.setCollapsed(False)  # the user's choice is remembered
    from diffclip_qgis.gui.dock import DiffClipDock

    other = DiffClipDock(iface)
    try:
        assert not other.settings_group.isCollapsed()
    finally:
        other.shutdown()
        other.deleteLater()


def test_load_demo_adds_rasters_in_true_colour_classes_samples_and_zooms(dock, iface):
    assert dock.load_demo()
    layers = {l.name(): l for l in QgsProject.instance().mapLayers().values()}
    hsi = layers["demo_hsi"]
    assert [dock.project.mapLayer(i).name() for i in dock.inputs.checked_ids()] == ["demo_hsi", "demo_lidar"]
    renderer = hsi.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    wavelength = wavelengths(hsi.source())
    nm = [wavelength[b - 1] for b in (renderer.redBand(), renderer.greenBand(), renderer.blueBand())]
    assert [abs(w - t) < 15 for w, t in zip(nm, (640, 550, 460))] == [True] * 3
    assert len(dock.classes.model.classes()) == 12
    assert sum(dock.store.counts().values()) == 96
    assert iface.canvas.extent().contains(hsi.extent()) or iface.canvas.extent().intersects(hsi.extent())
    assert dock.run_button.isEnabled()
    assert dock.load_demo() and sum(dock.store.counts().values()) == 96  # again: no duplicates
    assert len([l for l in layers.values() if l.name() == "demo_hsi"]) == 1


def test_loading_a_class_list_asks_and_lists_orphaned_samples(dock, iface, scene, tmp_path, monkeypatch):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    source = tmp_path / "other.json"
    source.write_text(json.dumps({"classes": [{"id": 1, "name": "field"}, {"id": 9, "name": "water"}]}),
                      encoding="utf-8")
    asked = []

    def answer(mode):
        def ask(parent, text):
            asked.append(text)
            return mode
        return ask

    monkeypatch.setattr(class_table, "ask_load_mode", answer(None))
    assert not dock.classes.load_file(str(source))
    assert [c.name for c in dock.classes.model.classes()] == ["field", "roof", "tree"]
    assert "roof (1 samples)" in asked[0] and "tree (1 samples)" in asked[0] and "field (" not in asked[0]
    monkeypatch.setattr(class_table, "ask_load_mode", answer(class_table.MERGE))
    assert dock.classes.load_file(str(source))
    assert [c.name for c in dock.classes.model.classes()] == ["field", "roof", "tree", "water"]
    monkeypatch.setattr(class_table, "ask_load_mode", answer(class_table.REPLACE))
    assert dock.classes.load_file(str(source))
    assert [c.name for c in dock.classes.model.classes()] == ["field", "water"]


def test_each_phase_is_reported_when_it_starts(dock, iface, scene):
    from diffclip_qgis.gui.task import ClassifyTask

    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=6)   # more than few labels: the window is cross-validated
    dock.settings.set_values({"preset": "cpu", "pretrain_epochs": 2, "window": "auto"})
    request, outputs = dock._request()
    task = ClassifyTask(request, outputs)
    seen = []
    task.phaseChanged.connect(lambda phase, fraction, message: seen.append((phase, fraction)))
    for phase in ("reading", "pretraining", "choosing window", "fine-tuning", "classifying"):
        task._report(phase, 1.0)
    assert seen == [("reading", 1.0), ("pretraining", 0.0), ("pretraining", 1.0), ("choosing window", 0.0),
                    ("choosing window", 1.0), ("fine-tuning", 0.0), ("fine-tuning", 1.0), ("classifying", 0.0),
                    ("classifying", 1.0)]
    dock._phase("pretraining", 0.0, "")
    assert dock.phase_label.text().startswith("pretraining")


def test_output_placeholder_and_sample_path_follow_the_first_save(dock, iface, scene, tmp_path):
    home = os.path.expanduser("~")
    assert dock.settings.output.lineEdit().placeholderText() == os.path.join(home, "diffclip_output")
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    project_file = str(tmp_path / "project" / "site.qgz")
    os.makedirs(os.path.dirname(project_file))
    assert QgsProject.instance().write(project_file)
    process_events(0.3)
    folder = os.path.dirname(project_file)
    assert dock.settings.output.lineEdit().placeholderText() == os.path.join(folder, "diffclip_output")
    assert os.path.join(folder, "site_diffclip_samples.gpkg") in dock.samples_label.text()


def test_sample_markers_are_large_with_a_contrasting_ring(dock, iface, scene):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    categories = dock.store.layer().renderer().categories()  # keeps the symbols alive
    symbol = categories[0].symbol()
    assert symbol.size() >= 4 and symbol.symbolLayerCount() == 2
    assert symbol.symbolLayer(0).strokeColor().name() == "#ffffff"
    assert symbol.symbolLayer(1).strokeColor().name() == "#000000"
