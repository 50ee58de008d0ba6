"""A real QgsApplication (offscreen) with Processing and the DiffCLIP provider, once per test session."""
import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
QGIS_PYTHON_PLUGINS = "/usr/share/qgis/python/plugins"  # where Debian puts the Processing framework
if QGIS_PYTHON_PLUGINS not in sys.path:
    sys.path.append(QGIS_PYTHON_PLUGINS)


@pytest.fixture(scope="session")
def qgis_app():
    """The running QgsApplication with Processing initialised and the plugin's provider registered."""
    from qgis.core import QgsApplication

    app = QgsApplication.instance()
    if app is None:
        QgsApplication.setPrefixPath("/usr", True)
        app = QgsApplication([], True)
        app.initQgis()
    import processing  # noqa: F401  (qgis' python/plugins/processing)
    from processing.core.Processing import Processing

    Processing.initialize()
    from diffclip_qgis.processing.provider import DiffClipProvider

    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("diffclip")
    if provider is None:
        provider = DiffClipProvider()  # keep a Python reference for the whole session
        registry.addProvider(provider)
    yield app
