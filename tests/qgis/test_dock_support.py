"""Shared set-up for the dock tests: a real-object ``iface`` stand-in, tiny rasters and map clicks.

The other test_dock*.py modules import these fixtures (``from test_dock_support import ...``).
"""
import os
import select
import subprocess
import sys
import time

import numpy as np
import pytest
from osgeo import gdal, osr

EPSG = 32616
X0, Y0 = 290000.0, 3363000.0
SIZE = 24


class Iface:
    """The part of QgisInterface the plugin and the dock call, made of real QGIS widgets."""

    def __init__(self):
        from qgis.gui import QgsMapCanvas, QgsMessageBar
        from qgis.PyQt.QtWidgets import QMainWindow, QVBoxLayout, QWidget

        self.window = QMainWindow()
        central = QWidget()
        layout = QVBoxLayout(central)
        self.bar = QgsMessageBar()
        self.canvas = QgsMapCanvas()
        layout.addWidget(self.bar)
        layout.addWidget(self.canvas)
        self.window.setCentralWidget(central)
        self.window.resize(1000, 700)
        self.docks, self.toolbar, self.menu = [], [], []
        from qgis.gui import QgsMapToolPan
        from qgis.PyQt.QtWidgets import QAction

        self.pan_tool = QgsMapToolPan(self.canvas)
        self.pan_action = QAction("Pan", self.window)
        self.pan_action.triggered.connect(lambda: self.canvas.setMapTool(self.pan_tool))

    def mainWindow(self):  # noqa: N802 (QGIS API names)
        return self.window

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def messageBar(self):  # noqa: N802
        return self.bar

    def addDockWidget(self, area, dock):  # noqa: N802
        self.window.addDockWidget(area, dock)
        self.docks.append(dock)

    def removeDockWidget(self, dock):  # noqa: N802
        self.window.removeDockWidget(dock)
        self.docks.remove(dock)

    def addToolBarIcon(self, action):  # noqa: N802
        self.toolbar.append(action)

    def removeToolBarIcon(self, action):  # noqa: N802
        self.toolbar.remove(action)

    def actionPan(self):  # noqa: N802
        return self.pan_action

    def addPluginToRasterMenu(self, menu, action):  # noqa: N802
        self.menu.append(action)

    def removePluginRasterMenu(self, menu, action):  # noqa: N802
        self.menu.remove(action)

    def messages(self):
        """Texts of the message bar entries, newest first."""
        return [item.text() for item in self.bar.items()]


def write_raster(path, data):
    """A GeoTIFF of (bands, SIZE, SIZE) float32 values on the test grid (1 m, EPSG:32616)."""
    ds = gdal.GetDriverByName("GTiff").Create(path, SIZE, SIZE, data.shape[0], gdal.GDT_Float32)
    ds.SetGeoTransform((X0, 1.0, 0.0, Y0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    ds.SetProjection(srs.ExportToWkt())
    ds.WriteArray(data.astype(np.float32))
    ds.FlushCache()


def truth_grid():
    """Three classes: 1 on the left half, 2 top right, 3 bottom right."""
    truth = np.ones((SIZE, SIZE), int)
    truth[: SIZE // 2, SIZE // 2:] = 2
    truth[SIZE // 2:, SIZE // 2:] = 3
    return truth


@pytest.fixture
def scene(tmp_path):
    """Paths of a 4-band and a 2-band raster of three separable classes, and the truth grid."""
    rng = np.random.default_rng(0)
    truth = truth_grid()
    spectra = np.array([[0.1, 0.5, 0.2, 0.9], [0.8, 0.2, 0.6, 0.1], [0.4, 0.9, 0.9, 0.5]])
    heights = np.array([[0.0, 1.0], [5.0, 0.2], [10.0, 0.8]])
    a = spectra[truth - 1].transpose(2, 0, 1) + rng.normal(0, 0.03, (4, SIZE, SIZE))
    b = heights[truth - 1].transpose(2, 0, 1) + rng.normal(0, 0.1, (2, SIZE, SIZE))
    paths = (str(tmp_path / "optical.tif"), str(tmp_path / "lidar.tif"))
    write_raster(paths[0], a)
    write_raster(paths[1], b)
    return {"paths": paths, "truth": truth, "folder": str(tmp_path)}


@pytest.fixture
def iface(qgis_app, tmp_path, monkeypatch):
    """A fresh stand-in iface and an empty project (cleared afterwards); the profile's sample folder (samples
    of unsaved projects and of projects in a database) is tmp_path/profile_samples."""
    from qgis.core import QgsProject

    from diffclip_qgis.gui import profile_samples

    monkeypatch.setattr(profile_samples, "profile_folder", lambda: str(tmp_path / "profile_samples"))
    from qgis.PyQt.QtCore import QSettings

    QSettings().remove("DiffCLIP")  # the dock's remembered choices (folders, Settings collapsed, dock open)
    QgsProject.instance().clear()
    stand_in = Iface()
    stand_in.window.show()
    yield stand_in
    QgsProject.instance().clear()
    stand_in.bar.clearWidgets()
    stand_in.pan_tool.deleteLater()  # now, while Qt runs: left to the garbage collector it can outlive the app
    stand_in.window.close()
    stand_in.window.deleteLater()
    process_events()


@pytest.fixture
def dock(iface):
    """The DiffCLIP dock in the stand-in main window; shut down after the test."""
    from qgis.PyQt.QtCore import Qt

    from diffclip_qgis.gui.dock import DiffClipDock

    widget = DiffClipDock(iface)
    iface.addDockWidget(Qt.RightDockWidgetArea, widget)
    yield widget
    widget.shutdown()
    iface.removeDockWidget(widget)
    widget.deleteLater()
    process_events()


def add_rasters(iface, paths):
    """Add raster layers to the project and zoom the canvas onto the first."""
    from qgis.core import QgsProject, QgsRasterLayer

    layers = [QgsRasterLayer(p, os.path.splitext(os.path.basename(p))[0]) for p in paths]
    assert all(l.isValid() for l in layers)
    QgsProject.instance().addMapLayers(layers)
    iface.canvas.setDestinationCrs(layers[0].crs())
    iface.canvas.setExtent(layers[0].extent())
    iface.canvas.refresh()
    process_events()
    return layers


def pixel_centre(row, col):
    return X0 + col + 0.5, Y0 - row - 0.5


def click(canvas, x, y, button=None, modifiers=None):
    """A real mouse click on the canvas at map coordinates (x, y), through Qt's event system."""
    from qgis.core import QgsPointXY
    from qgis.PyQt.QtCore import QPoint, Qt
    from qgis.PyQt.QtTest import QTest

    device = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
    QTest.mouseClick(canvas.viewport(), button or Qt.LeftButton, modifiers or Qt.NoModifier,
                     QPoint(round(device.x()), round(device.y())))
    process_events()


def process_events(seconds=0.05):
    from qgis.PyQt.QtCore import QCoreApplication

    end = time.monotonic() + seconds
    while True:
        QCoreApplication.processEvents()
        if time.monotonic() >= end:
            return
        time.sleep(0.01)


def wait_for(condition, timeout=120.0):
    """Process events until ``condition()`` is true; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"Timed out after {timeout:.0f} s waiting for {condition}")
        process_events(0.05)


def label_scene(dock, iface, truth, per_class=4, seed=0):
    """Tick both inputs, add three classes (unless there are some) and click ``per_class`` samples of each."""
    rng = np.random.default_rng(seed)
    by_name = {l.name(): l.id() for l in dock.project.mapLayers().values()}
    dock.inputs.set_checked([by_name["optical"], by_name["lidar"]])
    if not dock.classes.model.rowCount():  # a reloaded dock finds the classes in the project
        for name in ("field", "roof", "tree"):
            dock.classes.add_class(name)
    dock.tool_action.trigger()
    assert iface.canvas.mapTool() is dock.tool
    for class_id in (1, 2, 3):
        dock.classes.select_class(class_id)
        rows, cols = np.nonzero(truth == class_id)
        for i in rng.choice(len(rows), per_class, replace=False):
            click(iface.canvas, *pixel_centre(rows[i], cols[i]))


def changeable(dock):
    """Which of the things a run reads the user can change now (sorted names)."""
    from qgis.PyQt.QtCore import Qt

    from diffclip_qgis.gui.class_table import NAME

    model = dock.classes.model
    states = {"inputs": dock.inputs.isEnabled(), "Load demo": dock.demo_button.isEnabled(),
              "Settings": dock.settings.isEnabled(), "prompt": not dock.classes.prompt_edit.isReadOnly(),
              "class names": bool(model.flags(model.index(0, NAME)) & Qt.ItemFlag.ItemIsEditable),
              "Add a class": dock.classes._edit_buttons[0].isEnabled()}
    return sorted(name for name, state in states.items() if state)


#: What a run locks while it runs, and gives back when it ends.
RUN_INPUTS = sorted(["inputs", "Load demo", "Settings", "prompt", "class names", "Add a class"])


def held_by_another_session(lock):
    """A lock file (a sample file's, a run's output number) that another running QGIS session (a process) holds;
    ``kill()`` ends it."""
    code = ("import sys, time; from qgis.PyQt.QtCore import QLockFile; lock = QLockFile(sys.argv[1]); "
            "lock.setStaleLockTime(0); assert lock.tryLock(0); print('locked', flush=True); time.sleep(600)")
    session = subprocess.Popen([sys.executable, "-c", code, lock], stdout=subprocess.PIPE, text=True)
    assert select.select([session.stdout], [], [], 60)[0] and session.stdout.readline().strip() == "locked"
    session.stdout.close()
    return session


def held_by_a_crashed_session(lock):
    """Leave a lock file of a QGIS session that crashed while holding it (its process killed)."""
    code = ("import os, sys; from qgis.PyQt.QtCore import QLockFile; lock = QLockFile(sys.argv[1]); "
            "lock.setStaleLockTime(0); assert lock.tryLock(0); os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code, lock])
    assert os.path.exists(lock)
