"""Runs inside the real QGIS desktop (``qgis --code``), driven by tests/desktop/run_desktop_e2e.py.

At 1366 x 768, opens the DiffCLIP dock from its toolbar action, presses "Load demo" (rasters,
class list, samples), clicks one demo sample per class again with the dock's map tool, runs a
short classification in the background (screenshot while it runs: Run, progress, prompts),
waits for the classified layer, saves a screenshot and a status JSON, and quits QGIS.
Everything lives inside ``main()`` because QGIS executes this file
with ``exec``; the timers keep QGIS's event loop running between the steps.
"""


def main():
    import builtins
    import json
    import os
    import time
    import traceback

    from osgeo import ogr
    from qgis.core import QgsApplication, QgsPointXY, QgsProject
    from qgis.PyQt.QtCore import QPoint, QRect, Qt, QTimer
    from qgis.PyQt.QtTest import QTest
    from qgis.PyQt.QtWidgets import QToolBar
    from qgis.utils import iface, plugins

    status_path = os.environ["DIFFCLIP_E2E_STATUS"]
    screenshot = os.environ["DIFFCLIP_E2E_SCREENSHOT"]
    out = os.environ["DIFFCLIP_E2E_OUT"]
    status = {"ok": False, "steps": []}
    t0 = time.monotonic()
    state = {}

    def step(name):
        status["steps"].append(f"{time.monotonic() - t0:.1f}s {name}")

    def on_screen(widget):
        window = iface.mainWindow()
        top_left = widget.mapTo(window, QPoint(0, 0))
        return widget.isVisible() and window.rect().contains(QRect(top_left, widget.size()))

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
        QTimer.singleShot(500, iface.actionExit().trigger)   # as a user quits: the plugin must unload cleanly

    def guarded(function):
        def run():
            try:
                function()
            except Exception:  # noqa: BLE001
                finish(False, traceback.format_exc())
        return run

    def setup():
        iface.mainWindow().setGeometry(0, 0, 1366, 768)  # a laptop screen; Xvfb has no window manager
        if "diffclip_qgis" not in plugins:
            raise RuntimeError("The DiffCLIP plugin is not loaded in this profile.")
        plugin = plugins["diffclip_qgis"]
        demo = os.path.join(os.path.dirname(os.path.abspath(__import__("diffclip_qgis").__file__)), "demo")
        toolbar = next((t for t in iface.mainWindow().findChildren(QToolBar) if plugin.action in t.actions()), None)
        status["toolbar"] = toolbar.objectName() if toolbar else ""
        if toolbar is None or not toolbar.isVisible():
            raise RuntimeError("The dock's button is not on a visible toolbar.")
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
        QTest.mouseClick(dock.demo_button, Qt.LeftButton)  # Load demo: rasters, classes, samples, zoom
        QgsApplication.processEvents()
        loaded = sum(dock.store.counts().values())
        status.update(demo_samples=loaded, classes=len(dock.classes.model.classes()),
                      inputs=[QgsProject.instance().mapLayer(i).name() for i in dock.inputs.checked_ids()])
        if loaded != 96 or status["classes"] != 12 or status["inputs"] != ["demo_hsi", "demo_lidar"]:
            raise RuntimeError(f"Load demo gave {status}.")
        canvas.refresh()
        QgsApplication.processEvents()
        dock.tool_action.trigger()
        if canvas.mapTool() is not dock.tool:
            raise RuntimeError("The 'Label samples' action did not activate the map tool.")
        source = ogr.Open(os.path.join(demo, "demo_samples.gpkg"))
        points = {}
        for f in source.GetLayer(0):  # one sample per class, clicked again: it replaces the loaded one
            points.setdefault(f.GetField("class_id"), (f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY()))
        points = [(class_id, x, y) for class_id, (x, y) in sorted(points.items())]
        for class_id, x, y in points:
            dock.classes.select_class(class_id)
            device = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
            position = QPoint(round(device.x()), round(device.y()))
            QTest.mouseClick(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, position)
            QgsApplication.processEvents()
        counts = dock.store.counts()
        status.update(samples_clicked=len(points), samples_in_layer=sum(counts.values()),
                      sample_layer=dock.store.layer().source())
        if sum(counts.values()) != loaded:
            raise RuntimeError(f"{len(points)} clicks on loaded samples gave {sum(counts.values())} samples.")
        step(f"{len(points)} samples clicked")
        dock.settings.set_values({"preset": "cpu", "pretrain_epochs": 3, "finetune_epochs": 40, "window": "auto",
                                  "device": "auto", "output_folder": out})
        if not dock.run():
            raise RuntimeError("The dock refused to run: " + iface.messageBar().currentItem().text())
        step("run started")
        state["deadline"] = time.monotonic() + 780
        QTimer.singleShot(2500, guarded(running))

    def running():
        dock = state["dock"]
        QgsApplication.processEvents()
        status["on_screen_while_running"] = {name: on_screen(getattr(dock, name)) for name in (
            "run_button", "cancel_button", "progress", "phase_label")}
        view = dock.classes.view
        status["class_rows_without_scrolling"] = view.verticalScrollBar().maximum() == 0
        status["prompt_column_px"] = view.columnWidth(4)
        iface.mainWindow().grab().save(screenshot.replace(".png", "_running.png"))
        if not all(status["on_screen_while_running"].values()):
            raise RuntimeError(f"Not visible without scrolling at 1366 x 768: {status['on_screen_while_running']}")
        QTimer.singleShot(1000, guarded(wait))

    def wait():
        dock = state["dock"]
        if dock.task is not None:
            if time.monotonic() > state["deadline"]:
                raise RuntimeError("The run did not finish in time; last phase: " + dock.phase_label.text())
            state.setdefault("phases", set()).add(dock.phase_label.text().split(":")[0])
            QTimer.singleShot(1000, guarded(wait))
            return
        # The dock posts its message from the event loop right after the task: wait for it (up to 10 s), in
        # timers of their own, since a timer's own processEvents() does not run other due timers.
        messages = [f"{item.title()}: {item.text()}" for item in iface.messageBar().items()]
        message = next((m for m in messages if m.startswith("DiffCLIP")), "")
        state.setdefault("message_deadline", time.monotonic() + 10)
        if not message and time.monotonic() < state["message_deadline"]:
            QTimer.singleShot(200, guarded(wait))
            return
        step("run finished")
        layers = {l.name(): l for l in QgsProject.instance().mapLayers().values()}
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
