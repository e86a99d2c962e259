"""Multi-process training (PyTorch DDP, gloo backend on CPU) through
``torchrun``, as a user would launch it on several GPUs."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, argv

import train


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="no torchrun")
def test_remixit_runs_under_torchrun(demo_data, tmp_path):
    sup = str(tmp_path / "sup")
    train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                    output_folder=sup))
    out = str(tmp_path / "ddp")
    args = argv("remixit_demo.yaml", data_folder=demo_data,
                output_folder=out, teacher_source=os.path.join(sup, "save"),
                number_of_epochs=2, skip_prep=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc_per_node=2", os.path.join(ROOT, "train.py"), *args,
         "--distributed_backend=gloo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(out, "summary.csv")) as f:
        assert [line.split(",")[0] for line in f][1:] == [
            "mixture", "teacher", "student"]
    log = open(os.path.join(out, "train_log.txt")).read()
    assert "epoch: 2" in log
