"""Plugin life cycle: Processing provider, toolbar button, menu entry and dock. Works without ``iface``."""
from __future__ import annotations

import os

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QCoreApplication, QLocale, QSettings, QTranslator, Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QApplication

PLUGIN_DIR = os.path.dirname(__file__)
MENU = "&DiffCLIP"
DOCK_OPEN = "DiffCLIP/dockOpen"  # the dock was open when QGIS last closed: show it again on start


def icon(name: str = "icon.svg") -> QIcon:
    """An icon from the plugin's resources folder."""
    return QIcon(os.path.join(PLUGIN_DIR, "resources", name))


def tr(text: str) -> str:
    return QCoreApplication.translate("DiffClipPlugin", text)


class DiffClipPlugin:
    """Registers the Processing provider and, in the desktop, the dock widget."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.action = None
        self.dock = None
        self.translator = self._install_translator()

    def _install_translator(self):
        locale = str(QSettings().value("locale/userLocale", QLocale().name()) or "")[:5]
        path = os.path.join(PLUGIN_DIR, "i18n", f"diffclip_{locale}.qm")
        if not os.path.isfile(path):
            path = os.path.join(PLUGIN_DIR, "i18n", f"diffclip_{locale[:2]}.qm")
        if not os.path.isfile(path):
            return None
        translator = QTranslator()
        if translator.load(path):
            QCoreApplication.installTranslator(translator)
            return translator
        return None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        from .processing.provider import DiffClipProvider

        self.provider = DiffClipProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return
        self.action = QAction(icon(), tr("DiffCLIP Few-shot Classification"), self.iface.mainWindow())
        self.action.setObjectName("diffclipShowDock")
        self.action.setCheckable(True)
        self.action.setToolTip(tr("Show the DiffCLIP dock: click samples, edit class prompts and classify"))
        self.action.toggled.connect(self.show_dock)
        self.iface.addToolBarIcon(self.action)  # the Plugins toolbar: visible in a new profile, unlike the Raster one
        self.iface.addPluginToRasterMenu(MENU, self.action)
        if QSettings().value(DOCK_OPEN, False, type=bool):
            self.action.setChecked(True)

    def show_dock(self, visible: bool = True):
        """Create the dock on first use (so torch loads only then) and show or hide it."""
        if self.dock is None:
            if not visible:
                return
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)   # torch loads: seconds the first time
            try:
                from .gui.dock import DiffClipDock

                self.dock = DiffClipDock(self.iface)
            finally:
                QApplication.restoreOverrideCursor()
            self.dock.setObjectName("DiffClipDock")
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
            self.dock.visibilityChanged.connect(self._dock_visibility_changed)
        self.dock.setVisible(visible)

    def _dock_visibility_changed(self, visible: bool):
        if self.action is not None and self.action.isChecked() != visible:
            self.action.blockSignals(True)
            self.action.setChecked(visible)
            self.action.blockSignals(False)

    def unload(self):
        """Remove everything this plugin added: provider, action, menu, dock, map tools and tasks."""
        if self.iface is not None:  # on exit QGIS hides its window, not the dock: isHidden() is the user's choice
            QSettings().setValue(DOCK_OPEN, self.dock is not None and not self.dock.isHidden())
        if self.dock is not None:
            self.dock.visibilityChanged.disconnect(self._dock_visibility_changed)
            self.dock.shutdown()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.action is not None:
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.iface.removeToolBarIcon(self.action)
            self.action.deleteLater()
            self.action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None
