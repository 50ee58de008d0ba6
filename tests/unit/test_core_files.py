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
