"""The first-run experience (issue 15): the layout at 1366 x 768, the demo, asking before replacing classes,
phase reporting, the default output folder, the sample path after the first save and the sample markers."""
import json
import os

from qgis.core import QgsMultiBandColorRenderer, QgsProject
from qgis.PyQt.QtCore import QPoint, QRect, Qt

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


def desktop_look(dock, iface):
    """The dock as QGIS shows it on a laptop: its 9 pt font (tests have 12 pt) and the width it opens at."""
    from qgis.PyQt.QtGui import QFont

    from diffclip_qgis.gui.dock import FIRST_WIDTH_SHARE

    iface.window.resize(*LAPTOP)
    dock.setFont(QFont("Sans Serif", 9))
    iface.window.resizeDocks([dock], [round(FIRST_WIDTH_SHARE * LAPTOP[0])], Qt.Orientation.Horizontal)


def test_what_run_still_needs_shows_under_it_on_a_laptop_screen(dock, iface):
    """Not only in Run's tooltip: a first-time user sees the next step without scrolling or hovering."""
    desktop_look(dock, iface)
    process_events(0.2)
    assert not dock.run_button.isEnabled() and on_screen(dock.next_step, iface.window)
    assert dock.next_step.text() == dock.run_button.toolTip() == dock.missing()
    assert dock.next_step.text().startswith("Add the rasters to classify")
    assert dock.load_demo()
    process_events(0.2)
    assert dock.run_button.isEnabled() and not dock.next_step.isVisible()


def test_laptop_screen_shows_run_progress_all_classes_and_readable_prompts(dock, iface):
    desktop_look(dock, iface)
    assert dock.load_demo()
    assert dock.settings_group.isCollapsed()  # collapsed by default
    process_events(0.3)
    assert on_screen(dock.undo_button, iface.window)   # labelling in view with a dozen classes, no scrolling
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


def browse_buttons(dock):
    """The "..." buttons of the Pretrained model and Output folder fields."""
    from qgis.PyQt.QtWidgets import QToolButton

    return [b for field in (dock.settings.pretrained, dock.settings.output)
            for b in field.findChildren(QToolButton) if b.text() == "\u2026"]


def test_expanded_settings_fit_the_dock_without_scrolling_sideways(dock, iface):
    iface.window.resize(*LAPTOP)
    dock.settings_group.setCollapsed(False)
    process_events(0.2)
    viewport = dock.scroll.viewport()
    for width in (dock.width(), 0):   # the default width, then the narrowest the dock allows
        iface.window.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
        process_events(0.2)
        assert dock.scroll.horizontalScrollBar().maximum() == 0, dock.width()
        assert len(browse_buttons(dock)) == 2
        for button in browse_buttons(dock):
            assert 0 < button.mapTo(viewport, QPoint(button.width(), 0)).x() <= viewport.width(), dock.width()


def test_prompts_keep_both_ends_and_are_shown_whole_as_tooltips(dock):
    """Template prompts share their start ('a multimodal fusion patch of ...'): a cut in the middle keeps the
    words that tell them apart."""
    assert dock.load_demo()
    model = dock.classes.model
    assert dock.classes.view.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert [model.index(row, PROMPT).data(Qt.ItemDataRole.ToolTipRole) for row in range(model.rowCount())] == \
        [c.prompt for c in model.classes()]


def opened_dock(iface):
    from diffclip_qgis.gui.dock import DiffClipDock

    widget = DiffClipDock(iface)
    iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, widget)
    process_events(0.2)
    return widget


def close_dock(iface, widget):
    widget.shutdown()
    iface.removeDockWidget(widget)
    widget.deleteLater()
    process_events()


def test_the_dock_opens_wider_the_first_time_when_the_window_has_room(iface, monkeypatch):
    iface.window.resize(1920, 1000)
    process_events()
    first = opened_dock(iface)
    assert first.width() == round(0.3 * 1920)
    close_dock(iface, first)
    resized = []
    monkeypatch.setattr(iface.window, "resizeDocks", lambda *args: resized.append(args))
    close_dock(iface, opened_dock(iface))
    assert resized == []   # only once: after that QGIS keeps the width the user left it at


def test_undo_after_load_demo_keeps_the_demo_samples(dock):
    assert dock.load_demo()
    assert not dock.undo_button.isEnabled()
    dock.undo_button.click()
    assert sum(dock.store.counts().values()) == 96


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
