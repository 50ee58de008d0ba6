"""Outputs written through temporary files get normal permissions (mkstemp alone gives 0600)."""
import os
import stat

from diffclip_qgis.core.files import temp_file_beside


def test_temp_file_beside_uses_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        tmp = temp_file_beside(str(tmp_path / "out.tif"), ".tif")
    finally:
        os.umask(old)
    assert os.path.dirname(tmp) == str(tmp_path) and os.path.basename(tmp).startswith(".out.tmp-")
    assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o644


# -- outputs never replace inputs -----------------------------------------------------------------
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from diffclip_qgis.core.files import (  # noqa: E402
    CSV_TABLE,
    GEOPACKAGE,
    GEOTIFF,
    HTML_REPORT,
    MODEL_FILE,
    OutputPathError,
    PendingOutputs,
    check_output_kinds,
    check_output_paths,
    check_writable,
    keep_alive,
    remove_stale_temps,
    temp_folder_beside,
    write_text,
)


def _file(path, text="x"):
    path.write_text(text)
    return str(path)


def test_output_equal_to_an_input_is_refused_through_symlinks_and_dots(tmp_path):
    hsi = _file(tmp_path / "hsi.tif")
    (tmp_path / "link").symlink_to(tmp_path)
    for out in (hsi, str(tmp_path / "." / "hsi.tif"), str(tmp_path / "link" / "hsi.tif")):
        with pytest.raises(OutputPathError, match="OUTPUT .* is the same file as the input INPUTS"):
            check_output_paths({"INPUTS": [hsi]}, {"OUTPUT": [out]})


def test_hard_link_counts_as_the_same_file(tmp_path):
    hsi = _file(tmp_path / "hsi.tif")
    os.link(hsi, tmp_path / "copy.tif")
    with pytest.raises(OutputPathError, match="INPUTS"):
        check_output_paths({"INPUTS": [hsi]}, {"OUTPUT": [str(tmp_path / "copy.tif")]})


def test_two_outputs_on_one_file_are_refused_naming_both(tmp_path):
    out = str(tmp_path / "map.tif")
    with pytest.raises(OutputPathError, match="OUTPUT_CONFIDENCE and OUTPUT are the same file"):
        check_output_paths({}, {"OUTPUT": [out], "OUTPUT_CONFIDENCE": [out]})
    check_output_paths({"INPUTS": [str(tmp_path / "hsi.tif")]}, {"OUTPUT": [out], "OUTPUT_MODEL": [""]})


def test_output_folder_must_exist_and_take_files(tmp_path):
    with pytest.raises(OutputPathError, match="folder of OUTPUT does not exist"):
        check_writable({"OUTPUT": (str(tmp_path / "nope" / "map.tif"), 10)})
    with pytest.raises(OutputPathError, match="Cannot write OUTPUT into /proc") as refused:
        check_writable({"OUTPUT": ("/proc/map.tif", 10)})
    assert "disk full?" not in str(refused.value) and "Could not write" not in str(refused.value)   # the cause alone
    check_writable({"OUTPUT": (str(tmp_path / "map.tif"), 10)})
    assert os.listdir(tmp_path) == []  # the probe file is gone


def test_not_enough_free_space_is_refused(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100 << 20, 99 << 20, 1 << 20))
    with pytest.raises(OutputPathError, match="Not enough free space for OUTPUT, OUTPUT_CONFIDENCE"):
        check_writable({"OUTPUT": (str(tmp_path / "a.tif"), 1000), "OUTPUT_CONFIDENCE": (str(tmp_path / "b.tif"), 10)})


def test_pending_outputs_appear_together_or_not_at_all(tmp_path):
    a, b = tmp_path / "a.html", tmp_path / "b.csv"
    a.write_text("previous")
    with pytest.raises(RuntimeError):
        with PendingOutputs() as outputs:
            write_text(str(a), "new a", outputs)
            assert a.read_text() == "previous"
            raise RuntimeError("second output failed")
    assert a.read_text() == "previous" and sorted(os.listdir(tmp_path)) == ["a.html"]
    with PendingOutputs() as outputs:
        write_text(str(a), "new a", outputs)
        write_text(str(b), "new b", outputs)
    assert a.read_text() == "new a" and b.read_text() == "new b" and sorted(os.listdir(tmp_path)) == ["a.html", "b.csv"]


def _write_a_and_b(tmp_path, error, during=lambda: None):
    """Write a.html and b.csv together (a.html held 'previous a'), expecting ``error``; what is left."""
    a, b = tmp_path / "a.html", tmp_path / "b.csv"
    a.write_text("previous a")
    with pytest.raises(OSError, match=error):
        with PendingOutputs() as outputs:
            write_text(str(a), "new a", outputs)
            write_text(str(b), "new b", outputs)
            during()
    assert sorted(os.listdir(tmp_path)) == ["a.html", "b.csv"]  # no temporary file or moved-aside copy left
    return a.read_text(), b


def test_a_target_that_cannot_be_moved_aside_puts_the_earlier_ones_back(tmp_path):
    (tmp_path / "b.csv").mkdir()   # a folder: the checks before a run refuse it, PendingOutputs alone does not
    a, b = _write_a_and_b(tmp_path, "Could not write .*b.csv: Not a directory")
    assert a == "previous a" and b.is_dir()


def test_a_failure_after_some_outputs_were_placed_restores_them(tmp_path, monkeypatch):
    (tmp_path / "b.csv").write_text("previous b")
    replace = os.replace

    def failing(src, dst):
        if dst == str(tmp_path / "b.csv") and ".tmp-" in os.path.basename(src):
            raise OSError(28, "No space left on device")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    a, b = _write_a_and_b(tmp_path, "Could not write .*b.csv: No space left on device")
    assert a == "previous a" and b.read_text() == "previous b"


def test_sigterm_in_the_middle_of_a_commit_puts_the_old_outputs_back(tmp_path, monkeypatch):
    from diffclip_qgis.core import files

    (tmp_path / "b.csv").write_text("previous b")
    replace = os.replace

    def dying(src, dst):
        if dst == str(tmp_path / "b.csv") and ".tmp-" in os.path.basename(src):   # a.html is already placed
            for pending in list(files._live):   # what the SIGTERM handler does before the process ends
                pending.discard()
            raise SystemExit(-15)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", dying)
    a, b = tmp_path / "a.html", tmp_path / "b.csv"
    a.write_text("previous a")
    with pytest.raises(SystemExit):
        with PendingOutputs() as outputs:
            write_text(str(a), "new a", outputs)
            write_text(str(b), "new b", outputs)
    assert a.read_text() == "previous a" and b.read_text() == "previous b"
    assert sorted(os.listdir(tmp_path)) == ["a.html", "b.csv"]


def test_an_old_output_deleted_during_the_run_is_simply_replaced(tmp_path):
    a = tmp_path / "a.html"
    a.write_text("previous a")
    with PendingOutputs() as outputs:
        write_text(str(a), "new a", outputs)
        a.unlink()
    assert a.read_text() == "new a" and os.listdir(tmp_path) == ["a.html"]


def test_an_output_another_run_writes_meanwhile_is_not_replaced(tmp_path):
    # e.g. a second QGIS session that picked the same numbered name
    a, b = _write_a_and_b(tmp_path, "Could not write .*b.csv: another run or program wrote it",
                          lambda: (tmp_path / "b.csv").write_text("the other run's"))
    assert a == "previous a" and b.read_text() == "the other run's"


def test_an_output_another_run_writes_while_this_one_trains_is_not_replaced(tmp_path):
    # e.g. a second run given the same path by hand: it wrote the file before this one began writing
    a = tmp_path / "a.html"
    outputs = PendingOutputs([str(a)])   # when the job starts: no a.html yet
    a.write_text("the other run's")
    with pytest.raises(OSError, match="Could not write .*a.html: another run or program wrote it"):
        with outputs:
            write_text(str(a), "new a", outputs)
    assert a.read_text() == "the other run's" and os.listdir(tmp_path) == ["a.html"]


def test_a_geopackage_a_program_opens_for_editing_or_saves_edits_to_meanwhile_is_not_replaced(tmp_path):
    """QGIS edits a GeoPackage in write-ahead-log mode: name.gpkg-wal is there while it edits, and holds the edits it
    saved; a replaced file would lose them."""
    sample, log = tmp_path / "s.gpkg", tmp_path / "s.gpkg-wal"
    sample.write_text("the sample")
    outputs = PendingOutputs([str(sample)])
    log.write_bytes(b"")   # opened for editing, nothing saved yet
    with pytest.raises(OSError, match="another run or program wrote it \\(or opened it for editing\\)"):
        with outputs:
            write_text(str(sample), "new", outputs)
    outputs = PendingOutputs([str(sample)])
    log.write_bytes(b"reference classes filled in")
    with pytest.raises(OSError, match="another run or program wrote it"):
        with outputs:
            write_text(str(sample), "newer", outputs)
    assert sample.read_text() == "the sample" and log.read_bytes() == b"reference classes filled in"


def test_an_interrupt_in_the_middle_of_a_commit_puts_the_old_outputs_back(tmp_path, monkeypatch):
    (tmp_path / "b.csv").write_text("previous b")
    replace = os.replace

    def interrupted(src, dst):
        if dst == str(tmp_path / "b.csv") and ".tmp-" in os.path.basename(src):   # a.html is already placed
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted)
    a = tmp_path / "a.html"
    a.write_text("previous a")
    with pytest.raises(KeyboardInterrupt):
        with PendingOutputs() as outputs:
            write_text(str(a), "new a", outputs)
            write_text(str(tmp_path / "b.csv"), "new b", outputs)
    assert a.read_text() == "previous a" and (tmp_path / "b.csv").read_text() == "previous b"
    assert sorted(os.listdir(tmp_path)) == ["a.html", "b.csv"]


def test_a_folder_as_output_is_refused_before_any_work(tmp_path):
    (tmp_path / "map.tif").mkdir()
    with pytest.raises(OutputPathError, match=r"OUTPUT \(.*map.tif\) is a folder"):
        check_writable({"OUTPUT": (str(tmp_path / "map.tif"), 10)})


def test_an_output_whose_extension_says_another_format_is_refused():
    check_output_kinds({"OUTPUT": ("map.TIF", GEOTIFF), "OUTPUT_MODEL": ("", MODEL_FILE), "OUTPUT_CSV": ("t.csv", CSV_TABLE)})
    for name, path, kind, extension in [("OUTPUT", "val.shp", GEOPACKAGE, ".gpkg"), ("OUTPUT", "points", GEOPACKAGE, ".gpkg"),
                                        ("OUTPUT_MODEL", "m.tif", MODEL_FILE, ".pt"),
                                        ("OUTPUT_HTML", "r.csv", HTML_REPORT, ".html")]:
        with pytest.raises(OutputPathError, match=rf"{name}: DiffCLIP writes a {kind[0]} here; give the file a "
                                                  rf"\{extension} extension instead of '{path}'"):
            check_output_kinds({name: (path, kind)})


def test_working_folders_are_removed_and_stale_ones_swept(tmp_path):
    with temp_folder_beside(str(tmp_path / "map.tif"), "smoothing") as folder:
        assert os.path.dirname(folder) == str(tmp_path) and os.path.basename(folder).startswith(".diffclip-smoothing-")
        _file(tmp_path / folder / "raw.tif")
    assert os.listdir(tmp_path) == []
    old, fresh = tmp_path / ".diffclip-parts-abcd1234", tmp_path / ".diffclip-parts-efgh5678"
    user = tmp_path / "diffclip-parts-abcd1234"   # not hidden: not ours
    for folder in (old, fresh, user):
        folder.mkdir()
        _file(folder / "0_0.npz")
    day_ago = time.time() - 2 * 24 * 3600
    for folder in (old, user):
        os.utime(folder / "0_0.npz", (day_ago, day_ago))
        os.utime(folder, (day_ago, day_ago))
    with temp_folder_beside(str(tmp_path / "map.tif"), "smoothing"):
        pass
    assert sorted(os.listdir(tmp_path)) == [fresh.name, user.name]


def test_a_working_folder_in_use_is_not_swept(tmp_path):
    """An old folder whose file is still being written, or that a long phase keeps alive, stays."""
    writing, kept = tmp_path / ".diffclip-smoothing-abcd1234", tmp_path / ".diffclip-smoothing-efgh5678"
    day_ago = time.time() - 2 * 24 * 3600
    for folder in (writing, kept):
        folder.mkdir()
        os.utime(_file(folder / "raw.tif"), (day_ago, day_ago))
        os.utime(folder, (day_ago, day_ago))
    os.utime(writing / "raw.tif")
    keep_alive(str(kept))
    assert remove_stale_temps(str(tmp_path)) == []
    os.utime(kept, (day_ago, day_ago))
    assert remove_stale_temps(str(tmp_path)) == [str(kept)]


def test_stale_temp_files_older_than_a_day_are_swept(tmp_path):
    old = _file(tmp_path / ".map.tmp-abcd1234.tif")
    fresh = _file(tmp_path / ".map.tmp-efgh5678.tif")
    user = _file(tmp_path / "map.tmp-abcd1234.tif")  # not hidden: not ours
    day_ago = time.time() - 2 * 24 * 3600
    for p in (old, user):
        os.utime(p, (day_ago, day_ago))
    with PendingOutputs() as outputs:
        write_text(str(tmp_path / "map.txt"), "x", outputs)
    assert not os.path.exists(old) and os.path.exists(fresh) and os.path.exists(user)
    assert remove_stale_temps(str(tmp_path), max_age=-1) == [fresh]


SIGTERM_CHILD = """
import os, sys, time
sys.path.insert(0, sys.argv[2])
from diffclip_qgis.core.files import PendingOutputs, temp_folder_beside, write_text
target = os.path.join(sys.argv[1], "map.csv")
with PendingOutputs() as outputs, temp_folder_beside(target, "smoothing") as folder:
    write_text(target, "partial", outputs)
    open(os.path.join(folder, "raw.tif"), "w").close()
    print("written", flush=True)
    time.sleep(60)
"""


def test_sigterm_removes_pending_temp_files_and_working_folders(tmp_path):
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__import__("diffclip_qgis").__file__)))
    child = subprocess.Popen([sys.executable, "-c", SIGTERM_CHILD, str(tmp_path), package_root],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "written"
    assert any(n.startswith(".map.tmp-") for n in os.listdir(tmp_path))
    assert any(n.startswith(".diffclip-smoothing-") for n in os.listdir(tmp_path))
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM
    assert os.listdir(tmp_path) == []


SIGTERM_IN_COMMIT_CHILD = """
import os, sys, time
sys.path.insert(0, sys.argv[2])
from diffclip_qgis.core.files import PendingOutputs, write_text
replace = os.replace
def slow(src, dst):   # the moment a SIGTERM used to cost the old outputs: between the moves of a commit
    replace(src, dst)
    if ".old-" in dst:
        print("moving", flush=True)
        time.sleep(1)
os.replace = slow
with PendingOutputs() as outputs:
    for name in ("a.csv", "b.csv", "c.csv"):
        write_text(os.path.join(sys.argv[1], name), "new", outputs)
"""


def test_sigterm_waits_until_the_moves_of_a_commit_are_done(tmp_path):
    for name in ("a.csv", "b.csv", "c.csv"):
        (tmp_path / name).write_text("old")
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__import__("diffclip_qgis").__file__)))
    child = subprocess.Popen([sys.executable, "-c", SIGTERM_IN_COMMIT_CHILD, str(tmp_path), package_root],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "moving"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "b.csv", "c.csv"]
    assert {(tmp_path / n).read_text() for n in ("a.csv", "b.csv", "c.csv")} == {"new"}


def test_an_interrupt_before_a_target_was_moved_aside_leaves_it_in_place(tmp_path, monkeypatch):
    (tmp_path / "a.csv").write_text("previous a")
    replace = os.replace

    def interrupted(src, dst):
        if ".old-" in os.path.basename(dst):   # the placeholder exists, the move has not happened
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with PendingOutputs() as outputs:
            write_text(str(tmp_path / "a.csv"), "new a", outputs)
    assert os.listdir(tmp_path) == ["a.csv"] and (tmp_path / "a.csv").read_text() == "previous a"


def test_the_sweep_takes_only_this_modules_files(tmp_path):
    day_ago = time.time() - 2 * 24 * 3600
    ours = [_file(tmp_path / ".v.tmp-abcd1234.gpkg-journal"), _file(tmp_path / ".m.tmp-abcd1234.pt.tmp"),
            _file(tmp_path / ".map.tmp-abcd1234.tif.aux.xml")]
    users = [_file(tmp_path / ".notes.tmp-abcdefgh.txt"), tmp_path / ".diffclip-mine-abcdefgh"]
    users[1].mkdir()
    for path in ours + users:
        os.utime(path, (day_ago, day_ago))
    assert sorted(remove_stale_temps(str(tmp_path))) == sorted(str(p) for p in ours)
    assert all(os.path.exists(p) for p in users)
