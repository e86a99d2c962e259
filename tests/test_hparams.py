"""Every YAML loads with only its folders overridden, and every top-level
key is used: referenced by another key or read by the code (the check
SpeechBrain runs on contributed recipes)."""

import glob
import os
import re

import pytest
from conftest import ROOT
from hyperpyyaml import load_hyperpyyaml

YAMLS = sorted(glob.glob(os.path.join(ROOT, "hparams", "*.yaml")))
# read by SpeechBrain itself (run options) or by HyperPyYAML
FRAMEWORK_KEYS = {"max_grad_norm", "__set_seed"}


def code_text():
    files = [os.path.join(ROOT, "train.py")] + glob.glob(
        os.path.join(ROOT, "speechbrain_remix", "**", "*.py"), recursive=True
    )
    return "\n".join(open(f).read() for f in files)


@pytest.mark.parametrize("path", YAMLS, ids=os.path.basename)
def test_every_key_is_used(path):
    text = open(path).read()
    code = code_text()
    keys = re.findall(r"^([A-Za-z_][\w]*):", text, flags=re.M)
    unused = [
        k for k in keys
        if k not in FRAMEWORK_KEYS
        and f"<{k}>" not in text
        and not re.search(rf"""(\.{k}\b|["']{k}["'])""", code)
    ]
    assert not unused, f"{os.path.basename(path)}: unused keys {unused}"


@pytest.mark.parametrize("path", YAMLS, ids=os.path.basename)
def test_loads_with_only_folders_overridden(path, tmp_path):
    with open(path) as f:
        hparams = load_hyperpyyaml(f, {
            "data_folder": str(tmp_path),
            "output_folder": str(tmp_path / "out"),
        })
    assert "brain_class" in hparams and "prepare" in hparams
