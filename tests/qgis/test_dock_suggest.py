"""Suggested samples from the dock: enabled by a run's model, markers on the map, labelled or skipped from a menu."""
import os

from qgis.core import QgsProject

from test_dock_run import configure, wait_for_run
from test_dock_support import (add_rasters, click, dock, iface, label_scene, process_events, scene,  # noqa: F401
                               truth_grid)

QUICK = {"pretrain_epochs": 0, "finetune_epochs": 5, "window": "3"}


def markers(dock):
    """(fid, x, y, best class id, second class id) of every suggestion marker."""
    layer = dock.suggestions.layer()
    return [] if layer is None else [(f.id(), f.geometry().asPoint().x(), f.geometry().asPoint().y(),
                                      f["best_class"], f["second_class"]) for f in layer.getFeatures()]


def samples(dock):
    """(x, y, class id) of every sample."""
    return [(f.geometry().asPoint().x(), f.geometry().asPoint().y(), f["class_id"])
            for f in dock.store.layer().getFeatures()]


def open_menu(dock, iface, marker):
    """Click a marker with the labelling tool; the menu's entries (without separators) and actions by text."""
    previous = dock.tool.menu
    click(iface.canvas, marker[1], marker[2])
    menu = dock.tool.menu
    assert menu is not None and menu is not previous and menu.isVisible()
    actions = [a for a in menu.actions() if not a.isSeparator()]
    return [a.text() for a in actions], {a.text(): a for a in actions}


def test_suggest_is_disabled_until_a_run_has_a_model_for_the_ticked_inputs(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    button = dock.suggest_panel.button
    assert dock.run_button.isEnabled()
    assert not button.isEnabled() and "Run a classification first" in button.toolTip()
    assert not dock.suggest()
    assert "Run a classification first" in iface.messages()[0]
    assert dock.suggest_panel.per_class.value() == 2


def test_after_a_run_with_few_samples_the_message_bar_offers_suggest_samples(dock, iface, scene, tmp_path):
    from qgis.PyQt.QtWidgets import QPushButton

    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    configure(dock, str(tmp_path / "out"), **QUICK)
    assert dock.run()
    wait_for_run(dock)
    item = iface.bar.items()[0]
    assert "Few samples per class" in item.text()
    buttons = [b for b in item.findChildren(QPushButton) if b.text() == "Suggest samples"]
    assert len(buttons) == 1 and buttons[0].isVisible()

    buttons[0].click()
    assert item not in iface.bar.items()  # the entry closes, the suggestions start
    assert dock.task is not None and not dock.run_button.isEnabled()
    wait_for_run(dock)
    assert len(markers(dock)) == 2 * 3
    assert "suggested samples on the map" in iface.messages()[0]


def test_suggestions_are_marked_labelled_and_skipped(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=3)
    configure(dock, str(tmp_path / "out"), **QUICK)
    assert dock.run()
    wait_for_run(dock)
    button = dock.suggest_panel.button
    assert button.isEnabled(), button.toolTip()

    # Another set of inputs than the model's: disabled, and the tooltip says why.
    optical = next(l.id() for l in QgsProject.instance().mapLayers().values() if l.name() == "optical")
    dock.inputs.set_checked([optical])
    assert not button.isEnabled() and "not those of the last run" in button.toolTip()
    lidar = next(l.id() for l in QgsProject.instance().mapLayers().values() if l.name() == "lidar")
    dock.inputs.set_checked([optical, lidar])
    assert button.isEnabled()

    dock.tool_action.setChecked(False)
    before = samples(dock)
    assert dock.suggest()
    assert not button.isEnabled() and not dock.run_button.isEnabled() and dock.cancel_button.isEnabled()
    wait_for_run(dock)
    assert dock.phase_label.text() == "Done."

    found = markers(dock)
    assert len(found) == 2 * 3  # 2 per class
    for _, x, y, best, second in found:  # not on (or next to) a labelled pixel, two different guesses
        assert min((x - sx) ** 2 + (y - sy) ** 2 for sx, sy, _ in before) > 1.5 ** 2
        assert best in (1, 2, 3) and second in (1, 2, 3) and best != second
    layer = dock.suggestions.layer()
    assert layer is not dock.store.layer() and layer.labelsEnabled()
    assert layer.renderer().symbol().symbolLayer(0).properties()["name"] == "diamond"
    root = QgsProject.instance().layerTreeRoot()
    assert root.findLayers()[0].layer() is layer and root.findLayer(layer.id()).isVisible()
    assert os.path.dirname(layer.source().split("|")[0]) == str(tmp_path / "out")
    assert iface.canvas.mapTool() is dock.tool  # labelling is on: the markers can be clicked
    assert "6 suggested samples" in iface.messages()[0]
    assert "6 suggested samples left" in dock.suggest_panel.label.text()

    # Accepting the best guess, then the second guess: a sample of that class at the marker, which goes.
    names = {1: "field", 2: "roof", 3: "tree"}
    for pick in (3, 4):  # index into the marker tuple: best, then second
        marker = markers(dock)[0]
        entries, actions = open_menu(dock, iface, marker)
        guesses = [names[marker[3]], names[marker[4]]]
        assert entries[:2] == guesses and entries[-1] == "Skip"
        assert sorted(entries[2:-1]) == sorted(set(names.values()) - set(guesses))
        actions[names[marker[pick]]].trigger()
        process_events()
        assert samples(dock)[len(before):] == [(marker[1], marker[2], marker[pick])]
        before = samples(dock)
        assert marker[0] not in [m[0] for m in markers(dock)]

    # Skipping removes the marker and adds no sample; after the last, the dock says to run again.
    while markers(dock):
        marker = markers(dock)[0]
        _, actions = open_menu(dock, iface, marker)
        actions["Skip"].trigger()
        process_events()
        assert marker[0] not in [m[0] for m in markers(dock)]
        assert samples(dock) == before
    assert dock.suggestions.layer() is None
    assert not [f for f in os.listdir(tmp_path / "out") if f.startswith("diffclip_suggestions")]  # the file went too
    assert "Run again" in dock.suggest_panel.label.text() and dock.suggest_panel.label.isVisible()
    assert "Run again" in iface.messages()[0]

    # A click where no marker is labels the pixel as before.
    click(iface.canvas, marker[1], marker[2])
    assert len(samples(dock)) == len(before) + 1

    # Fewer per class, from the same model: new markers in a new file, away from the samples added since.
    dock.suggest_panel.per_class.setValue(1)
    before = samples(dock)
    assert dock.suggest()
    wait_for_run(dock)
    again = markers(dock)
    assert len(again) == 3
    for _, x, y, _, _ in again:
        assert min((x - sx) ** 2 + (y - sy) ** 2 for sx, sy, _ in before) > 1.5 ** 2
    assert dock.suggestions.layer().source().split("|")[0].endswith("diffclip_suggestions_001.gpkg")

    # Cancelled: the markers there stay, no file is written.
    assert dock.suggest()
    dock.cancel()
    wait_for_run(dock)
    assert dock.phase_label.text() == "Cancelled." and "Suggesting samples cancelled." in iface.messages()
    assert markers(dock) == again
    assert not os.path.exists(str(tmp_path / "out" / "diffclip_suggestions_002.gpkg"))

    # New suggestions replace the markers left, and their file.
    assert dock.suggest()
    wait_for_run(dock)
    assert len(markers(dock)) == 3
    assert sorted(f for f in os.listdir(tmp_path / "out") if f.startswith("diffclip_suggestions")) == \
        ["diffclip_suggestions_002.gpkg"]
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".lock")]   # the reservations are given back

    # The run's model is remembered in the project; a deleted model file disables the button.
    dock.load_from_project()
    assert button.isEnabled()
    os.remove(dock.suggest_panel.model["path"])
    assert not dock.suggest() and "model is gone" in iface.messages()[0]


def label_from_menu(dock, iface, marker, choice):
    """Pick ``choice`` (a class name, or "Skip") in the marker's menu."""
    _, actions = open_menu(dock, iface, marker)
    actions[choice].trigger()
    process_events()


def test_undoing_a_label_given_from_a_marker_brings_the_marker_back(dock, iface, scene, tmp_path):
    names = {1: "field", 2: "roof", 3: "tree"}
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=3)
    configure(dock, str(tmp_path / "out"), **QUICK)
    assert dock.run()
    wait_for_run(dock)
    dock.suggest_panel.per_class.setValue(1)
    assert dock.suggest()
    wait_for_run(dock)
    found, before = markers(dock), samples(dock)
    assert len(found) == 3

    # Labelled, then undone: the sample goes and the marker is back, with its guesses.
    label_from_menu(dock, iface, found[0], names[found[0][3]])
    assert len(samples(dock)) == len(before) + 1 and len(markers(dock)) == 2
    dock.undo_button.click()
    process_events()
    assert samples(dock) == before
    assert sorted(m[1:] for m in markers(dock)) == sorted(m[1:] for m in found)
    assert "3 suggested samples left" in dock.suggest_panel.label.text()

    # Two labelled, both undone: both markers are back (new ids: the file may reuse the old ones).
    for marker in markers(dock)[:2]:
        label_from_menu(dock, iface, marker, names[marker[3]])
    dock.undo_button.click()
    dock.undo_button.click()
    process_events()
    assert samples(dock) == before
    assert sorted(m[1:] for m in markers(dock)) == sorted(m[1:] for m in found)

    # All labelled: the last takes the layer and its file; undoing brings both back, then the others.
    path = dock.suggestions.layer().source().split("|")[0]
    labelled = []
    while markers(dock):
        labelled.append(markers(dock)[0])
        label_from_menu(dock, iface, labelled[-1], names[labelled[-1][4]])
    assert dock.suggestions.layer() is None and not os.path.exists(path)
    assert samples(dock)[len(before):] == [(m[1], m[2], m[4]) for m in labelled]
    dock.tool.undo()
    process_events()
    assert [m[1:] for m in markers(dock)] == [labelled[-1][1:]] and os.path.exists(path)
    assert "1 suggested samples left" in dock.suggest_panel.label.text()
    dock.tool.undo()
    dock.tool.undo()
    process_events()
    assert samples(dock) == before
    assert sorted(m[1:] for m in markers(dock)) == sorted(m[1:] for m in found)
    last = markers(dock)[0]

    # After new suggestions replace the markers, undoing an older label leaves the new markers alone.
    label_from_menu(dock, iface, last, names[last[3]])
    assert dock.suggest()
    wait_for_run(dock)
    fresh = markers(dock)
    dock.undo_button.click()
    process_events()
    assert samples(dock) == before and markers(dock) == fresh

    # While new suggestions are being made, undo takes the sample back but not the marker.
    label_from_menu(dock, iface, fresh[0], names[fresh[0][3]])
    assert dock.suggest()
    dock.undo_button.click()
    dock.cancel()
    wait_for_run(dock)
    assert dock.phase_label.text() == "Cancelled."
    assert samples(dock) == before and markers(dock) == fresh[1:]
    # A run cancelled (or failed) replaces nothing: undo brings the markers back again.
    label_from_menu(dock, iface, fresh[1], names[fresh[1][3]])
    assert dock.suggest()
    dock.cancel()
    wait_for_run(dock)
    assert markers(dock) == fresh[2:]
    dock.undo_button.click()
    process_events()
    assert samples(dock) == before and sorted(m[1:] for m in markers(dock)) == sorted(m[1:] for m in fresh[1:])


def test_new_suggestions_keep_the_old_file_where_a_user_filled_in_a_field_of_their_own(qgis_app, tmp_path):
    """The markers' file goes when new suggestions replace them, unless it holds a user's work."""
    import numpy as np
    from osgeo import ogr

    from diffclip_qgis.core.files import PendingOutputs
    from diffclip_qgis.gis.points import SUGGESTION_FIELDS, SUGGESTIONS_LAYER, write_points
    from diffclip_qgis.gui.suggestions import SuggestionMarkers

    paths = [str(tmp_path / f"diffclip_suggestions_00{i}.gpkg") for i in (1, 2, 3)]
    for path in paths:
        with PendingOutputs() as outputs:
            write_points(path, SUGGESTIONS_LAYER, np.arange(3), np.arange(3), (0, 1, 0, 0, 0, -1), "", outputs,
                         SUGGESTION_FIELDS, [[1, 2, 3], [1, 1, 2], [2, 2, 1], [0.1, 0.2, 0.3], ["a"] * 3, ["b"] * 3])
    shown = SuggestionMarkers(QgsProject.instance())
    try:
        assert shown.show(paths[0]) == 3
        vector = ogr.Open(paths[0], 1)   # the analyst's own notes on the suggestions
        layer = vector.GetLayer(0)
        layer.CreateField(ogr.FieldDefn("my_label", ogr.OFTString))
        feature = layer.GetNextFeature()
        feature.SetField("my_label", "checked in the field")
        layer.SetFeature(feature)
        vector = layer = feature = None
        assert shown.show(paths[1]) == 3
        assert os.path.exists(paths[0])   # kept: it holds their work
        assert shown.show(paths[2]) == 3
        assert not os.path.exists(paths[1])   # only suggestions in it
    finally:
        shown.clear()


def test_the_markers_question_mark_uses_an_installed_font(qgis_app):
    """QGIS's default font marker font (Dingbats) is missing on many systems: a warning at each project load."""
    from qgis.PyQt.QtGui import QFontDatabase

    from diffclip_qgis.gui.suggestions import suggestion_symbol

    assert suggestion_symbol().symbolLayer(1).fontFamily() in QFontDatabase().families()
