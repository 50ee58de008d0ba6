"""Plugin unload/reload leaves nothing behind; the dock works without torch and says how to install it."""
import sys

from qgis.core import QgsApplication, QgsProject
from qgis.gui import QgsMapTool, QgsRubberBand
from qgis.PyQt.QtWidgets import QApplication

from test_dock_support import (RUN_INPUTS, add_rasters, changeable, dock, iface, label_scene, pixel_centre,  # noqa: F401
                               process_events, scene, truth_grid, wait_for)

from diffclip_qgis.gui.dependencies import install_command, qgis_python, venv_alternative
from diffclip_qgis.gui.profile_samples import in_use


def diffclip_tasks():
    return [t for t in QgsApplication.taskManager().activeTasks() if t.description().startswith("DiffCLIP")]


def test_unload_and_reload_leave_no_tool_dock_provider_or_task(iface, scene, tmp_path):
    import diffclip_qgis

    registry = QgsApplication.processingRegistry()
    fixture_provider = registry.providerById("diffclip")
    if fixture_provider is not None:  # the session fixture's provider: the plugin registers its own
        registry.removeProvider(fixture_provider)
    add_rasters(iface, scene["paths"])
    try:
        for attempt in range(2):  # load, use, unload; then the same again (Plugin Reloader)
            plugin = diffclip_qgis.classFactory(iface)
            plugin.initGui()
            assert registry.providerById("diffclip") is not None
            assert (plugin.dock is not None) == bool(attempt)  # unloaded while open: it comes back open
            if not attempt:
                plugin.action.trigger()
            dock = plugin.dock
            assert dock is not None and dock in iface.docks and dock.isVisible()
            assert dock.classes.model.rowCount() == 3 * attempt  # the reloaded dock finds the project's classes
            label_scene(dock, iface, truth_grid(), per_class=2)
            from qgis.core import QgsPointXY
            from qgis.PyQt.QtCore import QPoint
            from qgis.PyQt.QtTest import QTest

            # (a new spot each time: Qt sends no move event to where the cursor already is)
            device = iface.canvas.getCoordinateTransform().transform(QgsPointXY(*pixel_centre(2, 2 + attempt)))
            QTest.mouseMove(iface.canvas.viewport(), QPoint(round(device.x()), round(device.y())))
            process_events()
            assert any(isinstance(i, QgsRubberBand) for i in iface.canvas.scene().items())
            dock.settings.set_values({"preset": "cpu", "pretrain_epochs": 5000, "finetune_epochs": 5, "window": "3",
                                      "device": "cpu", "output_folder": str(tmp_path / "out")})
            assert dock.run()
            wait_for(lambda: "pretraining" in dock.phase_label.text(), timeout=120)
            assert changeable(dock) == []

            samples = dock.store.layer().source().split("|")[0]
            plugin.unload()
            assert in_use(samples)   # the project still has the layer: no other QGIS may offer its file
            assert changeable(dock) == RUN_INPUTS   # (the dock is deleted at the next event loop)
            process_events(0.2)
            wait_for(lambda: not diffclip_tasks(), timeout=30)
            assert "The run was cancelled: the plugin was turned off." in iface.messages()
            assert iface.canvas.mapTool() is iface.pan_tool  # no tool before labelling: QGIS's pan tool
            assert not [t for t in iface.canvas.findChildren(QgsMapTool) if type(t).__name__ == "SampleMapTool"]
            assert not any(isinstance(i, QgsRubberBand) for i in iface.canvas.scene().items())
            assert iface.docks == [] and iface.toolbar == [] and iface.menu == []
            assert registry.providerById("diffclip") is None
            assert plugin.dock is None
        QgsProject.instance().clear()
        assert not in_use(samples)   # the layer is gone, and the lock with it
    finally:
        if registry.providerById("diffclip") is None:
            from diffclip_qgis.processing.provider import DiffClipProvider

            registry.addProvider(DiffClipProvider())


def test_a_project_saved_while_the_plugin_is_off_keeps_its_unsaved_sample_file(iface, scene, tmp_path):
    """Its samples are never offered to a new project (and so never deleted from there): the project names the file."""
    import diffclip_qgis
    from diffclip_qgis.gui.unsaved_offer import unsaved_leftovers

    registry = QgsApplication.processingRegistry()
    registry.removeProvider(registry.providerById("diffclip"))  # the plugin registers its own
    add_rasters(iface, scene["paths"])
    plugin = diffclip_qgis.classFactory(iface)
    plugin.initGui()
    try:
        plugin.action.trigger()
        label_scene(plugin.dock, iface, truth_grid(), per_class=1)
        samples = plugin.dock.store.layer().source().split("|")[0]
        plugin.action.trigger()   # the dock closed, then the plugin turned off
    finally:
        plugin.unload()
        from diffclip_qgis.processing.provider import DiffClipProvider

        registry.addProvider(DiffClipProvider())
    process_events(0.2)
    project_path = str(tmp_path / "survey.qgz")
    assert QgsProject.instance().write(project_path)   # nothing copies the samples: the project names the file
    QgsProject.instance().clear()
    assert not in_use(samples) and samples not in [path for path, _ in unsaved_leftovers()]
    assert QgsProject.instance().read(project_path)
    assert QgsProject.instance().mapLayersByName("DiffCLIP samples")[0].featureCount() == 3


def test_labelling_gives_back_the_previous_tool_and_the_dock_reopens_after_a_restart(iface, scene):
    import diffclip_qgis
    from qgis.gui import QgsMapToolZoom

    registry = QgsApplication.processingRegistry()
    registry.removeProvider(registry.providerById("diffclip"))  # the plugin registers its own
    add_rasters(iface, scene["paths"])
    zoom = QgsMapToolZoom(iface.canvas, False)
    iface.canvas.setMapTool(zoom)
    plugin = diffclip_qgis.classFactory(iface)
    plugin.initGui()
    try:
        assert plugin.action in iface.toolbar  # the Plugins toolbar (visible by default), and the Raster menu
        assert plugin.dock is None
        plugin.action.trigger()
        plugin.dock.inputs.set_checked(plugin.dock.inputs.listed_ids())   # labelling needs a ticked raster
        plugin.dock.tool_action.trigger()
        assert iface.canvas.mapTool() is plugin.dock.tool
        plugin.dock.tool_action.trigger()
        assert iface.canvas.mapTool() is zoom
        plugin.dock.tool_action.trigger()
    finally:
        plugin.unload()  # the dock is open: QGIS closing now would bring it back
    assert iface.canvas.mapTool() is zoom
    restarted = diffclip_qgis.classFactory(iface)
    restarted.initGui()
    try:
        assert restarted.dock is not None and restarted.dock.isVisible() and restarted.action.isChecked()
    finally:
        restarted.unload()
        from diffclip_qgis.processing.provider import DiffClipProvider

        registry.addProvider(DiffClipProvider())


def test_dock_without_torch_shows_the_install_command(iface, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    from qgis.PyQt.QtCore import Qt

    from diffclip_qgis.gui.dock import DiffClipDock

    dock = DiffClipDock(iface)
    iface.addDockWidget(Qt.RightDockWidgetArea, dock)
    try:
        process_events()
        panel = dock.torch_panel
        assert panel.isVisible()
        assert "import of torch halted" in panel.error.text() or "ImportError" in panel.error.text()
        command = panel.command.toPlainText()
        assert "-m pip install" in command and "torch" in command and '"numpy<2"' in command
        panel.copy()
        assert QApplication.clipboard().text() == command.split("\n\n")[0]
        assert not dock.run_button.isEnabled()
        assert "PyTorch is missing" in dock.settings.detected.text()
        dock.classes.add_class("water")  # classes and samples still work
        assert dock.classes.model.rowCount() == 1
        assert not dock.run()
        assert "PyTorch is missing" in iface.messages()[0]
    finally:
        dock.shutdown()
        iface.removeDockWidget(dock)
        dock.deleteLater()


def test_install_commands_per_platform():
    win = install_command("win32", cuda=False)
    assert win == 'python -m pip install torch "numpy<2" --index-url https://download.pytorch.org/whl/cpu'
    assert install_command("win32", cuda=True).endswith("/whl/cu121")
    mac = install_command("darwin", cuda=True, python="/Applications/QGIS.app/Contents/MacOS/bin/python3")
    assert mac == '/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install torch "numpy<2"'
    debian = install_command("linux", python="/usr/bin/python3.11", externally_managed=True)
    assert debian == ('/usr/bin/python3.11 -m pip install --user --break-system-packages torch "numpy<2" '
                      "--index-url https://download.pytorch.org/whl/cpu")
    assert "--break-system-packages" not in install_command("linux", python="python3", externally_managed=False)
    assert "--system-site-packages" in venv_alternative() and "cu121" in venv_alternative(cuda=True)


def test_install_command_names_qgis_own_python_not_the_first_on_path(monkeypatch):
    """Inside QGIS sys.executable can be a pyenv shim found on PATH: use the running interpreter's prefix."""
    import os

    monkeypatch.setattr(sys, "executable", "/root/.pyenv/shims/python3")
    expected = os.path.join(sys.exec_prefix, "bin", f"python{sys.version_info.major}.{sys.version_info.minor}")
    assert qgis_python("linux") == expected and os.path.isfile(expected)
    assert install_command("linux").startswith(expected + " -m pip install --user")
    assert qgis_python("win32") == "python"


def test_message_bar_buttons_go_with_the_dock(iface):
    from qgis.core import Qgis
    from qgis.PyQt.QtCore import Qt

    from diffclip_qgis.gui.dock import DiffClipDock

    dock = DiffClipDock(iface)
    iface.addDockWidget(Qt.RightDockWidgetArea, dock)
    pressed = []
    dock.notify("closed by hand", Qgis.MessageLevel.Success, [("Again", lambda: pressed.append(1))])
    iface.bar.popWidget(iface.bar.items()[0])
    dock.notify("still open", Qgis.MessageLevel.Success, [("Suggest samples", lambda: pressed.append(2))])
    assert [item.text() for item in iface.bar.items()] == ["still open"]
    dock.shutdown()   # as on unload: the button would act on a dock that is gone
    iface.removeDockWidget(dock)
    dock.deleteLater()
    process_events()
    assert iface.bar.items() == [] and pressed == []


def test_a_new_project_closes_the_last_runs_result(dock, iface):
    """Its text and its buttons (Suggest samples) were about the project that is gone."""
    from qgis.core import Qgis

    dock._report("Classified in 43 s", Qgis.MessageLevel.Success, [("Suggest samples", lambda: None)])
    assert iface.messages() == ["Classified in 43 s"]
    QgsProject.instance().clear()   # Project > New
    assert iface.messages() == []
