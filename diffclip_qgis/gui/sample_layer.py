"""The training samples: a GeoPackage point layer (``class_id``, ``class_name``) kept in the project.

The same layer feeds ``diffclip:fewshotclassify`` (SAMPLES, CLASS_FIELD=class_id). Each project
has its own file: next to the project file (``<project>_diffclip_samples.gpkg``), in the user's
QGIS profile for a project stored in a database, and, until the project is first saved, in the
profile's ``unsaved`` folder (:mod:`.profile_samples`: this session locks the file it uses there).
When the project is saved where its samples do not belong (first save, Save As, also to the same name
in another format), they are copied there, so the project saved before keeps its own; a file of the
unsaved folder is then marked as saved and kept, since the project saved first names it until it is
saved again (so is one the copy failed for). A file of that name that this project did not make
(another project's) is never reused. Edits go straight to the file (no edit session), with an undo
stack of this session's additions and deletions.
"""
from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from qgis.core import (QgsCategorizedSymbolRenderer, QgsCoordinateReferenceSystem, QgsCoordinateTransformContext,
                       QgsDataProvider, QgsFeature, QgsFeatureRequest, QgsFields, QgsGeometry, QgsMarkerSymbol,
                       QgsPointXY, QgsProject, QgsRectangle, QgsRendererCategory,
                       QgsSimpleMarkerSymbolLayer, QgsVectorFileWriter, QgsVectorLayer)
from qgis.PyQt.QtCore import QLockFile, QObject, QTimer, pyqtSignal

from ..core.classes import ClassInfo
from ..core.files import remove_geopackage, same_file
from ..qgis_compat import enum_value, new_field
from ..qgis_layers import layer_file
from . import profile_samples, tr
from .profile_samples import LOCK_WAIT_MS, file_lock, held_here, is_unsaved_file, mark_saved

LAYER_NAME = "diffclip_samples"
PROPERTY = "diffclip/samples"
SCOPE, FILE_ENTRY = "DiffCLIP", "samples_file"   # the project's record of the sample file it made
SUFFIX = "_diffclip_samples"
CLASS_ID, CLASS_NAME = "class_id", "class_name"
MAX_UNDO = 200

POINT = enum_value("Qgis.WkbType.Point", "QgsWkbTypes.Type.Point")
WKT_PREFERRED_GDAL = enum_value("Qgis.CrsWktVariant.PreferredGdal",
                                "QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED_GDAL")
NO_GEOMETRY = enum_value("Qgis.FeatureRequestFlag.NoGeometry", "QgsFeatureRequest.Flag.NoGeometry")


class SampleLayerError(RuntimeError):
    """The sample layer cannot be created or written; the message says why."""


def sample_fields() -> QgsFields:
    fields = QgsFields()
    fields.append(new_field(CLASS_ID, "Int"))
    fields.append(new_field(CLASS_NAME, "String", length=100))
    return fields


def sample_symbol(colour: str) -> QgsMarkerSymbol:
    """A 4 mm circle in the class colour inside a white and a black ring: stands out on a classified map."""
    symbol = QgsMarkerSymbol.createSimple({"name": "circle", "color": colour, "size": "4",
                                           "outline_color": "#ffffff", "outline_width": "0.6"})
    symbol.appendSymbolLayer(QgsSimpleMarkerSymbolLayer.create({"name": "circle", "color": "0,0,0,0", "size": "4.6",
                                                                "outline_color": "#000000", "outline_width": "0.3"}))
    return symbol


def project_stem(project: QgsProject) -> str:
    """The sample file's path without ``_diffclip_samples.gpkg``: beside the project file, or in
    :func:`profile_samples.profile_folder` for a project stored in a database; "" for a project never saved."""
    if project.absoluteFilePath():
        return os.path.splitext(project.absoluteFilePath())[0]
    uri = project.fileName()   # e.g. geopackage:/data/p.gpkg?projectName=survey, postgresql:?...&project=survey
    if uri:
        named = re.search(r"[?&](?:projectName|project)=([^&]+)", uri)
        name = re.sub(r"[^\w.-]+", "_", named.group(1) if named else "project")
        return os.path.join(profile_samples.profile_folder(), f"{name}_{hashlib.sha1(uri.encode()).hexdigest()[:8]}")
    return ""


def default_sample_path(project: QgsProject) -> str:
    """``<stem>_diffclip_samples.gpkg`` (:func:`project_stem`) for a saved project, else a new file in
    :func:`profile_samples.unsaved_folder`; the folder is created."""
    stem = project_stem(project)
    if stem:
        path = stem + SUFFIX + ".gpkg"
    else:
        path = os.path.join(profile_samples.unsaved_folder(), f"samples_{uuid.uuid4().hex[:8]}.gpkg")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def unused_path(path: str) -> str:
    """``path``, or ``<path>_2.gpkg``, ``_3`` ... when it exists."""
    base, n = os.path.splitext(path)[0], 2
    while os.path.exists(path):
        path, n = f"{base}_{n}.gpkg", n + 1
    return path


def project_identity(project: QgsProject) -> str:
    """The project's file path, or its URI when stored in a database; "" for a project never saved."""
    return project.absoluteFilePath() or project.fileName()


def belongs_to(path: str, stem: str) -> bool:
    """Whether a sample file is the project's (``<stem>_diffclip_samples[_N].gpkg``) rather than another's."""
    folder, name = os.path.split(os.path.normcase(os.path.abspath(path)))
    own_folder, own_name = os.path.split(os.path.normcase(os.path.abspath(stem)))
    return folder == own_folder and re.fullmatch(re.escape(own_name + SUFFIX) + r"(_\d+)?\.gpkg", name) is not None


def sample_count(path: str) -> Optional[int]:
    """How many samples a file holds; None when it is not a sample layer."""
    layer = QgsVectorLayer(_source(path), LAYER_NAME, "ogr")
    return layer.featureCount() if layer.isValid() and layer.fields().indexOf(CLASS_ID) >= 0 else None


def classes_in(layer: Optional[QgsVectorLayer]) -> List[ClassInfo]:
    """The classes (id, name) that a sample layer's samples carry, by id."""
    if layer is None:
        return []
    names = {f[CLASS_ID]: f[CLASS_NAME] for f in layer.getFeatures(_attributes_request(layer)) if f[CLASS_ID] is not None}
    return [ClassInfo(int(i), str(n or "")) for i, n in sorted(names.items())]


def sample_file_classes(path: str) -> List[ClassInfo]:
    """:func:`classes_in` the sample file at ``path``."""
    return classes_in(QgsVectorLayer(_source(path), LAYER_NAME, "ogr"))


def _source(path: str) -> str:
    return f"{path}|layername={LAYER_NAME}"


def copy_sample_file(source: str, target: str, context: QgsCoordinateTransformContext) -> str:
    """Copy every sample of the file ``source`` (whatever a layer of it filters or holds in an edit buffer) to
    the new file ``target``, and read the copy back; "" or why not (then nothing is left at ``target``)."""
    original = QgsVectorLayer(_source(source), LAYER_NAME, "ogr")
    if not original.isValid():
        return tr("{source} cannot be read").format(source=source)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", LAYER_NAME
    error, message, _, _ = QgsVectorFileWriter.writeAsVectorFormatV3(original, target, context, options)
    copy = QgsVectorLayer(_source(target), LAYER_NAME, "ogr")
    if error == QgsVectorFileWriter.WriterError.NoError and copy.isValid() \
            and copy.featureCount() == original.featureCount():
        return ""
    del copy
    remove_geopackage(target)
    return message or tr("the copy cannot be read back")


class SampleStore(QObject):
    """Finds or creates the project's sample layer and edits it; ``changed`` follows every edit."""

    changed = pyqtSignal()
    notice = pyqtSignal(str)   # a problem the user should know of (the samples could not follow the project)

    def __init__(self, project: Optional[QgsProject] = None, parent=None):
        super().__init__(parent)
        self.project = project or QgsProject.instance()
        # Per undo step: the features it added, those it deleted, and what else to revert with it.
        self._undo: List[Tuple[List[int], List[QgsFeature], Optional[Callable[[], None]]]] = []
        self._home = project_identity(self.project)   # the project file the samples were last kept with
        self._held: Optional[Tuple[str, QLockFile]] = None   # the unsaved-folder file in use and its lock
        self._saving_again = False
        self.project.projectSaved.connect(self._keep_with_project)
        self.project.readProject.connect(self._project_read)
        self.project.cleared.connect(self._project_read)
        self.project.layersAdded.connect(self._layers_added)
        self.project.layersRemoved.connect(self._layers_removed)
        self._hold_layer_file()   # a plugin reloaded with a project open
        self._layers_added(self.project.mapLayers().values())

    def disconnect_project(self) -> None:
        """On plugin unload: stop following the project. The sample layer's file stays locked for as long as the
        project keeps the layer (it is still in use), and a save meanwhile marks it as saved (the project names
        it), whatever the plugin does."""
        layer = self.layer()
        if self._held is not None and layer is not None and same_file(layer_file(layer), self._held[0]):
            (path, lock), self._held = self._held, None
            project = self.project

            def saved():
                if same_file(layer_file(layer), path):
                    mark_saved(path)

            def deleted():
                lock.unlock()
                try:
                    project.projectSaved.disconnect(saved)
                except (RuntimeError, TypeError):   # the project goes too (QGIS exits)
                    pass

            project.projectSaved.connect(saved)
            layer.willBeDeleted.connect(deleted)
        self._hold(None)
        for added in sample_layers(self.project.mapLayers().values()):
            try:
                added.afterCommitChanges.disconnect(self._committed)
            except TypeError:   # not connected
                pass
        self.project.projectSaved.disconnect(self._keep_with_project)
        self.project.readProject.disconnect(self._project_read)
        self.project.cleared.disconnect(self._project_read)
        self.project.layersAdded.disconnect(self._layers_added)
        self.project.layersRemoved.disconnect(self._layers_removed)

    # -- the layer ---------------------------------------------------------------------------------
    def layer(self) -> Optional[QgsVectorLayer]:
        """The project's sample layer (marked with a custom property), if any."""
        return next((layer for layer in sample_layers(self.project.mapLayers().values()) if layer.isValid()), None)

    def ensure_layer(self, crs: QgsCoordinateReferenceSystem, classes: Sequence[ClassInfo]) -> QgsVectorLayer:
        """The sample layer: the project's own file when it exists (after the layer was removed), else a new
        GeoPackage in ``crs`` (beside an existing file of another project, never in it)."""
        layer = self.layer()
        if layer is not None:
            return layer
        path = default_sample_path(self.project)
        if os.path.exists(path) and self.project.readEntry(SCOPE, FILE_ENTRY, "")[0] != path:
            other, path = path, unused_path(path)
            self.notice.emit(tr("{other} was not made by this project, so it is left alone: new samples go to "
                                "{path}.").format(other=other, path=path))
        self._hold_or_fail(path)   # before it exists: another QGIS would delete it as an empty leftover
        if not os.path.exists(path):
            self._create(path, crs)
        return self.adopt(path, classes)

    def adopt(self, path: str, classes: Sequence[ClassInfo]) -> QgsVectorLayer:
        """Make the sample file at ``path`` the project's own sample layer (refused while another running QGIS
        uses it)."""
        self._hold_or_fail(path)
        self.project.writeEntry(SCOPE, FILE_ENTRY, path)
        layer = QgsVectorLayer(_source(path), tr("DiffCLIP samples"), "ogr")
        if not layer.isValid() or layer.fields().indexOf(CLASS_ID) < 0:
            raise SampleLayerError(tr("{path} is not a DiffCLIP sample layer (a point layer '{layer}' with a field "
                                      "'class_id'). Move it away or save the project under another name.")
                                   .format(path=path, layer=LAYER_NAME))
        layer.setCustomProperty(PROPERTY, True)
        self.restyle(classes, layer)
        self.project.addMapLayer(layer)
        return layer

    def _hold(self, path: Optional[str]) -> bool:
        """Hold the lock of ``path`` when it is a file of the unsaved folder, and no other; False when another
        running session holds it."""
        if self._held is not None and path and same_file(path, self._held[0]):
            return True
        if self._held is not None:
            self._held[1].unlock()
            self._held = None
        if not path or not is_unsaved_file(path):
            return True
        lock = file_lock(path)
        if not lock.tryLock(0) and not held_here(lock) and not lock.tryLock(LOCK_WAIT_MS):
            return False
        self._held = (path, lock)   # (unlocking a lock held here since before a plugin reload does nothing)
        return True

    def _hold_or_fail(self, path: str) -> None:
        if not self._hold(path):
            raise SampleLayerError(tr("{path} is in use by another QGIS session.").format(path=path))

    def _hold_layer_file(self) -> None:
        """Hold the lock of the sample layer's file (a project saved while naming a file of the unsaved folder),
        or none."""
        layer = self.layer()
        self._hold(layer_file(layer) if layer is not None else None)

    def _create(self, path: str, crs: QgsCoordinateReferenceSystem) -> None:
        error = write_point_file(path, LAYER_NAME, sample_fields(), crs, self.project.transformContext())
        if error:
            raise SampleLayerError(tr("Cannot create the sample file {path}: {error}").format(path=path, error=error))

    def restyle(self, classes: Sequence[ClassInfo], layer: Optional[QgsVectorLayer] = None) -> None:
        """Categorized circles in the class colours (see :func:`sample_symbol`); the legend names the classes."""
        layer = layer or self.layer()
        if layer is None:
            return
        categories = [QgsRendererCategory(c.id, sample_symbol(c.colour), c.name) for c in classes]
        layer.setRenderer(QgsCategorizedSymbolRenderer(CLASS_ID, categories))
        layer.triggerRepaint()

    # -- edits ---------------------------------------------------------------------------------------
    def _writable(self) -> QgsVectorLayer:
        layer = self.layer()
        if layer is None:
            raise SampleLayerError(tr("There is no sample layer in the project."))
        if layer.isEditable():
            raise SampleLayerError(tr("The sample layer is in edit mode: save or discard its edits first."))
        return layer

    def apply(self, points: Sequence[Tuple[QgsPointXY, int, str]], delete: Sequence[int] = (),
              on_undo: Optional[Callable[[], None]] = None) -> List[int]:
        """Delete features ``delete`` and add ``(point in layer CRS, class id, class name)``, as one undo step;
        undoing it also calls ``on_undo``."""
        layer = self._writable()
        added = self._add(layer, [self._feature(layer, QgsGeometry.fromPointXY(p), i, n) for p, i, n in points])
        try:   # added first: a failed write never leaves the samples deleted and the new ones missing
            removed = self._delete(layer, delete)
        except SampleLayerError:
            self._delete(layer, added)
            raise
        self._undo.append((added, removed, on_undo))
        del self._undo[:-MAX_UNDO]
        self._edited(layer)
        return added

    def undo(self) -> bool:
        """Revert the last :meth:`apply`; False when there is nothing to undo."""
        if not self._undo:
            return False
        layer = self._writable()
        added, removed, on_undo = self._undo[-1]
        restored = self._add(layer, [self._feature(layer, f.geometry(), f[CLASS_ID], f[CLASS_NAME]) for f in removed])
        try:   # restored first, and the step kept until both writes succeed: a failure loses nothing
            self._delete(layer, added)
        except SampleLayerError:
            self._delete(layer, restored)
            raise
        self._undo.pop()
        new_fid = {f.id(): fid for f, fid in zip(removed, restored)}
        for older_added, _, _ in self._undo:  # restored features got new ids: older steps must refer to those
            older_added[:] = [new_fid.get(fid, fid) for fid in older_added]
        self._edited(layer)
        if on_undo is not None:
            on_undo()
        return True

    def can_undo(self) -> bool:
        return bool(self._undo)

    def clear_undo(self) -> None:
        """Forget every undo step (the samples stay as they are)."""
        self._undo.clear()
        self.changed.emit()

    def delete_class(self, class_id: int) -> None:
        """Delete every sample of a class (not undoable: the class itself is gone)."""
        layer = self.layer()
        if layer is None:
            return
        self._delete(self._writable(), [f.id() for f in layer.getFeatures(_attributes_request(layer))
                                         if f[CLASS_ID] == class_id])
        self._undo.clear()
        self._edited(layer)

    def name_samples(self, classes: Sequence[ClassInfo]) -> None:
        """Give every sample of a listed class that class's name (after a rename, or a class list loaded over it)."""
        layer = self.layer()
        if layer is None:
            return
        names = {c.id: c.name for c in classes}
        index = layer.fields().indexOf(CLASS_NAME)
        if index < 0:   # a sample file without the field (adopted, or the field deleted): nothing to name
            return
        changes = {f.id(): {index: names[f[CLASS_ID]]} for f in layer.getFeatures(_attributes_request(layer))
                   if f[CLASS_ID] in names and f[CLASS_NAME] != names[f[CLASS_ID]]}
        if not changes:
            return
        if not self._writable().dataProvider().changeAttributeValues(changes):
            raise SampleLayerError(tr("Cannot write to the sample layer: {error}").format(error=_last_error(layer)))
        self._edited(layer)

    @staticmethod
    def _feature(layer: QgsVectorLayer, geometry: QgsGeometry, class_id: int, name: str) -> QgsFeature:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geometry)
        feature[CLASS_ID] = int(class_id)
        feature[CLASS_NAME] = name
        return feature

    @staticmethod
    def _add(layer: QgsVectorLayer, features: List[QgsFeature]) -> List[int]:
        if not features:
            return []
        ok, written = layer.dataProvider().addFeatures(features)
        if not ok:
            raise SampleLayerError(tr("Cannot write to the sample layer: {error}").format(error=_last_error(layer)))
        return [f.id() for f in written]

    @staticmethod
    def _delete(layer: QgsVectorLayer, fids: Sequence[int]) -> List[QgsFeature]:
        if not fids:
            return []
        removed = list(layer.getFeatures(QgsFeatureRequest().setFilterFids(list(fids))))
        if removed and not layer.dataProvider().deleteFeatures([f.id() for f in removed]):
            raise SampleLayerError(tr("Cannot write to the sample layer: {error}").format(error=_last_error(layer)))
        return removed

    def _edited(self, layer: QgsVectorLayer) -> None:
        layer.updateExtents()
        layer.triggerRepaint()
        self.changed.emit()

    # -- queries ---------------------------------------------------------------------------------------
    def in_rect(self, rect: QgsRectangle) -> List[QgsFeature]:
        """Samples inside a rectangle in the layer CRS."""
        layer = self.layer()
        return [] if layer is None else list(layer.getFeatures(QgsFeatureRequest().setFilterRect(rect)))

    def nearest(self, point: QgsPointXY, tolerance: float) -> Optional[int]:
        """Id of the sample closest to ``point`` within ``tolerance`` (layer CRS units)."""
        feature = nearest_feature(self.layer(), point, tolerance)
        return None if feature is None else feature.id()

    def counts(self) -> Dict[int, int]:
        layer = self.layer()
        counts: Dict[int, int] = {}
        if layer is not None:
            for f in layer.getFeatures(_attributes_request(layer)):
                counts[f[CLASS_ID]] = counts.get(f[CLASS_ID], 0) + 1
        return counts

    def samples(self) -> Tuple[List[bytes], List[int], str]:
        """Geometries (WKB), class ids and the layer CRS (WKT) of every sample, for the worker thread."""
        layer = self.layer()
        if layer is None:
            return [], [], ""
        wkbs, ids = [], []
        for f in layer.getFeatures():
            if f.hasGeometry() and f[CLASS_ID] is not None:
                wkbs.append(bytes(f.geometry().asWkb()))
                ids.append(int(f[CLASS_ID]))
        return wkbs, ids, layer.crs().toWkt(WKT_PREFERRED_GDAL)

    # -- project life cycle ------------------------------------------------------------------------------
    def _layers_added(self, layers) -> None:
        """Edits saved from QGIS's own editing tools (attribute table, edit mode) count like the dock's."""
        for layer in sample_layers(layers):
            layer.afterCommitChanges.connect(self._committed)

    def _committed(self) -> None:
        self.changed.emit()

    def _layers_removed(self, layer_ids) -> None:
        if self.layer() is None:
            self.clear_undo()

    def _project_read(self, *_) -> None:
        self._home = project_identity(self.project)
        self._hold_layer_file()   # the project's, if any; the one before is left to the next new project's offer

    def _keep_with_project(self) -> None:
        """After a save where the samples do not belong (the first save, Save As, even to ``p.qgs`` from
        ``p.qgz``), copy them beside the project (a new file, never over one) and save again; the file they
        came from stays as it was (one of the unsaved folder is marked as saved)."""
        layer = self.layer()
        stem = project_stem(self.project)
        saved_as = project_identity(self.project) != self._home
        self._home = project_identity(self.project)
        if self._saving_again or layer is None or not stem or (belongs_to(layer_file(layer), stem) and not saved_as):
            return
        source, target = layer_file(layer), unused_path(default_sample_path(self.project))
        # The samples stay where they are (the saved project names that file) and the next save retries when
        # the layer has edits not saved (they are the user's to save or discard) or the copy fails.
        error = tr("the sample layer is in edit mode: save or discard its edits, then save the project again") \
            if layer.isEditable() else copy_sample_file(source, target, self.project.transformContext())
        if error:
            mark_saved(source)
            self.notice.emit(tr("Could not copy the samples to {path} ({error}); they stay in {source}.")
                             .format(path=target, error=error, source=source))
            return
        subset = layer.subsetString()   # a filter the user set (Layer > Filter) stays
        layer.setDataSource(_source(target), layer.name(), "ogr", QgsDataProvider.ProviderOptions())
        layer.setSubsetString(subset)
        self.project.writeEntry(SCOPE, FILE_ENTRY, target)
        self.clear_undo()  # its steps refer to the old file; ``changed`` makes the dock show the new path
        mark_saved(source)
        self._hold(target)
        home = self._home
        QTimer.singleShot(0, lambda: self._save_again(home))

    def _save_again(self, identity: str) -> None:
        """Save the project again so that it points at the copy, unless another project was opened (or the
        project closed) meanwhile: that one is not written."""
        if project_identity(self.project) == identity:
            self._saving_again = True   # that save never copies again, whatever happens
            try:
                self.project.write()
            finally:
                self._saving_again = False


def write_point_file(path: str, layer_name: str, fields: QgsFields, crs: QgsCoordinateReferenceSystem,
                     context: QgsCoordinateTransformContext, features: Sequence[QgsFeature] = ()) -> str:
    """A GeoPackage of one point layer holding ``features`` (attributes by field name); "" or the error."""
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", layer_name
    writer = QgsVectorFileWriter.create(path, fields, POINT, crs, context, options)
    for source in features:
        feature = QgsFeature(fields)
        feature.setGeometry(source.geometry())
        for field in fields:
            feature[field.name()] = source[field.name()]
        writer.addFeature(feature)
    error = writer.errorMessage() if writer.hasError() else ""
    del writer  # closes the file
    return error


def sample_layers(layers) -> List[QgsVectorLayer]:
    """Those of ``layers`` that are a DiffCLIP sample layer (marked with the custom property)."""
    return [layer for layer in layers if isinstance(layer, QgsVectorLayer) and layer.customProperty(PROPERTY)]


def nearest_feature(layer: Optional[QgsVectorLayer], point: QgsPointXY, tolerance: float) -> Optional[QgsFeature]:
    """The point feature of ``layer`` closest to ``point`` within ``tolerance`` (layer CRS units)."""
    if layer is None:
        return None
    rect = QgsRectangle(point.x() - tolerance, point.y() - tolerance, point.x() + tolerance, point.y() + tolerance)
    best, best_d = None, tolerance ** 2
    for f in layer.getFeatures(QgsFeatureRequest().setFilterRect(rect)):
        d = f.geometry().asPoint().sqrDist(point)
        if d <= best_d:
            best, best_d = f, d
    return best


def _attributes_request(layer: QgsVectorLayer) -> QgsFeatureRequest:
    return (QgsFeatureRequest().setFlags(NO_GEOMETRY)
            .setSubsetOfAttributes([CLASS_ID, CLASS_NAME], layer.fields()))


def _last_error(layer: QgsVectorLayer) -> str:
    errors = layer.dataProvider().errors()
    return errors[-1] if errors else tr("unknown error")
