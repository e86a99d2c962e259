"""SpeechBrain's conventions: ruff (line length 80) and yamllint."""

import shutil
import subprocess

import pytest
from conftest import ROOT


@pytest.mark.parametrize("tool, args", [
    ("ruff", ["check", "speechbrain_remix", "tests", "tools", "train.py",
              "benchmarks"]),
    ("yamllint", ["-c", ".yamllint", "hparams"]),
])
def test_style(tool, args):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed (pip install -e '.[test]')")
    result = subprocess.run([tool, *args], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
