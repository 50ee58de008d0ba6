"""`make gpu-check` runs on a machine without a GPU: smoke size on the CPU, CUDA-only checks skipped by name."""
import os
import subprocess
import sys

import pytest
import torch

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts",
                      "gpu_check.py")


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, run `make gpu-check` itself")
def test_gpu_check_runs_and_skips_cuda_parts_on_a_cpu(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path / "gpu.md")], capture_output=True, text=True,
                          timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (tmp_path / "gpu.md").read_text()
    assert "| CUDA unit tests | skipped | no CUDA GPU" in table
    assert "| forced out-of-memory: batch halving | skipped | no CUDA GPU" in table
    for check in ("paper preset end to end on the demo | ok", "1 Mpx, 64 + 2 bands, paper settings | ok"):
        assert check in table
    assert ("fp32 vs bf16 agreement (demo model) | ok" in table
            or "fp32 vs bf16 agreement (demo model) | skipped | cpu has no native bf16" in table)
