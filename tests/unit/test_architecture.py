"""Architecture guard: the compute core imports only numpy, torch and the standard library; core,
gis and the workflow layer import no QGIS or Qt; torch is imported at module level only in the
core and the workflow layer; nothing imports PyQt5/PyQt6 directly (Qt goes through qgis.PyQt)."""
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


@pytest.mark.parametrize("subpackage", ["core", "gis", "workflow"])
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


#: Core and workflow modules without torch, which other layers may import at module level.
TORCH_FREE = ("core.classes", "core.source", "core.files", "core.progress", "core.config", "workflow.requests",
              "workflow.help", "workflow.phases", "workflow.ranges")


def _module_level_imports(path):
    """(module, level, line) of the imports in a module's body (not inside functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0, node.lineno
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level, node.lineno


def test_torch_only_in_core_and_workflow_at_module_level():
    """Elsewhere torch (and the core and workflow modules that need it) load inside functions,
    so the provider, the dock and the GDAL layer load without it."""
    offenders = []
    for path in python_files(PACKAGE):
        rel = os.path.relpath(path, PACKAGE)
        if rel.split(os.sep)[0] in ("core", "workflow"):
            continue
        for module, level, line in _module_level_imports(path):
            torch_free = module.endswith(TORCH_FREE) or module in ("core", "workflow")
            if module.split(".")[0] == "torch" or (level and module.startswith(("core", "workflow"))
                                                   and not torch_free):
                offenders.append(f"{rel}:{line} imports {'.' * level}{module}")
    assert not offenders, "Import these inside the functions that need them:\n" + "\n".join(offenders)


def test_torch_free_modules_import_without_torch():
    """The modules the guard above lets other layers import at module level really need no torch."""
    import subprocess

    modules = TORCH_FREE + ("workflow.accuracy", "gis.raster", "gis.samples", "gis.smoothing")
    code = "import sys; sys.modules['torch'] = None\nimport " + ", ".join(f"diffclip_qgis.{m}" for m in modules)
    root = os.path.dirname(os.path.abspath(PACKAGE))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
