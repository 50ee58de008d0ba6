"""The dock without training: classes and prompts, class-list JSON, inputs, and labelling by map clicks."""
import json
import os
import time

import numpy as np
import pytest

from qgis.core import QgsCategorizedSymbolRenderer, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QMessageBox

from test_dock_support import (X0, Y0, add_rasters, click, dock, held_by_a_crashed_session,  # noqa: F401
                               held_by_another_session, iface, label_scene, pixel_centre, process_events, scene,
                               truth_grid, write_raster)

from diffclip_qgis.core.classes import DEFAULT_PROMPT_TEMPLATE, load_class_list
from diffclip_qgis.gui.profile_samples import in_use
from diffclip_qgis.gui.class_table import COLOUR, NAME, PROMPT


def sample_layer(dock):
    layer = dock.store.layer()
    assert layer is not None
    return layer


def samples(dock):
    """(row, col, class_id, class_name) of every sample, sorted."""
    out = []
    for f in sample_layer(dock).getFeatures():
        p = f.geometry().asPoint()
        out.append((int(Y0 - p.y()), int(p.x() - X0), f["class_id"], f["class_name"]))
    return sorted(out)


def test_classes_are_added_renamed_recoloured_and_prompted(dock):
    model = dock.classes.model
    dock.classes.add_class("water")
    dock.classes.add_class()
    assert [(c.id, c.name) for c in model.classes()] == [(1, "water"), (2, "class 2")]
    assert model.classes()[0].prompt == DEFAULT_PROMPT_TEMPLATE.format(name="water")
    assert model.classes()[0].colour != model.classes()[1].colour

    assert model.setData(model.index(1, NAME), "forest")
    assert model.classes()[1].prompt == "a multimodal fusion patch of a forest."  # template prompt follows the name
    assert not model.setData(model.index(1, NAME), "water")  # names stay unique

    dock.classes.select_class(2)
    dock.classes.prompt_edit.setPlainText("tall trees, several metres above ground.")
    assert model.classes()[1].prompt == "tall trees, several metres above ground."
    dock.classes.apply_template()
    assert model.classes()[1].prompt == "a multimodal fusion patch of a forest."
    assert "trained from scratch" in dock.classes.prompt_edit.toolTip()

    assert model.setData(model.index(0, COLOUR), "#123456")
    assert model.data(model.index(0, COLOUR), Qt.DecorationRole).name() == "#123456"
    assert model.setData(model.index(0, PROMPT), "open water")

    saved = json.loads(QgsProject.instance().readEntry("DiffCLIP", "classes", "")[0])
    assert saved[0] == {"id": 1, "name": "water", "colour": "#123456", "prompt": "open water"}

    dock.classes.select_class(1)
    dock.classes.remove_selected()
    assert [c.name for c in model.classes()] == ["forest"]


def test_a_rename_to_a_name_already_taken_is_undone_and_says_why(dock, iface):
    model = dock.classes.model
    dock.classes.add_class("grass")
    dock.classes.add_class("water")
    assert not model.setData(model.index(1, NAME), " grass ")
    assert [c.name for c in model.classes()] == ["grass", "water"]
    assert iface.messages()[0] == "Another class is already called 'grass': class names must differ."


def test_label_samples_is_enabled_once_there_is_a_raster_to_label(dock, iface, scene):
    assert not dock.tool_action.isEnabled() and "Load demo" in dock.tool_action.toolTip()
    add_rasters(iface, scene["paths"])
    assert dock.tool_action.isEnabled() and "Left click" in dock.tool_action.toolTip()
    dock.tool_action.trigger()
    assert iface.canvas.mapTool() is dock.tool
    dock.inputs.set_checked([])
    assert not dock.tool_action.isEnabled() and dock.tool_action.toolTip() == "Tick at least one input raster."
    assert iface.canvas.mapTool() is not dock.tool   # labelling stops: no pixel grid left to label


def test_class_list_json_round_trip(dock, tmp_path):
    source = tmp_path / "classes.json"
    source.write_text(json.dumps({"classes": [
        {"id": 3, "name": "road", "colour": "#404040", "prompt": "an asphalt road"},
        {"id": 7, "name": "tree", "prompt": ""}]}), encoding="utf-8")
    assert dock.classes.load_file(str(source))
    classes = dock.classes.model.classes()
    assert [(c.id, c.name) for c in classes] == [(3, "road"), (7, "tree")]
    assert classes[1].prompt == "a multimodal fusion patch of a tree." and classes[1].colour

    target = tmp_path / "saved.json"
    assert dock.classes.save_file(str(target))
    assert load_class_list(str(target)) == classes
    assert json.loads(target.read_text(encoding="utf-8"))["format"] == "diffclip-classes"

    assert not dock.classes.load_file(str(tmp_path / "missing.json"))
    assert "not found" in dock.iface.messages()[0]


def test_inputs_show_band_count_crs_resolution_and_warn_about_grids(dock, iface, scene, tmp_path):
    import numpy as np

    coarse = str(tmp_path / "coarse.tif")
    write_raster(coarse, np.zeros((1, 24, 24)))
    from osgeo import gdal

    ds = gdal.Open(coarse, gdal.GA_Update)
    ds.SetGeoTransform((X0, 2.0, 0.0, Y0, 0.0, -2.0))
    ds = None
    add_rasters(iface, list(scene["paths"]) + [coarse])
    items = [dock.inputs.list.item(i) for i in range(dock.inputs.list.count())]
    assert "optical (4 bands · 1 m)" in [item.text() for item in items]  # short: details in the tooltip
    assert any("optical" in t and "4 bands" in t and "EPSG:32616" in t and "1 x 1 m" in t and "24 x 24 px" in t
               for t in (item.toolTip() for item in items))
    assert set(dock.inputs.checked_ids()) == {l.id() for l in QgsProject.instance().mapLayers().values()}
    ids = {l.name(): l.id() for l in QgsProject.instance().mapLayers().values()}
    dock.inputs.set_checked([ids["optical"], ids["lidar"]])
    assert dock.inputs.warning.isHidden()
    dock.inputs.set_checked([ids["optical"], ids["coarse"]])
    assert not dock.inputs.warning.isHidden() and "coarse" in dock.inputs.warning.text()
    assert dock.tool.grid_layer().name() == "optical"
    assert QgsProject.instance().readListEntry("DiffCLIP", "inputs", [])[0] == [ids["optical"], ids["coarse"]]


def test_a_raster_without_crs_beside_one_with_a_crs_disables_run_saying_why(dock, iface, scene, tmp_path):
    """The list said "resampled onto it" and Run was enabled, but such rasters cannot be aligned: the run failed."""
    from osgeo import gdal

    plain = str(tmp_path / "plain.tif")
    ds = gdal.GetDriverByName("GTiff").Create(plain, 24, 24, 1, gdal.GDT_Float32)   # no CRS, no georeferencing
    ds = None
    add_rasters(iface, list(scene["paths"]) + [plain])
    ids = {l.name(): l.id() for l in QgsProject.instance().mapLayers().values()}
    dock.inputs.set_checked([ids["optical"], ids["plain"]])
    assert dock.missing() == ("plain has no CRS but optical has one, so they cannot be aligned: set the CRS of plain "
                              "(Layer Properties > Source), or untick one of them.")
    assert not dock.run_button.isEnabled() and dock.inputs.warning.isHidden()   # no "resampled onto it"


def test_map_clicks_add_remove_and_undo_samples(dock, iface, scene):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    layer = sample_layer(dock)
    assert layer.featureCount() == 6
    assert [f.name() for f in layer.fields()][-2:] == ["class_id", "class_name"]
    assert {s[2:] for s in samples(dock)} == {(1, "field"), (2, "roof"), (3, "tree")}
    assert [dock.classes.model.count(i) for i in (1, 2, 3)] == [2, 2, 2]
    assert layer.source().endswith("|layername=diffclip_samples") and ".gpkg" in layer.source()

    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "class_id"
    colours = {c.id: c.colour for c in dock.classes.model.classes()}
    assert {int(c.value()): c.symbol().color().name() for c in renderer.categories()} == colours

    # A left click lands on the pixel centre; clicking a labelled pixel relabels it.
    dock.classes.select_class(1)
    click(iface.canvas, X0 + 20.9, Y0 - 3.2)
    assert (3, 20, 1, "field") in samples(dock)
    dock.classes.select_class(2)
    click(iface.canvas, X0 + 20.1, Y0 - 3.8)
    assert (3, 20, 2, "roof") in samples(dock) and (3, 20, 1, "field") not in samples(dock)
    p = next(f.geometry().asPoint() for f in layer.getFeatures() if f["class_id"] == 2
             and int(f.geometry().asPoint().x() - X0) == 20)
    assert (p.x(), p.y()) == pixel_centre(3, 20)

    # Right click removes the nearest sample; Ctrl+Z on the canvas and the Undo button restore.
    before = samples(dock)
    click(iface.canvas, X0 + 20.6, Y0 - 3.4, Qt.RightButton)
    assert len(samples(dock)) == len(before) - 1
    iface.canvas.setFocus()
    QTest.keyClick(iface.canvas, Qt.Key_Z, Qt.ControlModifier)
    process_events()
    assert samples(dock) == before
    dock.undo_button.click()  # undoes the relabelling: the field sample is back
    assert (3, 20, 1, "field") in samples(dock)
    assert dock.classes.model.count(1) == 3

    # Renaming a class renames its samples; removing it (confirmed) deletes them.
    dock.classes.model.setData(dock.classes.model.index(0, NAME), "meadow")
    assert {s[3] for s in samples(dock) if s[2] == 1} == {"meadow"}
    dock.classes.select_class(1)
    QMessageBox.question, original = (lambda *a, **k: QMessageBox.Yes), QMessageBox.question
    try:
        dock.classes.remove_selected()
    finally:
        QMessageBox.question = original
    assert {s[2] for s in samples(dock)} == {2, 3}

    # Clicks outside the raster do nothing but say why.
    dock.classes.select_class(2)
    count = layer.featureCount()
    click(iface.canvas, X0 - 5, Y0 + 5)
    assert layer.featureCount() == count


def test_a_click_where_an_input_holds_no_data_adds_no_sample_and_says_which_input(dock, iface, scene):
    from osgeo import gdal

    ds = gdal.Open(scene["paths"][1], gdal.GA_Update)   # lidar: nodata in both bands at (2, 3), in one at (2, 5)
    for b in (1, 2):
        band = ds.GetRasterBand(b)
        values = band.ReadAsArray()
        values[2, 3] = np.nan
        if b == 1:
            values[2, 5] = np.nan
        band.WriteArray(values)
    ds = None
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    dock.classes.select_class(1)
    before = samples(dock)
    click(iface.canvas, *pixel_centre(2, 3))
    assert samples(dock) == before
    assert "lidar holds no data at this pixel" in iface.messages()[0]
    assert dock.classes.model.count(1) == 1
    click(iface.canvas, *pixel_centre(2, 5))            # one band empty: the run judges it (a band may be dropped)
    assert (2, 5, 1, "field") in samples(dock)


def test_tool_hover_outlines_the_pixel_in_the_class_colour(dock, iface, scene):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    dock.classes.select_class(2)
    from qgis.core import QgsPointXY

    device = iface.canvas.getCoordinateTransform().transform(QgsPointXY(*pixel_centre(5, 6)))
    from qgis.PyQt.QtCore import QPoint

    QTest.mouseMove(iface.canvas.viewport(), QPoint(round(device.x()), round(device.y())))
    process_events()
    band = dock.tool.band
    assert band is not None and band.isVisible()
    assert band.strokeColor().name() == dock.classes.model.classes()[1].colour
    box = band.asGeometry().boundingBox()
    assert (round(box.xMinimum() - X0), round(Y0 - box.yMaximum()), round(box.width())) == (6, 5, 1)


def test_a_new_projects_samples_are_kept_in_the_profile(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    path = sample_layer(dock).source().split("|")[0]
    assert os.path.dirname(path) == str(tmp_path / "profile_samples" / "unsaved")   # not the temp folder: kept
    assert f"3 samples in {path}" in dock.samples_label.text()
    assert in_use(path)   # no other QGIS offers it


def test_a_new_sample_file_is_locked_before_it_exists(dock, iface, scene, monkeypatch):
    """Another QGIS would otherwise take it, in the moment between, for an empty file left over and delete it."""
    from diffclip_qgis.gui.sample_layer import SampleStore

    create, locked = SampleStore._create, []

    def checked(store, path, crs):
        locked.append(in_use(path))
        create(store, path, crs)

    monkeypatch.setattr(SampleStore, "_create", checked)
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    assert locked == [True]


def test_samples_a_saved_project_names_are_never_offered_when_their_copy_failed(dock, iface, scene, tmp_path,
                                                                               monkeypatch):
    from qgis.core import QgsVectorFileWriter

    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    unsaved = sample_layer(dock).source().split("|")[0]
    monkeypatch.setattr(QgsVectorFileWriter, "writeAsVectorFormatV3",
                        lambda *a: (QgsVectorFileWriter.WriterError.ErrCreateDataSource, "disk full", "", ""))
    project_path = str(tmp_path / "survey.qgz")
    assert QgsProject.instance().write(project_path)   # the project names the unsaved file
    process_events(0.3)
    assert any("Could not copy the samples" in m for m in iface.messages())
    QgsProject.instance().clear()
    process_events()
    assert not [m for m in iface.messages() if "unsaved project" in m] and os.path.exists(unsaved)
    assert QgsProject.instance().read(project_path)
    process_events()
    assert sample_layer(dock).source().split("|")[0] == unsaved and in_use(unsaved)


def test_the_first_save_moves_the_samples_beside_the_project(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    unsaved = sample_layer(dock).source().split("|")[0]
    project_path = str(tmp_path / "survey.qgz")
    assert QgsProject.instance().write(project_path)
    process_events(0.3)   # copied, the project saved again pointing at the copy
    moved = str(tmp_path / "survey_diffclip_samples.gpkg")
    assert sample_layer(dock).source().split("|")[0] == moved and sample_layer(dock).featureCount() == 3
    assert os.path.exists(unsaved) and os.path.exists(unsaved + ".saved")   # kept, marked: never offered
    QgsProject.instance().clear()
    assert QgsProject.instance().read(project_path)
    process_events()
    assert sample_layer(dock).source().split("|")[0] == moved and sample_layer(dock).featureCount() == 3


def age(path, minutes):
    """Set a file's (and its write-ahead log's) last change ``minutes`` ago."""
    stamp = time.time() - 60 * minutes
    for part in (path, path + "-wal"):
        if os.path.exists(part):
            os.utime(part, (stamp, stamp))


def test_samples_saved_with_a_project_are_never_offered_as_unsaved_even_if_it_closed_at_once(dock, iface, scene,
                                                                                             tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    unsaved = sample_layer(dock).source().split("|")[0]
    project_path = str(tmp_path / "survey.qgz")
    assert QgsProject.instance().write(project_path)
    QgsProject.instance().clear()   # Project > New right after the save: no second save points at the copy
    process_events(0.3)
    QgsProject.instance().clear()   # a new project later: nothing offered, the saved project's samples intact
    process_events()
    assert not [m for m in iface.messages() if "unsaved project" in m]
    assert QgsProject.instance().read(project_path)
    process_events()
    assert sample_layer(dock).featureCount() == 3


def test_the_second_save_never_writes_a_project_opened_meanwhile(dock, iface, scene, tmp_path):
    other = str(tmp_path / "other.qgz")
    assert QgsProject.instance().write(other)
    QgsProject.instance().clear()
    process_events()
    age(other, 5)
    written = os.path.getmtime(other)
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    assert QgsProject.instance().write(str(tmp_path / "survey.qgz"))
    assert QgsProject.instance().read(other)   # opened right after the save, before the event loop runs
    process_events(0.3)
    assert os.path.getmtime(other) == written


def write_leftover(tmp_path, name, classes, minutes_ago):
    """A sample file an earlier session left in the profile's unsaved folder: one sample per (id, name), last
    changed ``minutes_ago``."""
    import time

    from qgis.core import QgsCoordinateReferenceSystem, QgsFeature, QgsGeometry, QgsPointXY

    from diffclip_qgis.gui.sample_layer import LAYER_NAME, sample_fields, write_point_file

    folder = tmp_path / "profile_samples" / "unsaved"
    folder.mkdir(parents=True, exist_ok=True)
    features = []
    for i, (class_id, class_name) in enumerate(classes):
        feature = QgsFeature(sample_fields())
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(*pixel_centre(i, i))))
        feature["class_id"], feature["class_name"] = class_id, class_name
        features.append(feature)
    path = str(folder / name)
    assert write_point_file(path, LAYER_NAME, sample_fields(), QgsCoordinateReferenceSystem("EPSG:32616"),
                            QgsProject.instance().transformContext(), features) == ""
    stamp = time.time() - 60 * minutes_ago
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def crashed(iface, tmp_path):
    """What earlier sessions left (requested before ``dock``, so the dock starts after them): samples of an
    unsaved project 20 minutes old, whose session crashed, an older file, and a newer one that another QGIS
    session still uses (idle for 15 minutes)."""
    files = {"newest": write_leftover(tmp_path, "samples_aaaa.gpkg", [(1, "water"), (2, "forest"), (2, "forest")], 20),
             "older": write_leftover(tmp_path, "samples_bbbb.gpkg", [(5, "sand")], 60 * 48),
             "in use": write_leftover(tmp_path, "samples_cccc.gpkg", [(1, "water")] * 5, 15)}
    held_by_a_crashed_session(files["newest"] + ".lock")
    session = held_by_another_session(files["in use"] + ".lock")
    yield files
    session.kill()
    session.wait()


def test_a_new_project_is_offered_the_samples_an_earlier_session_left(crashed, dock, iface):
    from qgis.PyQt.QtWidgets import QPushButton

    dock.classes.add_class("water")
    process_events()
    offers = [item for item in iface.bar.items() if "unsaved project" in item.text()]
    assert len(offers) == 1 and offers[0].duration() == 0   # one entry, until closed
    assert offers[0].text().startswith("3 samples of an unsaved project (")   # the newest not in use
    assert "Files of other unsaved projects in " in offers[0].text() and offers[0].text().endswith(": 1.")
    [add] = [b for b in offers[0].findChildren(QPushButton) if b.text() == "Add them"]
    add.click()
    assert offers[0] not in iface.bar.items()
    assert sample_layer(dock).source().split("|")[0] == crashed["newest"]
    assert [(c.id, c.name) for c in dock.classes.model.classes()] == [(1, "water"), (2, "forest")]
    assert dock.classes.model.classes()[1].prompt == DEFAULT_PROMPT_TEMPLATE.format(name="forest")
    assert [dock.classes.model.count(i) for i in (1, 2)] == [1, 2]
    assert QgsProject.instance().readEntry("DiffCLIP", "samples_file", "")[0] == crashed["newest"]
    saved = json.loads(QgsProject.instance().readEntry("DiffCLIP", "classes", "")[0])
    assert [c["name"] for c in saved] == ["water", "forest"]
    assert all(os.path.exists(path) for path in crashed.values())
    assert in_use(crashed["newest"])   # now this session's: another QGIS would not offer it


def test_samples_whose_classes_clash_with_the_table_are_not_added_until_the_clash_is_gone(crashed, dock, iface):
    from qgis.PyQt.QtWidgets import QPushButton

    def press_add():
        [offer] = [item for item in iface.bar.items() if "unsaved project" in item.text()]
        [add] = [b for b in offer.findChildren(QPushButton) if b.text() == "Add them"]
        add.click()

    dock.classes.add_class("field")   # id 1, where the left samples have 1 'water'
    process_events()
    press_add()
    assert dock.store.layer() is None
    assert any("clash with the class table (1 'field' here, 1 'water' there)" in m for m in iface.messages())
    assert dock.classes.model.rename(0, "water")
    press_add()   # offered again
    assert sample_layer(dock).source().split("|")[0] == crashed["newest"]
    assert [(c.id, c.name) for c in dock.classes.model.classes()] == [(1, "water"), (2, "forest")]


def test_an_earlier_sessions_samples_can_be_deleted_once_confirmed(crashed, dock, iface, monkeypatch):
    from qgis.PyQt.QtWidgets import QPushButton

    def press(text, answer):
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answer)
        [offer] = [item for item in iface.bar.items() if "unsaved project" in item.text()]
        [button] = [b for b in offer.findChildren(QPushButton) if b.text() == text]
        button.click()
        return [item.text() for item in iface.bar.items() if "unsaved project" in item.text()]

    process_events()
    assert press("Delete them", QMessageBox.StandardButton.No)[0].startswith("3 samples")   # kept, offered again
    assert os.path.exists(crashed["newest"])
    assert press("Delete them", QMessageBox.StandardButton.Yes)[0].startswith("1 samples")   # the next file
    assert not os.path.exists(crashed["newest"]) and os.path.exists(crashed["older"])


def test_samples_that_cannot_be_deleted_are_kept_and_the_user_is_told(crashed, dock, iface, monkeypatch):
    from qgis.PyQt.QtWidgets import QPushButton

    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    process_events()
    monkeypatch.setattr(os, "remove", refuse)   # e.g. open in another program on Windows
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    [offer] = [item for item in iface.bar.items() if "unsaved project" in item.text()]
    [button] = [b for b in offer.findChildren(QPushButton) if b.text() == "Delete them"]
    button.click()
    assert any(m.startswith(f"Could not delete {crashed['newest']}: Permission denied.") for m in iface.messages())
    assert os.path.exists(crashed["newest"])
    assert [item.text() for item in iface.bar.items() if "unsaved project" in item.text()][0].startswith("3 samples")


def test_samples_another_session_takes_while_offered_are_neither_deleted_nor_added(crashed, dock, iface,
                                                                                  monkeypatch):
    from qgis.PyQt.QtWidgets import QPushButton

    def press(text):
        [offer] = [item for item in iface.bar.items() if "unsaved project" in item.text()]
        [button] = [b for b in offer.findChildren(QPushButton) if b.text() == text]
        button.click()

    sessions = []

    def taken_meanwhile(*args, **kwargs):   # another QGIS adds them while the question is open
        sessions.append(held_by_another_session(crashed["newest"] + ".lock"))
        return QMessageBox.StandardButton.Yes

    process_events()
    monkeypatch.setattr(QMessageBox, "question", taken_meanwhile)
    try:
        press("Delete them")
        assert os.path.exists(crashed["newest"])
        assert any(m.startswith(f"Could not delete {crashed['newest']}: another QGIS session is using it.")
                   for m in iface.messages())
        offers = [item.text() for item in iface.bar.items() if "unsaved project" in item.text()]
        assert offers[0].startswith("1 samples")   # the next file
        sessions[0].kill()
        sessions[0].wait()
        sessions.append(held_by_another_session(crashed["older"] + ".lock"))
        press("Add them")   # taken after it was offered
        assert dock.store.layer() is None
        assert any(m.startswith(f"{crashed['older']} is no longer offered") for m in iface.messages())
    finally:
        for session in sessions:
            session.kill()
            session.wait()


def test_samples_a_project_saved_meanwhile_names_are_not_deleted(crashed, dock, iface, monkeypatch):
    from qgis.PyQt.QtWidgets import QPushButton

    def saved_meanwhile(*args, **kwargs):   # another QGIS saved the project they belong to
        open(crashed["newest"] + ".saved", "w").close()
        return QMessageBox.StandardButton.Yes

    process_events()
    monkeypatch.setattr(QMessageBox, "question", saved_meanwhile)
    [offer] = [item for item in iface.bar.items() if "unsaved project" in item.text()]
    [button] = [b for b in offer.findChildren(QPushButton) if b.text() == "Delete them"]
    button.click()
    assert os.path.exists(crashed["newest"])
    assert any(m.startswith(f"Could not delete {crashed['newest']}: a saved project uses it.") for m in iface.messages())


def test_the_offer_goes_when_the_project_is_saved(crashed, dock, iface, tmp_path):
    process_events()
    assert [item for item in iface.bar.items() if "unsaved project" in item.text()]
    assert QgsProject.instance().write(str(tmp_path / "survey.qgz"))
    assert not [item for item in iface.bar.items() if "unsaved project" in item.text()]


def test_the_offer_goes_when_the_project_gets_samples_of_its_own(crashed, dock, iface, scene):
    process_events()
    assert [m for m in iface.messages() if "unsaved project" in m]
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)   # its own layer: the leftover waits for the next one
    assert not [m for m in iface.messages() if "unsaved project" in m]
    assert os.path.exists(crashed["newest"])


@pytest.fixture
def empty_leftovers(iface, tmp_path):
    """Empty sample files: two that earlier sessions left, and one another QGIS session uses (requested before
    ``dock``)."""
    files = [write_leftover(tmp_path, "samples_dddd.gpkg", [], 60 * 48),
             write_leftover(tmp_path, "samples_eeee.gpkg", [], 20),
             write_leftover(tmp_path, "samples_ffff.gpkg", [], 60 * 48)]
    session = held_by_another_session(files[2] + ".lock")
    yield files
    session.kill()
    session.wait()


def test_empty_leftovers_are_deleted_but_not_one_in_use_and_none_is_offered(empty_leftovers, dock, iface):
    process_events()
    old, recent, in_use = empty_leftovers
    assert not os.path.exists(old) and not os.path.exists(recent)
    assert os.path.exists(in_use)
    assert not [m for m in iface.messages() if "unsaved project" in m]


def test_the_samples_of_a_project_closed_unsaved_are_offered_to_the_next_one_at_once(dock, iface, scene):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    unsaved = sample_layer(dock).source().split("|")[0]
    QgsProject.instance().clear()   # Project > New, changes discarded
    process_events()
    [offer] = [m for m in iface.messages() if "unsaved project" in m]
    assert offer.startswith("3 samples of an unsaved project (")
    assert os.path.exists(unsaved)


def test_samples_survive_saving_and_reopening_the_project(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    project_path = str(tmp_path / "survey.qgz")
    assert QgsProject.instance().write(project_path)
    process_events(0.3)  # the dock moves the samples next to the project and saves again
    moved = sample_layer(dock).source().split("|")[0]
    assert moved == str(tmp_path / "survey_diffclip_samples.gpkg")
    assert sample_layer(dock).featureCount() == 3

    QgsProject.instance().clear()
    process_events()
    assert dock.classes.model.rowCount() == 0
    assert QgsProject.instance().read(project_path)
    process_events()
    assert [c.name for c in dock.classes.model.classes()] == ["field", "roof", "tree"]
    assert sample_layer(dock).source().split("|")[0] == moved
    assert [dock.classes.model.count(i) for i in (1, 2, 3)] == [1, 1, 1]
    assert [l.name() for l in dock.inputs.checked_layers()] == ["optical", "lidar"]
    assert isinstance(dock.tool.grid_layer(), QgsRasterLayer)


@pytest.mark.parametrize("name, samples", [("q.qgz", "q_diffclip_samples.gpkg"),
                                           ("p.qgs", "p_diffclip_samples_2.gpkg")])   # same name, other format
def test_save_as_gives_the_new_project_its_own_samples(dock, iface, scene, tmp_path, monkeypatch, name, samples):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    first = str(tmp_path / "p.qgz")
    assert QgsProject.instance().write(first)
    process_events(0.3)
    original = sample_layer(dock).source().split("|")[0]
    assert original == str(tmp_path / "p_diffclip_samples.gpkg")
    assert QgsProject.instance().write(str(tmp_path / name))   # Save As, in the same folder
    process_events(0.3)
    assert sample_layer(dock).source().split("|")[0] == str(tmp_path / samples)
    dock.classes.view.selectRow(0)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dock.classes.remove_selected()   # in q: the class and its samples go
    assert sample_layer(dock).featureCount() == 2
    assert QgsProject.instance().read(first)
    process_events()
    assert [dock.classes.model.count(i) for i in (1, 2, 3)] == [1, 1, 1]   # p keeps its own
    assert sample_layer(dock).source().split("|")[0] == original


def test_another_projects_sample_file_of_the_same_name_is_never_used(dock, iface, scene, tmp_path):
    from diffclip_qgis.gui.sample_layer import LAYER_NAME, sample_fields, write_point_file
    from qgis.core import QgsCoordinateReferenceSystem

    old = str(tmp_path / "site_diffclip_samples.gpkg")   # left by an earlier project called site
    assert write_point_file(old, LAYER_NAME, sample_fields(), QgsCoordinateReferenceSystem("EPSG:32616"),
                            QgsProject.instance().transformContext()) == ""
    assert QgsProject.instance().write(str(tmp_path / "site.qgs"))
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    assert sample_layer(dock).source().split("|")[0] == str(tmp_path / "site_diffclip_samples_2.gpkg")
    assert any(m.startswith(f"{old} was not made by this project") for m in iface.messages())
    from qgis.core import QgsVectorLayer

    assert QgsVectorLayer(f"{old}|layername={LAYER_NAME}", "old", "ogr").featureCount() == 0


def test_a_project_stored_in_a_geopackage_keeps_its_samples_in_the_profile(dock, iface, scene, tmp_path):
    from osgeo import ogr

    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    container = str(tmp_path / "projects.gpkg")
    ogr.GetDriverByName("GPKG").CreateDataSource(container).FlushCache()
    assert QgsProject.instance().write(f"geopackage:{container}?projectName=survey")
    process_events(0.5)
    files = sorted(n for n in os.listdir(tmp_path / "profile_samples") if n.endswith(".gpkg"))
    assert len(files) == 1 and files[0].startswith("survey_") and files[0].endswith("_diffclip_samples.gpkg")
    assert sample_layer(dock).source().split("|")[0] == str(tmp_path / "profile_samples" / files[0])
    assert sample_layer(dock).featureCount() == 3
    process_events(0.5)   # saved once more to point at the copy, and then left alone
    assert sorted(n for n in os.listdir(tmp_path / "profile_samples") if n.endswith(".gpkg")) == files
    unsaved = os.listdir(tmp_path / "profile_samples" / "unsaved")   # no new ones; the first marked as saved
    assert [n + ".saved" for n in unsaved if n.endswith(".gpkg")] == [n for n in unsaved if n.endswith(".saved")]


def test_a_class_whose_samples_cannot_be_deleted_stays(dock, iface, scene, monkeypatch):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    sample_layer(dock).startEditing()   # e.g. open in QGIS's attribute table
    dock.classes.select_class(1)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dock.classes.remove_selected()
    assert [c.id for c in dock.classes.model.classes()] == [1, 2, 3] and dock.classes.model.count(1) == 1
    assert "edit mode" in iface.messages()[0]
    layer = sample_layer(dock)
    first = next(layer.getFeatures())
    layer.changeAttributeValue(first.id(), layer.fields().indexOf("class_id"), 2)
    assert layer.commitChanges()   # an edit in QGIS's attribute table: the dock's counts follow
    process_events()
    assert dock.classes.model.count(first["class_id"]) == 0 and dock.classes.model.count(2) == 2


@pytest.mark.parametrize("method", ["_add", "_delete"])
def test_a_write_that_fails_while_relabelling_or_undoing_loses_no_sample(dock, iface, scene, monkeypatch, method):
    from qgis.core import QgsPointXY

    from diffclip_qgis.gui.sample_layer import SampleLayerError, SampleStore

    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    before = samples(dock)
    layer = sample_layer(dock)
    old = next(layer.getFeatures())
    point = old.geometry().asPoint()
    write, fail_next = getattr(SampleStore, method), []

    def failing(layer, items):   # e.g. a database lock from another QGIS, once
        if fail_next and items:
            fail_next.pop()
            raise SampleLayerError("database is locked")
        return write(layer, items)

    monkeypatch.setattr(SampleStore, method, staticmethod(failing))
    fail_next.append(1)
    try:
        dock.store.apply([(QgsPointXY(point), 2, "roof")], delete=[old.id()])   # relabel the pixel
    except SampleLayerError:
        pass
    assert samples(dock) == before
    dock.store.apply([(QgsPointXY(point), 2, "roof")], delete=[old.id()])
    relabelled = samples(dock)
    assert relabelled != before
    fail_next.append(1)
    try:
        dock.store.undo()
    except SampleLayerError:
        pass
    assert samples(dock) == relabelled   # nothing changed, and the step stays for another try:
    assert dock.store.undo() and samples(dock) == before


def test_a_new_class_never_takes_the_id_of_samples_left_without_a_class(dock, iface, scene):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    classes = dock.classes.model.classes()
    dock.classes.model.set_classes(classes[:2])   # e.g. a class list loaded with Replace: class 3's samples stay
    dock.classes.add_class("water")
    assert dock.classes.model.classes()[-1].id == 4 and dock.classes.model.count(3) == 1


def test_run_is_disabled_with_what_is_missing_and_refuses_with_a_message(dock, iface, scene):
    assert not dock.run_button.isEnabled() and "Load demo" in dock.run_button.toolTip()
    assert not dock.run()
    assert "Load demo" in iface.messages()[0]
    add_rasters(iface, scene["paths"])
    assert dock.inputs.checked_ids()  # rasters added while none is ticked are ticked
    assert not dock.run_button.isEnabled() and "two classes" in dock.run_button.toolTip()
    dock.inputs.set_checked([])
    assert not dock.run_button.isEnabled() and "Tick at least one input raster" in dock.run_button.toolTip()
    label_scene(dock, iface, truth_grid(), per_class=1)
    assert dock.run_button.isEnabled() and not dock.missing()
    from diffclip_qgis.gui.class_table import PROMPT

    model = dock.classes.model
    first, second = model.classes()[:2]
    model.setData(model.index(1, PROMPT), first.prompt)   # the run would refuse two classes with one prompt
    assert not dock.run_button.isEnabled() and "have the same prompt" in dock.next_step.text()
    model.setData(model.index(1, PROMPT), second.prompt)
    assert dock.run_button.isEnabled()
    dock.classes.add_class("water")
    assert not dock.run_button.isEnabled() and "No samples for: water" in dock.run_button.toolTip()
    assert not dock.run()
    assert "No samples for: water" in iface.messages()[0]
    assert dock.task is None
