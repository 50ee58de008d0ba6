"""Every user-visible string of the dock and plugin is translated to Simplified Chinese, and the .qm loads."""
import ast
import os
import xml.etree.ElementTree as ET

from qgis.PyQt.QtCore import QCoreApplication, QSettings, QTranslator

from test_dock_support import dock, iface  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TS = os.path.join(ROOT, "i18n", "diffclip_zh_CN.ts")
QM = os.path.join(ROOT, "build", "diffclip_qgis", "i18n", "diffclip_zh_CN.qm")
SOURCES = {"DiffClipDock": os.path.join(ROOT, "diffclip_qgis", "gui"),
           "DiffClipPlugin": os.path.join(ROOT, "diffclip_qgis", "plugin.py")}


def tr_calls(path):
    """(first argument node, line) of every ``tr(...)`` call in a file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    return [(node.args[0], node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tr" and node.args]


def source_strings():
    strings, problems = set(), []
    for context, location in SOURCES.items():
        files = [location] if location.endswith(".py") else [
            os.path.join(location, n) for n in sorted(os.listdir(location)) if n.endswith(".py")]
        for path in files:
            for arg, line in tr_calls(path):
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    strings.add((context, arg.value))
                else:
                    problems.append(f"{os.path.relpath(path, ROOT)}:{line}: tr() needs a literal string")
    return strings, problems


def ts_translations():
    root = ET.parse(TS).getroot()
    return {(c.findtext("name"), m.findtext("source")): m.findtext("translation") or ""
            for c in root.iter("context") for m in c.iter("message")}


def test_every_tr_string_has_a_chinese_translation():
    strings, problems = source_strings()
    assert not problems, "\n".join(problems)
    translations = ts_translations()
    missing = sorted(s for s in strings if not translations.get(s))
    assert not missing, "Add these to i18n/diffclip_zh_CN.ts:\n" + "\n".join(f"{c}: {s!r}" for c, s in missing)
    assert len(strings) > 100
    for (context, source), text in translations.items():
        fields = [f for f in source.split("{")[1:]]
        assert all("{" + f.split("}")[0] + "}" in text for f in fields), f"placeholders differ: {source!r}"


def test_compiled_translation_translates_the_dock(iface):
    from qgis.PyQt.QtCore import Qt

    from diffclip_qgis.gui import tr
    from diffclip_qgis.gui.dock import DiffClipDock

    assert os.path.isfile(QM), "run `make plugin` (it compiles i18n/*.ts with lrelease)"
    translator = QTranslator()
    assert translator.load(QM)
    QCoreApplication.installTranslator(translator)
    try:
        assert tr("Run") == "运行"
        assert QCoreApplication.translate("DiffClipPlugin", "DiffCLIP Few-shot Classification") == "DiffCLIP 小样本分类"
        widget = DiffClipDock(iface)
        iface.addDockWidget(Qt.RightDockWidgetArea, widget)
        assert widget.run_button.text() == "运行"
        assert widget.windowTitle() == "DiffCLIP 小样本分类"
        assert "从零开始训练" in widget.classes.prompt_edit.toolTip()
        widget.shutdown()
        iface.removeDockWidget(widget)
        widget.deleteLater()
    finally:
        QCoreApplication.removeTranslator(translator)
    assert tr("Run") == "Run"


def test_plugin_loads_the_translation_for_a_chinese_locale(qgis_app):
    import diffclip_qgis

    settings = QSettings()
    previous = settings.value("locale/userLocale")
    settings.setValue("locale/userLocale", "zh_CN")
    try:
        plugin = diffclip_qgis.classFactory(None)
        assert plugin.translator is not None
        assert QCoreApplication.translate("DiffClipDock", "Cancel") == "取消"
        plugin.unload()
        assert QCoreApplication.translate("DiffClipDock", "Cancel") == "Cancel"
    finally:
        if previous is None:
            settings.remove("locale/userLocale")
        else:
            settings.setValue("locale/userLocale", previous)
