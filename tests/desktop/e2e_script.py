"""Runs inside the real QGIS desktop (``qgis --code``), driven by tests/desktop/run_desktop_e2e.py.

Opens the demo rasters, opens the DiffCLIP dock from its toolbar action, loads the demo class
list, clicks the demo samples onto the map with the dock's map tool, runs a short
classification in the background, waits for the classified layer, saves a screenshot and a
status JSON, and quits QGIS. Everything lives inside ``main()`` because QGIS executes this file
with ``exec``; the timers keep QGIS's event loop running between the steps.
"""


def main():
    import builtins
    import json
    import os
    import time
    import traceback

    from osgeo import ogr
    from qgis.core import QgsApplication, QgsPointXY, QgsProject, QgsRasterLayer
    from qgis.PyQt.QtCore import QPoint, Qt, QTimer
    from qgis.PyQt.QtTest import QTest
    from qgis.utils import iface, plugins

    status_path = os.environ["DIFFCLIP_E2E_STATUS"]
    screenshot = os.environ["DIFFCLIP_E2E_SCREENSHOT"]
    out = os.environ["DIFFCLIP_E2E_OUT"]
    status = {"ok": False, "steps": []}
    t0 = time.monotonic()
    state = {}

    def step(name):
        status["steps"].append(f"{time.monotonic() - t0:.1f}s {name}")

    def finish(ok, error=""):
        status.update(ok=ok, error=error, seconds=round(time.monotonic() - t0, 1))
        try:
            iface.mainWindow().grab().save(screenshot)
            status["screenshot"] = screenshot
        except Exception as e:  # noqa: BLE001
            status["screenshot_error"] = str(e)
        with open(status_path, "w", encoding="utf-8") as f:
            json.dump(status, f, indent=2, ensure_ascii=False)
        QgsProject.instance().setDirty(False)
        QTimer.singleShot(500, QgsApplication.instance().quit)

    def guarded(function):
        def run():
            try:
                function()
            except Exception:  # noqa: BLE001
                finish(False, traceback.format_exc())
        return run

    def setup():
        iface.mainWindow().setGeometry(0, 0, 1600, 1000)  # Xvfb has no window manager to maximise it
        if "diffclip_qgis" not in plugins:
            raise RuntimeError("The DiffCLIP plugin is not loaded in this profile.")
        plugin = plugins["diffclip_qgis"]
        demo = os.path.join(os.path.dirname(os.path.abspath(__import__("diffclip_qgis").__file__)), "demo")
        layers = [QgsRasterLayer(os.path.join(demo, f"demo_{n}.tif"), f"demo_{n}") for n in ("hsi", "lidar")]
        if not all(l.isValid() for l in layers):
            raise RuntimeError(f"Cannot open the demo rasters in {demo}.")
        QgsProject.instance().addMapLayers(layers)
        plugin.action.trigger()  # the toolbar button opens the dock
        dock = plugin.dock
        if dock is None or not dock.isVisible():
            raise RuntimeError("The toolbar action did not open the dock.")
        state.update(plugin=plugin, dock=dock, demo=demo)
        step("demo rasters added, dock open")
        QTimer.singleShot(1500, guarded(label))

    def label():
        dock, demo = state["dock"], state["demo"]
        canvas = iface.mapCanvas()
        ids = {l.name(): l.id() for l in QgsProject.instance().mapLayers().values()}
        dock.inputs.set_checked([ids["demo_hsi"], ids["demo_lidar"]])
        if not dock.classes.load_file(os.path.join(demo, "demo_classes.json")):
            raise RuntimeError("Loading demo_classes.json failed.")
        canvas.setExtent(QgsProject.instance().mapLayer(ids["demo_hsi"]).extent())
        canvas.refresh()
        QgsApplication.processEvents()
        dock.tool_action.trigger()
        if canvas.mapTool() is not dock.tool:
            raise RuntimeError("The 'Label samples' action did not activate the map tool.")
        source = ogr.Open(os.path.join(demo, "demo_samples.gpkg"))
        points = [(f.GetField("class_id"), f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY())
                  for f in source.GetLayer(0)]
        for class_id, x, y in points:
            dock.classes.select_class(class_id)
            device = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
            position = QPoint(round(device.x()), round(device.y()))
            QTest.mouseClick(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, position)
            QgsApplication.processEvents()
        counts = dock.store.counts()
        status.update(samples_clicked=len(points), samples_in_layer=sum(counts.values()),
                      sample_layer=dock.store.layer().source())
        if sum(counts.values()) != len(points):
            raise RuntimeError(f"{len(points)} clicks gave {sum(counts.values())} samples.")
        step(f"{len(points)} samples clicked")
        dock.settings.set_values({"preset": "cpu", "pretrain_epochs": 3, "finetune_epochs": 40, "window": "auto",
                                  "device": "auto", "output_folder": out})
        if not dock.run():
            raise RuntimeError("The dock refused to run: " + iface.messageBar().currentItem().text())
        step("run started")
        state["deadline"] = time.monotonic() + 780
        QTimer.singleShot(1000, guarded(wait))

    def wait():
        dock = state["dock"]
        if dock.task is not None:
            if time.monotonic() > state["deadline"]:
                raise RuntimeError("The run did not finish in time; last phase: " + dock.phase_label.text())
            state.setdefault("phases", set()).add(dock.phase_label.text().split(":")[0])
            QTimer.singleShot(1000, guarded(wait))
            return
        QgsApplication.processEvents()  # the dock posts its message right after the task
        step("run finished")
        layers = {l.name(): l for l in QgsProject.instance().mapLayers().values()}
        messages = [f"{item.title()}: {item.text()}" for item in iface.messageBar().items()]
        message = next((m for m in messages if m.startswith("DiffCLIP")), "")
        status.update(message=message, messages=messages, phases=sorted(state.get("phases", ())), layers=sorted(layers),
                      outputs=sorted(os.listdir(out)) if os.path.isdir(out) else [])
        classified = layers.get("DiffCLIP classification 001")
        if classified is None:
            raise RuntimeError("No classified layer was added: " + message)
        status["renderer"] = classified.renderer().type()
        problems = [p for p, bad in (("the classified layer is not paletted", status["renderer"] != "paletted"),
                                     ("no held-out accuracy in the message", "accuracy" not in message))
                    if bad]
        iface.setActiveLayer(classified)
        iface.mapCanvas().refreshAllLayers()
        QTimer.singleShot(3000, guarded(lambda: finish(not problems, "; ".join(problems))))

    builtins._diffclip_e2e = guarded  # keeps the closures alive for the timers
    QTimer.singleShot(3000, guarded(setup))


main()
