#!/usr/bin/env python3
"""The main job: few-shot classification of the bundled demo scene, then its accuracy, through qgis_process.

    make demo            (= make plugin, then this script with the plugin environment)

Runs ``diffclip:fewshotclassify`` on the demo scene shipped in the plugin
(``build/diffclip_qgis/demo``: 64-band hyperspectral + 2-band LiDAR, 8 sample points per
class, the class prompts in demo_classes.json) with the cpu preset, then
``diffclip:accuracy`` against the demo ground truth, both with ``qgis_process.bin``
(headless QGIS). Writes into ``demo_output/``: classification.tif (+ .qml style),
confidence.tif, model.pt, accuracy_report.html and accuracy_table.csv; prints the exact
command lines, OA / AA / kappa, the paths and the wall time.

Options change the settings (defaults: the cpu preset, window auto; see --help).
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
DEMO = os.path.join(BUILD, "diffclip_qgis", "demo")
OUT = os.path.join(ROOT, "demo_output")
QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


def environment():
    """QGIS_PLUGINPATH (the assembled plugin), PYTHONPATH (torch from the venv), offscreen Qt."""
    env = dict(os.environ)
    env.setdefault("QGIS_PLUGINPATH", BUILD)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    # OpenMP threads that sleep instead of spinning between torch ops: on a shared or busy
    # 2-core machine spinning threads fight for the cores (measured: 159 s -> 85 s).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    try:
        import site

        paths += [p for p in site.getsitepackages() if p not in paths]
    except AttributeError:  # pragma: no cover
        pass
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def show(cmd):
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)


def enable_plugin(env):
    """``qgis_process.bin plugins enable diffclip_qgis`` (it exits with 1 when the plugin is enabled already)."""
    cmd = [QGIS_PROCESS, "plugins", "enable", "diffclip_qgis"]
    show(cmd)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0 and "already enabled" not in proc.stdout + proc.stderr:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("Could not enable the plugin in qgis_process: is QGIS_PLUGINPATH the build folder?")


def qgis_process(args, env, json_output=False):
    """Run qgis_process.bin; stream its log (text mode) or return its parsed --json answer."""
    cmd = [QGIS_PROCESS] + (["--json"] if json_output else []) + args
    show(cmd)
    if json_output:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"qgis_process failed (exit code {proc.returncode}).")
        return json.loads(proc.stdout)
    proc = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"qgis_process failed (exit code {proc.returncode}).")
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu", choices=["cpu", "paper"])
    parser.add_argument("--window", default="auto", choices=["auto", "3", "5", "7", "9", "11"])
    parser.add_argument("--pretrain-epochs", type=int, default=-1, help="-1 = the preset's")
    parser.add_argument("--epochs", type=int, default=-1, help="fine-tuning epochs; -1 = the preset's")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--smoothing", type=int, default=0)
    parser.add_argument("--out", default=OUT, help="output folder (default demo_output/)")
    args = parser.parse_args(argv)

    for name in ("demo_hsi.tif", "demo_lidar.tif", "demo_gt.tif", "demo_samples.gpkg", "demo_classes.json"):
        if not os.path.isfile(os.path.join(DEMO, name)):
            raise SystemExit(f"{os.path.join(DEMO, name)} is missing: run `make plugin` first (make demo does).")
    os.makedirs(args.out, exist_ok=True)
    out = {name: os.path.join(args.out, name) for name in
           ("classification.tif", "confidence.tif", "model.pt", "accuracy_report.html", "accuracy_table.csv")}
    env = environment()
    t0 = time.perf_counter()

    enable_plugin(env)
    qgis_process(["run", "diffclip:fewshotclassify",
                  f"--INPUTS={os.path.join(DEMO, 'demo_hsi.tif')}",
                  f"--INPUTS={os.path.join(DEMO, 'demo_lidar.tif')}",
                  f"--SAMPLES={os.path.join(DEMO, 'demo_samples.gpkg')}",
                  "--CLASS_FIELD=class_id",
                  f"--PROMPTS={os.path.join(DEMO, 'demo_classes.json')}",
                  f"--PRESET={args.preset}", f"--WINDOW={args.window}",
                  f"--PRETRAIN_EPOCHS={args.pretrain_epochs}", f"--EPOCHS={args.epochs}",
                  f"--DEVICE={args.device}", "--SEED=0", f"--SMOOTHING={args.smoothing}",
                  f"--OUTPUT={out['classification.tif']}",
                  f"--OUTPUT_CONFIDENCE={out['confidence.tif']}",
                  f"--OUTPUT_MODEL={out['model.pt']}"], env)
    t1 = time.perf_counter()
    answer = qgis_process(["run", "diffclip:accuracy",
                           f"--CLASSIFICATION={out['classification.tif']}",
                           f"--REFERENCE={os.path.join(DEMO, 'demo_gt.tif')}",
                           f"--OUTPUT_HTML={out['accuracy_report.html']}",
                           f"--OUTPUT_CSV={out['accuracy_table.csv']}"], env, json_output=True)
    for line in answer.get("log", {}).get("info", []):
        print(line)
    results = answer["results"]
    wall = time.perf_counter() - t0
    print()
    print(f"Overall accuracy (OA): {results['OA']:.2f}%")
    print(f"Average accuracy (AA): {results['AA']:.2f}%")
    print(f"Kappa (x 100):         {results['KAPPA']:.2f}")
    print()
    for path in out.values():
        print(f"  {path}")
    print(f"\nWall time: {wall:.1f} s (classification {t1 - t0:.1f} s, assessment {wall - (t1 - t0):.1f} s).")
    return results


if __name__ == "__main__":
    main()
