"""Architecture guard: the compute core imports only numpy, torch and the standard library,
and nothing in the plugin imports PyQt5/PyQt6 directly (Qt goes through qgis.PyQt)."""
import ast
import os
import sys

import pytest

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "..", "diffclip_qgis")
CORE_ALLOWED = {"numpy", "torch"}
FORBIDDEN_EVERYWHERE = {"PyQt5", "PyQt6", "PySide2", "PySide6", "sip"}


def python_files(folder):
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(root, name)


def top_level_imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


def test_core_imports_only_numpy_torch_and_stdlib():
    core = os.path.join(PACKAGE, "core")
    offenders = []
    for path in python_files(core):
        for module, line in top_level_imports(path):
            if module in CORE_ALLOWED or module in sys.stdlib_module_names or module == "__future__":
                continue
            offenders.append(f"{os.path.relpath(path, PACKAGE)}:{line} imports {module}")
    assert not offenders, "The compute core must not import these:\n" + "\n".join(offenders)


@pytest.mark.parametrize("subpackage", ["core", "gis"])
def test_no_qgis_or_qt_below(subpackage):
    offenders = [f"{os.path.relpath(p, PACKAGE)}:{line} imports {m}"
                 for p in python_files(os.path.join(PACKAGE, subpackage))
                 for m, line in top_level_imports(p) if m in {"qgis"} | FORBIDDEN_EVERYWHERE]
    assert not offenders, "\n".join(offenders)


def test_qt_only_through_qgis_pyqt():
    offenders = [f"{os.path.relpath(p, PACKAGE)}:{line} imports {m}"
                 for p in python_files(PACKAGE) for m, line in top_level_imports(p) if m in FORBIDDEN_EVERYWHERE]
    assert not offenders, "Import Qt through qgis.PyQt:\n" + "\n".join(offenders)


def test_core_is_relative_imports_only_within_package():
    """The core imports its siblings relatively, so it runs from the assembled folder or a copy of it."""
    offenders = [f"{os.path.relpath(p, PACKAGE)}:{line}" for p in python_files(os.path.join(PACKAGE, "core"))
                 for m, line in top_level_imports(p) if m == "diffclip_qgis"]
    assert not offenders, "\n".join(offenders)
