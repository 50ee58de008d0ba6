"""The samples follow the project when it is saved, whatever state the sample layer is in; class lists never
replace a user's work without saying so."""
import json
import os

import pytest
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsProject, QgsVectorLayer
from qgis.PyQt.QtWidgets import QFileDialog, QMessageBox

from test_dock_support import (X0, Y0, add_rasters, dock, iface, label_scene, pixel_centre,  # noqa: F401
                               process_events, scene, truth_grid)

from diffclip_qgis.gui import class_table
from diffclip_qgis.gui.sample_layer import LAYER_NAME, SampleStore
from diffclip_qgis.qgis_layers import layer_file


def samples_in(path):
    """(row, column, class id) of every sample in a sample file."""
    layer = QgsVectorLayer(f"{path}|layername={LAYER_NAME}", "x", "ogr")
    assert layer.isValid(), path
    return sorted((int(Y0 - f.geometry().asPoint().y()), int(f.geometry().asPoint().x() - X0), f["class_id"])
                  for f in layer.getFeatures())


@pytest.mark.parametrize("first_save", [True, False])
def test_a_filter_on_the_sample_layer_copies_every_sample_and_stays(dock, iface, scene, tmp_path, first_save):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    if not first_save:   # then Save As
        assert QgsProject.instance().write(str(tmp_path / "p.qgz"))
        process_events(0.3)
    every = samples_in(layer_file(dock.store.layer()))
    assert dock.store.layer().setSubsetString('"class_id" = 2')   # Layer > Filter..., to look at one class
    assert QgsProject.instance().write(str(tmp_path / "survey.qgz"))
    process_events(0.3)
    layer = dock.store.layer()
    assert layer_file(layer) == str(tmp_path / "survey_diffclip_samples.gpkg")
    assert samples_in(layer_file(layer)) == every and layer.subsetString() == '"class_id" = 2'


@pytest.mark.parametrize("action", ["commitChanges", "rollBack"])
def test_edits_not_saved_are_never_copied_and_the_next_save_copies(dock, iface, scene, tmp_path, action):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    layer = dock.store.layer()
    unsaved = layer_file(layer)
    before = samples_in(unsaved)
    layer.startEditing()   # QGIS's own editing: a sample deleted, one added, not saved yet
    layer.deleteFeature(sorted(f.id() for f in layer.getFeatures())[1])
    added = QgsFeature(layer.fields())
    added.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(*pixel_centre(0, 0))))
    added["class_id"], added["class_name"] = 3, "tree"
    layer.addFeature(added)
    edited = sorted((int(Y0 - f.geometry().asPoint().y()), int(f.geometry().asPoint().x() - X0), f["class_id"])
                    for f in layer.getFeatures())
    project = str(tmp_path / "survey.qgz")
    assert QgsProject.instance().write(project)
    process_events(0.3)
    assert layer_file(dock.store.layer()) == unsaved and not [n for n in os.listdir(tmp_path) if "diffclip_samples" in n]
    assert [m for m in iface.messages() if "the sample layer is in edit mode" in m]
    assert getattr(layer, action)()
    assert samples_in(unsaved) == (edited if action == "commitChanges" else before)
    assert QgsProject.instance().write(project)   # the next save copies what the file holds now
    process_events(0.3)
    assert layer_file(dock.store.layer()) == str(tmp_path / "survey_diffclip_samples.gpkg")
    assert samples_in(layer_file(dock.store.layer())) == samples_in(unsaved)


def test_a_copy_that_cannot_be_read_back_leaves_the_samples_where_they_are(dock, iface, scene, tmp_path):
    folder = tmp_path / "My%20Survey"   # GDAL's SQLite opens such a path as a URI: the copy is unreadable
    folder.mkdir()
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    unsaved = layer_file(dock.store.layer())
    assert QgsProject.instance().write(str(folder / "survey.qgz"))
    process_events(0.3)
    assert layer_file(dock.store.layer()) == unsaved and dock.store.layer().featureCount() == 3
    assert os.listdir(folder) == ["survey.qgz"]   # no unreadable copy left
    assert [m for m in iface.messages() if m.startswith("Could not copy the samples")]


def test_a_bar_in_the_project_name_copies_the_samples_once(dock, iface, scene, tmp_path):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    saves = []
    QgsProject.instance().projectSaved.connect(lambda: saves.append(1))
    assert QgsProject.instance().write(str(tmp_path / "we|ird.qgz"))
    process_events(1)
    assert len(saves) == 2   # the user's save, and the one that points the project at the copy
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".gpkg")) == ["we|ird_diffclip_samples.gpkg"]
    assert layer_file(dock.store.layer()) == str(tmp_path / "we|ird_diffclip_samples.gpkg")


def test_edits_saved_in_qgis_count_after_a_plugin_reload(dock, iface, scene):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    reloaded = SampleStore(QgsProject.instance())   # what a reloaded plugin's dock makes
    changes = []
    reloaded.changed.connect(lambda: changes.append(1))
    layer = dock.store.layer()
    layer.startEditing()
    layer.changeAttributeValue(next(layer.getFeatures()).id(), layer.fields().indexOf("class_id"), 3)
    assert layer.commitChanges()
    assert changes
    reloaded.disconnect_project()


def test_replacing_the_class_list_says_which_samples_change_class(dock, iface, scene, tmp_path, monkeypatch):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    other = tmp_path / "colleague.json"
    other.write_text(json.dumps({"classes": [{"id": 1, "name": "water"}, {"id": 2, "name": "roof"}]}))
    asked = []
    monkeypatch.setattr(class_table, "ask_load_mode", lambda parent, text: asked.append(text))
    assert not dock.classes.load_file(str(other))
    assert "field (2 samples) become water" in asked[0] and "roof (" not in asked[0].split("\n\n")[-1]
    assert "tree (2 samples)" in asked[0]   # left out of runs


def test_replacing_the_class_list_renames_the_samples_that_change_class(dock, iface, scene, tmp_path, monkeypatch):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    other = tmp_path / "colleague.json"
    other.write_text(json.dumps({"classes": [{"id": 1, "name": "water"}, {"id": 2, "name": "roof"}]}))
    monkeypatch.setattr(class_table, "ask_load_mode", lambda parent, text: class_table.REPLACE)
    assert dock.classes.load_file(str(other))
    names = {(f["class_id"], f["class_name"]) for f in dock.store.layer().getFeatures()}
    assert names == {(1, "water"), (2, "roof"), (3, "tree")}   # class 3 is left out of runs, its name unchanged


def test_samples_left_without_a_class_take_the_name_of_a_class_loaded_later_and_the_question_says_so(
        dock, iface, scene, tmp_path, monkeypatch):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=2)
    first, second = tmp_path / "two.json", tmp_path / "three.json"
    first.write_text(json.dumps({"classes": [{"id": 1, "name": "field"}, {"id": 2, "name": "roof"}]}))
    second.write_text(json.dumps({"classes": [{"id": 1, "name": "field"}, {"id": 2, "name": "roof"},
                                              {"id": 3, "name": "forest"}]}))
    asked = []
    monkeypatch.setattr(class_table, "ask_load_mode", lambda parent, text: asked.append(text) or class_table.REPLACE)
    assert dock.classes.load_file(str(first)) and dock.classes.load_file(str(second))
    assert "take the loaded class of their id, and its name: 2 samples become forest" in asked[1]
    assert {f["class_name"] for f in dock.store.layer().getFeatures() if f["class_id"] == 3} == {"forest"}


def test_an_undone_edit_gives_its_sample_the_current_name_of_its_class(dock, iface, scene):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    store = dock.store
    field = next(f for f in store.layer().getFeatures() if f["class_id"] == 1)
    store.apply([(field.geometry().asPoint(), 2, "roof")], delete=[field.id()])   # relabelled as roof
    assert dock.classes.model.rename(dock.classes.model.row_of(1), "meadow")
    assert dock.tool.undo()
    assert [f["class_name"] for f in store.layer().getFeatures() if f["class_id"] == 1] == ["meadow"]


def test_a_sample_file_without_class_names_takes_class_edits_quietly(dock, iface, scene):
    add_rasters(iface, scene["paths"])
    label_scene(dock, iface, truth_grid(), per_class=1)
    layer = dock.store.layer()
    assert layer.dataProvider().deleteAttributes([layer.fields().indexOf("class_name")])
    layer.updateFields()
    assert dock.classes.model.rename(0, "meadow")   # no error: nothing to name
    assert not [m for m in iface.messages() if "Cannot write" in m]


@pytest.mark.parametrize("answer, kept", [(QMessageBox.StandardButton.No, True),
                                          (QMessageBox.StandardButton.Yes, False)])
def test_saving_a_class_list_asks_before_replacing_a_file_the_dialog_did_not_name(dock, tmp_path, monkeypatch,
                                                                                  answer, kept):
    dock.classes.add_class("a")
    existing = tmp_path / "classes.json"
    existing.write_text("the user's own class list")
    # typed "classes": the dialog asked about "classes", the list goes to classes.json
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "classes"), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answer)
    dock.classes._save_clicked()
    assert (existing.read_text() == "the user's own class list") == kept


def test_a_project_without_settings_gets_the_defaults_not_the_last_projects(dock, iface, tmp_path):
    """Settings are the project's: File > New, or a project saved before a setting existed, ran with the last
    project's smoothing and window."""
    dock.settings.set_values({"preset": "cpu", "window": "5", "smoothing": 2, "finetune_epochs": 7, "device": "cpu"})
    QgsProject.instance().clear()
    process_events()
    values = dock.settings.values()
    assert (values["window"], values["smoothing"], values["finetune_epochs"], values["device"]) == ("auto", 0, 100,
                                                                                                    "auto")
    dock.settings.set_values({"preset": "cpu", "window": "5", "smoothing": 2})
    older = str(tmp_path / "older.qgz")   # saved before Smoothing existed
    QgsProject.instance().writeEntry("DiffCLIP", "settings", json.dumps({"preset": "cpu", "window": "3"}))
    assert QgsProject.instance().write(older)
    QgsProject.instance().clear()
    dock.settings.set_values({"preset": "cpu", "window": "7", "smoothing": 3})
    assert QgsProject.instance().read(older)
    process_events()
    assert (dock.settings.values()["window"], dock.settings.values()["smoothing"]) == ("3", 0)
