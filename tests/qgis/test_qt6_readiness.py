"""QGIS 4 / Qt 6 readiness, checked by construction: no QGIS 4 build is available to run the plugin in.

Every module of ``diffclip_qgis/`` is parsed with ``ast`` and the names it uses are looked up in
this QGIS (3.22, PyQt5) by introspection:

* ``test_no_qt5_only_code`` fails on an unscoped Qt or QGIS enum member (``Qt.UserRole``,
  ``QgsTask.CanCancel``: the member's enum type is not the object it is read from; PyQt6 has only
  ``Qt.ItemDataRole.UserRole``), on a moved QGIS enum read through its old home
  (``QgsSymbol.SymbolType.Marker``, an alias of ``Qgis.SymbolType``), on an unscoped
  member read from an instance (``param.FlagAdvanced``), on a name that does not exist here, and on
  Qt 5-only API: ``exec_``, ``QRegExp``, ``QDesktopWidget``, ``QApplication.desktop()``,
  ``QVariant.Int``-style types, ``Qt.MidButton``, ``fontMetrics().width``, ``activated[str]``,
  ``qApp`` and direct ``PyQt5``/``PyQt6``/``sip`` imports (``qgis.PyQt`` maps them).
* QGIS enums newer than 3.22 go through ``qgis_compat.enum_value("new.Name", "old.Name")``: each
  call must name at least one that exists here, and the first that exists (the one used) must be scoped.
* ``test_qt_names_exist_in_pyqt6`` checks every Qt name the plugin touches (imported classes and the
  scoped chains read from them) against PyQt6 itself, in a separate interpreter: PyQt5 and PyQt6 do
  not share a process.
"""
import ast
import enum
import functools
import inspect
import json
import os
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import pytest

from diffclip_qgis.qgis_compat import resolve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "diffclip_qgis")

QT_MODULES = ("qgis.PyQt.QtCore", "qgis.PyQt.QtGui", "qgis.PyQt.QtWidgets")
QGIS_MODULES = ("qgis.core", "qgis.gui")

#: qgis.PyQt's own re-exports under Qt 6: classes that Qt 6 moved from QtWidgets to QtGui stay
#: importable from qgis.PyQt.QtWidgets (QGIS pull requests 55658 and 57467, QGIS 3.34 and later, kept
#: for 4.x). QGIS 3.22 has them in QtWidgets only, so that import is the one that works everywhere.
QGIS_QT6_REEXPORTS = {("qgis.PyQt.QtWidgets", name): "PyQt6.QtGui" for name in ("QAction", "QActionGroup", "QShortcut")}

#: Names that Qt 6 / PyQt6 removed, wherever they appear (name, attribute, import or def).
REMOVED = {
    "exec_": "use exec()",
    "QRegExp": "use QRegularExpression",
    "QRegExpValidator": "use QRegularExpressionValidator",
    "QDesktopWidget": "use QScreen (QWidget.screen(), QGuiApplication.screens())",
    "qApp": "use QApplication.instance()",
    "MidButton": "use Qt.MouseButton.MiddleButton",
    "QMatrix": "use QTransform",
    "QGLWidget": "use QOpenGLWidget",
    "QTextCodec": "gone from QtCore in Qt 6",
    "QStringRef": "gone in Qt 6",
    "QWebView": "QtWebKit is gone in Qt 6",
}
#: Modules never to import directly: qgis.PyQt maps them to the Qt of the running QGIS.
DIRECT_IMPORTS = ("PyQt5", "PyQt6", "sip", "PySide2", "PySide6")


def plugin_modules() -> List[str]:
    paths = []
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        paths += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return paths


def rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


# -- introspection -----------------------------------------------------------------------------------
def is_enum_member(value) -> bool:
    """A member of a Python enum or of a sip (PyQt5) enum type."""
    return isinstance(value, enum.Enum) or type(type(value)).__name__ == "enumtype"


def is_enum_type(obj) -> bool:
    return isinstance(obj, type) and (issubclass(obj, enum.Enum) or type(obj).__name__ == "enumtype")


@functools.lru_cache(maxsize=None)
def namespace(module_name: str):
    import importlib

    return importlib.import_module(module_name)


def check_chain(base: str, obj, attrs: List[str]) -> Tuple[Optional[str], List[str]]:
    """Walk ``base.attrs...`` from the class ``obj``: (problem or None, the part of the chain that names Qt/QGIS API).

    The walk goes on while it reads classes and enum types, and stops at the first method, value or
    enum member. An enum member must be read from its own enum type, and that enum type from the
    class that defines it (or a subclass): not through an alias left behind when QGIS moved it.
    """
    prev, owner, path = obj, None, [base]
    for attr in attrs:
        if not isinstance(prev, type):
            break
        try:
            value = getattr(prev, attr)
        except AttributeError:
            return (f"{'.'.join(path + [attr])} does not exist in this QGIS: a name newer than QGIS 3.22 goes "
                    f"through qgis_compat.enum_value(new, old)"), path + [attr]
        path.append(attr)
        if is_enum_member(value):
            etype = type(value)
            if prev is not etype:
                return (f"{'.'.join(path)} is an unscoped enum member: write "
                        f"{'.'.join(path[:-1])}.{etype.__name__}.{attr}"), path
            home = etype.__qualname__.rpartition(".")[0]
            if owner is not None and home and not any(k.__qualname__ == home for k in inspect.getmro(owner)):
                return (f"{'.'.join(path)} reads {etype.__qualname__} through an alias that QGIS 4 drops: write "
                        f"{etype.__qualname__}.{attr} (through qgis_compat.enum_value when QGIS 3.22 lacks it)"), path
            return None, path
        owner, prev = prev, value
    return None, path


@functools.lru_cache(maxsize=None)
def unscoped_member_names() -> Dict[str, Tuple[str, ...]]:
    """Names of enum members that Qt/QGIS classes expose unscoped (``FlagAdvanced``: QgsProcessingParameter...).

    Names that are also classes or enum types somewhere (``Type``) are left out: the check reads
    them from instances, where a class attribute of that name is no evidence of an enum member.
    """
    members: Dict[str, set] = {}
    types = set()
    for module_name in QGIS_MODULES + QT_MODULES:
        for class_name, cls in vars(namespace(module_name)).items():
            if not inspect.isclass(cls):
                continue
            types.add(class_name)
            for attr in dir(cls):
                if not attr[:1].isupper():
                    continue
                try:
                    value = getattr(cls, attr)
                except Exception:  # noqa: BLE001 (some sip descriptors raise on class access)
                    continue
                if inspect.isclass(value):
                    types.add(attr)
                elif is_enum_member(value) and type(value) is not cls:
                    members.setdefault(attr, set()).add(class_name)
    return {name: tuple(sorted(owners))[:3] for name, owners in members.items() if name not in types}


# -- the AST pass ----------------------------------------------------------------------------------------
def flatten(node: ast.Attribute) -> Tuple[ast.AST, List[str]]:
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return node, attrs[::-1]


def own_names(trees) -> set:
    """Names the plugin itself defines (assignments, attributes, functions, classes): never Qt enums."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return names


class ModuleScan:
    """One module: its Qt/QGIS imports, problems, Qt chains used, and enum_value() groups."""

    def __init__(self, path: str, own: set):
        self.path = path
        with open(path, encoding="utf-8") as f:
            self.tree = ast.parse(f.read(), filename=path)
        self.own = own
        self.imports: Dict[str, Tuple[str, str]] = {}  # local name -> (module, imported name)
        self.foreign: set = set()  # names imported from other modules (gdal, torch, ...): not Qt objects
        self.problems: List[str] = []
        self.qt_chains: List[Tuple[str, str]] = []  # (qgis.PyQt module, dotted chain)
        self.compat_groups: List[Tuple[str, ...]] = []

    def problem(self, node: ast.AST, text: str) -> None:
        self.problems.append(f"{rel(self.path)}:{getattr(node, 'lineno', 0)}: {text}")

    def run(self) -> "ModuleScan":
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                self._import_from(node)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in DIRECT_IMPORTS:
                        self.problem(node, f"import {alias.name}: import Qt through qgis.PyQt")
                    self.foreign.add(alias.asname or alias.name.split(".")[0])
        inner = {id(n.value) for n in ast.walk(self.tree) if isinstance(n, ast.Attribute)}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute) and id(node) not in inner:
                self._chain(node)
            elif isinstance(node, ast.Name) and node.id in REMOVED:
                self.problem(node, f"{node.id}: {REMOVED[node.id]}")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in REMOVED:
                self.problem(node, f"def {node.name}: {REMOVED[node.name]}")
            elif isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.Subscript):
                self._subscript(node)
        return self

    def _import_from(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level == 0 and module.split(".")[0] in DIRECT_IMPORTS:
            self.problem(node, f"from {module} import ...: import Qt through qgis.PyQt")
            return
        for alias in node.names:
            if alias.name in REMOVED:
                self.problem(node, f"import {alias.name}: {REMOVED[alias.name]}")
            if node.level == 0 and module in QT_MODULES + QGIS_MODULES:
                self.imports[alias.asname or alias.name] = (module, alias.name)
            else:
                self.foreign.add(alias.asname or alias.name)

    def _chain(self, node: ast.Attribute) -> None:
        base, attrs = flatten(node)
        for attr in attrs:
            if attr in REMOVED:
                self.problem(node, f".{attr}: {REMOVED[attr]}")
        if isinstance(base, ast.Name) and base.id in self.imports:
            module, name = self.imports[base.id]
            obj = getattr(namespace(module), name, None)
            if obj is None:
                self.problem(node, f"{name} is not in {module} here")
                return
            if name == "QVariant" and attrs and attrs[0][:1].isupper():
                self.problem(node, f"QVariant.{'.'.join(attrs)}: PyQt6 has no QVariant type enums: use "
                                   f"QMetaType.Type (qgis_compat.new_field for QgsField)")
                return
            problem, chain = check_chain(name, obj, attrs)
            if problem:
                self.problem(node, problem)
            if module in QT_MODULES:
                self.qt_chains.append((module, ".".join(chain)))
            return
        if not self.imports or (isinstance(base, ast.Name) and base.id in self.foreign):
            return  # a module without Qt/QGIS, or an object of another library (gdal.Open, nn.Linear)
        unscoped = unscoped_member_names()
        for attr in attrs:
            if attr in unscoped and attr not in self.own:
                self.problem(node, f".{attr} reads an unscoped enum member through an instance (as on "
                                   f"{', '.join(unscoped[attr])}): use the scoped name, or qgis_compat.enum_value")

    def _call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name == "desktop" and not node.args and isinstance(func, ast.Attribute):
            self.problem(node, "desktop(): QDesktopWidget is gone in Qt 6: use QScreen")
        if name == "width" and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call):
            inner = func.value.func
            inner_name = inner.id if isinstance(inner, ast.Name) else getattr(inner, "attr", "")
            if inner_name in ("fontMetrics", "QFontMetrics", "QFontMetricsF"):
                self.problem(node, "QFontMetrics.width() is gone in Qt 6: use horizontalAdvance()")
        if name == "enum_value":
            names = tuple(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
            if len(names) != len(node.args) or not names:
                self.problem(node, "enum_value() takes literal dotted names only (so that this test can check them)")
                return
            self.compat_groups.append(names)
            self._compat_group(node, names)

    def _compat_group(self, node: ast.AST, names: Tuple[str, ...]) -> None:
        """The first name that this QGIS has is the one enum_value returns: it must be scoped.

        (Later names are older spellings, for older QGIS: a newer QGIS may keep them as aliases.)
        """
        for dotted in names:
            head, *attrs = dotted.split(".")
            try:
                obj = resolve(head)
                resolve(dotted)
            except AttributeError:
                continue  # a newer spelling than this QGIS knows
            problem, _ = check_chain(head, obj, attrs)
            if problem:
                self.problem(node, f"enum_value({dotted!r}): {problem}")
            return
        self.problem(node, f"enum_value{names}: none of these exists in this QGIS")

    def _subscript(self, node: ast.Subscript) -> None:
        if (isinstance(node.value, ast.Attribute) and node.value.attr in ("activated", "currentIndexChanged",
                                                                          "highlighted")
                and isinstance(node.slice, ast.Name) and node.slice.id == "str"):
            self.problem(node, f"{node.value.attr}[str]: PyQt6 has no str overloads: use textActivated / "
                               f"currentTextChanged or the int signal")


@functools.lru_cache(maxsize=None)
def scans() -> Tuple[ModuleScan, ...]:
    paths = plugin_modules()
    trees = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            trees.append(ast.parse(f.read(), filename=path))
    own = own_names(trees)
    return tuple(ModuleScan(path, own).run() for path in paths)


# -- tests ----------------------------------------------------------------------------------------------
def test_scan_covers_the_gui_and_processing():
    names = {rel(s.path) for s in scans()}
    for expected in ("diffclip_qgis/plugin.py", "diffclip_qgis/gui/dock.py", "diffclip_qgis/processing/algorithm.py"):
        assert expected in names
    assert sum(len(s.qt_chains) for s in scans()) > 50  # the pass does see the Qt code


def test_no_qt5_only_code():
    problems = [p for s in scans() for p in s.problems]
    assert not problems, "Qt 5 / QGIS 3-only code (see the module docstring):\n" + "\n".join(problems)


def test_the_check_catches_qt5_code(tmp_path):
    """The detector itself: each kind of Qt 5-only code in a sample module is reported."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from qgis.core import Qgis, QgsSymbol, QgsTask\n"
        "from qgis.PyQt.QtCore import Qt, QVariant\n"
        "from qgis.PyQt.QtWidgets import QMessageBox, QApplication\n"
        "a = Qt.UserRole\n"
        "b = Qt.ItemDataRole.UserRole\n"
        "c = QgsTask.CanCancel\n"
        "d = Qgis.Warning\n"
        "e = QgsSymbol.SymbolType.Marker\n"
        "f = QMessageBox.Yes\n"
        "g = QVariant.Int\n"
        "h = param.FlagAdvanced\n"
        "dialog.exec_()\n"
        "QApplication.desktop()\n"
        "i = QMessageBox.StandardButton.Yes\n"
        "j = Qgis.MessageLevel.Warning\n")
    scan = ModuleScan(str(sample), set()).run()
    lines = sorted(int(p.split(":")[1]) for p in scan.problems)
    assert lines == [4, 6, 7, 8, 9, 10, 11, 12, 13], scan.problems


def test_enum_value_groups_are_checked():
    groups = [g for s in scans() for g in s.compat_groups]
    assert groups, "the plugin reads QGIS enums newer than 3.22 through qgis_compat.enum_value"
    for group in groups:
        assert len(group) >= 2, f"enum_value{group}: one name needs no helper"


def test_qgis_compat_helpers():
    from diffclip_qgis.qgis_compat import enum_value, new_field, resolve
    from qgis.core import Qgis, QgsProcessing

    assert resolve("Qgis.MessageLevel.Warning") == Qgis.MessageLevel.Warning
    raster = enum_value("Qgis.NoSuchEnum.Raster", "QgsProcessing.SourceType.TypeRaster")
    assert raster == QgsProcessing.SourceType.TypeRaster
    with pytest.raises(AttributeError, match="Qgis.NoSuchEnum.A, Qgis.NoSuchEnum.B"):
        enum_value("Qgis.NoSuchEnum.A", "Qgis.NoSuchEnum.B")
    field = new_field("class_name", "String", length=100)
    assert (field.name(), field.length(), int(field.type()), field.isNumeric()) == ("class_name", 100, 10, False)
    field = new_field("class_id", "Int")  # type ids are the same in QVariant.Type and QMetaType.Type
    assert (int(field.type()), field.isNumeric()) == (2, True)


def test_metadata_declares_qt6_and_qgis4():
    with open(os.path.join(ROOT, "metadata.txt"), encoding="utf-8") as f:
        entries = dict(line.strip().split("=", 1) for line in f if "=" in line and not line.startswith(" "))
    assert entries.get("supportsQt6") == "True"
    assert entries.get("qgisMinimumVersion") == "3.22"
    assert float(entries.get("qgisMaximumVersion", "0")) >= 4.0


# -- PyQt6 ----------------------------------------------------------------------------------------------
PYQT6_CHECK = r"""
import importlib, json, sys
names = json.load(sys.stdin)
missing = []
for module, dotted, alternatives in names:
    for candidate_module, candidate in alternatives:
        try:
            obj = importlib.import_module(candidate_module)
            for part in candidate.split("."):
                obj = getattr(obj, part)
            break
        except (ImportError, AttributeError):
            continue
    else:
        missing.append(f"{module}: {dotted}")
print(json.dumps(missing))
"""


def pyqt6_python() -> Optional[str]:
    """An interpreter that imports PyQt6 (DIFFCLIP_PYQT6_PYTHON, else this one), or None."""
    for python in (os.environ.get("DIFFCLIP_PYQT6_PYTHON"), sys.executable):
        if not python:
            continue
        probe = subprocess.run([python, "-c", "import PyQt6.QtCore, PyQt6.QtGui, PyQt6.QtWidgets"],
                               capture_output=True, text=True, timeout=120,
                               env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        if probe.returncode == 0:
            return python
    return None


def qt6_alternatives(module: str, dotted: str) -> List[Tuple[str, str]]:
    head = dotted.split(".")[0]
    pyqt6 = module.replace("qgis.PyQt.", "PyQt6.")
    options = [(pyqt6, dotted)]
    if (module, head) in QGIS_QT6_REEXPORTS:
        options.append((QGIS_QT6_REEXPORTS[(module, head)], dotted))
    return options


def pyqt6_missing(python: str, request) -> List[str]:
    """The entries of ``request`` [(label, dotted, [(PyQt6 module, dotted), ...]), ...] that PyQt6 has under no spelling."""
    done = subprocess.run([python, "-c", PYQT6_CHECK], input=json.dumps(request), capture_output=True, text=True,
                          timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def pyqt6():
    python = pyqt6_python()
    if python is None:
        pytest.skip("PyQt6 is not importable (pip install PyQt6, or set DIFFCLIP_PYQT6_PYTHON to a Python that has it)")
    return python


def test_the_pyqt6_check_catches_qt5_names(pyqt6):
    request = [(module, dotted, qt6_alternatives(module, dotted)) for module, dotted in (
        ("qgis.PyQt.QtCore", "Qt.UserRole"), ("qgis.PyQt.QtCore", "Qt.MouseButton.MidButton"),
        ("qgis.PyQt.QtCore", "QVariant.Type.Int"), ("qgis.PyQt.QtWidgets", "QApplication.desktop"),
        ("qgis.PyQt.QtWidgets", "QDesktopWidget"),
        ("qgis.PyQt.QtCore", "Qt.ItemDataRole.UserRole"), ("qgis.PyQt.QtWidgets", "QAction"))]
    assert pyqt6_missing(pyqt6, request) == [f"{m}: {d}" for m, d, _ in request[:5]]


def test_qt_names_exist_in_pyqt6(pyqt6):
    names = set()
    for scan in scans():
        for module, name in scan.imports.values():
            if module in QT_MODULES:
                names.add((module, name))
        names.update(scan.qt_chains)
    request = [(module, dotted, qt6_alternatives(module, dotted)) for module, dotted in sorted(names)]
    assert len(request) > 50
    from diffclip_qgis.qgis_compat import FIELD_TYPES

    for type_name, spellings in FIELD_TYPES.items():  # at least one spelling of each field type is Qt 6's
        request.append((f"qgis_compat.FIELD_TYPES[{type_name!r}]", " | ".join(spellings),
                        [("PyQt6.QtCore", s) for s in spellings]))
    missing = pyqt6_missing(pyqt6, request)
    assert not missing, "Not in PyQt6 under these names:\n" + "\n".join(missing)
