#!/usr/bin/env python3
"""End-to-end test in the real QGIS desktop under Xvfb (``make e2e``).

Installs the assembled plugin (build/diffclip_qgis) into a fresh temporary QGIS profile,
enables it, and starts ``qgis --code tests/desktop/e2e_script.py`` on a 1366 x 768 screen. The
script opens the dock, presses "Load demo", clicks samples with the dock's map tool, runs a short
classification and writes a status JSON and screenshots (reports/e2e_desktop_running.png while
it runs, reports/e2e_desktop.png with the result). Exits non-zero when QGIS
reports a failure, writes no status, or runs past the timeout.
"""
import argparse
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN = os.path.join(ROOT, "build", "diffclip_qgis")
SCRIPT = os.path.join(ROOT, "tests", "desktop", "e2e_script.py")
REPORTS = os.path.join(ROOT, "reports")


def make_profile(base: str) -> None:
    """<base>/profiles/default with a copy of the plugin (safe from a concurrent `make plugin`), enabled."""
    profile = os.path.join(base, "profiles", "default")
    plugins = os.path.join(profile, "python", "plugins")
    os.makedirs(plugins)
    shutil.copytree(PLUGIN, os.path.join(plugins, "diffclip_qgis"))
    os.makedirs(os.path.join(profile, "QGIS"))
    # askToSaveMemoryLayers: the outputs lie in the temp folder, so quitting would ask about "temporary layers"
    with open(os.path.join(profile, "QGIS", "QGIS3.ini"), "w", encoding="utf-8") as f:
        f.write("[app]\naskToSaveMemoryLayers=false\n\n[PythonPlugins]\ndiffclip_qgis=true\n\n"
                "[qgis]\ncheckVersion=false\nshowTips=false\nwelcomePageNewsFeed\\disabled=true\n\n"
                "[locale]\noverrideFlag=true\nuserLocale=en_US\n")


def qgis_environment(out: str, status: str, screenshot: str) -> dict:
    """The desktop's environment: a real X display, torch from the venv, the plugin only from the profile."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "QGIS_PLUGINPATH")}
    build = os.path.join(ROOT, "build")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != build]
    paths += [p for p in site.getsitepackages() if p not in paths]  # this interpreter's (the venv's) torch
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(DIFFCLIP_E2E_OUT=out, DIFFCLIP_E2E_STATUS=status, DIFFCLIP_E2E_SCREENSHOT=screenshot)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=900, help="seconds before QGIS is killed (default 900)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary profile and outputs")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(PLUGIN, "metadata.txt")):
        print("build/diffclip_qgis is missing: run `make plugin` first (`make e2e` does).", file=sys.stderr)
        return 2
    for tool in ("xvfb-run", "qgis"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (`make setup` installs QGIS and Xvfb).", file=sys.stderr)
            return 2

    os.makedirs(REPORTS, exist_ok=True)
    base = tempfile.mkdtemp(prefix="diffclip-e2e-")
    status_path = os.path.join(REPORTS, "e2e_desktop.json")
    screenshot = os.path.join(REPORTS, "e2e_desktop.png")
    for stale in (status_path, screenshot):
        if os.path.exists(stale):
            os.remove(stale)
    make_profile(base)
    out = os.path.join(base, "outputs")
    command = ["xvfb-run", "-a", "-s", "-screen 0 1366x768x24", "qgis", "--nologo", "--noversioncheck",
               "--profiles-path", base, "--code", SCRIPT]
    log_path = os.path.join(REPORTS, "e2e_desktop.log")
    t0 = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, env=qgis_environment(out, status_path, screenshot), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = process.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            rc = None
    seconds = time.monotonic() - t0
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)

    if rc is None:
        print(f"FAIL: QGIS did not finish within {args.timeout} s (log: {log_path}).", file=sys.stderr)
        return 1
    if not os.path.isfile(status_path):
        print(f"FAIL: QGIS exited ({rc}) without writing {status_path} (log: {log_path}).", file=sys.stderr)
        return 1
    with open(status_path, encoding="utf-8") as f:
        status = json.load(f)
    print(json.dumps(status, indent=2, ensure_ascii=False))
    if not status.get("ok"):
        print(f"FAIL: {status.get('error', 'see the status file')} (log: {log_path}).", file=sys.stderr)
        return 1
    if rc != 0:
        print(f"FAIL: the run passed, but QGIS exited with status {rc} when it quit (log: {log_path}).",
              file=sys.stderr)
        return 1
    print(f"OK in {seconds:.0f} s: screenshot {screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
