"""Shared test helpers: the repository root on ``sys.path`` (for
``train.py``), the overrides that shrink a recipe to seconds, the demo
corpus prepared once, and a workaround for Hypothesis' module scan."""

import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # for ``import train``
torch.set_num_threads(2)

# A model and run small enough for a whole recipe in a few seconds (keys of
# every YAML file) ...
TINY_RUN = {
    "num_blocks": 1,
    "enc_num_basis": 32,
    "enc_kernel_size": 21,
    "out_channels": 16,
    "in_channels": 32,
    "upsampling_depth": 3,
    "groups": 2,
    "batch_size": 4,
    "crop_seconds": 1.0,
    "number_of_epochs": 1,
    "save_enhanced": 1,
}
# ... and a demo corpus to match (keys of the demo YAML files).
TINY = {
    **TINY_RUN,
    "demo_folder": os.path.join(ROOT, "data", "demo"),
    "n_train": 8,
    "n_valid": 4,
    "n_test": 3,
}


# The smallest Sudo rm -rf, for unit tests of models and teacher updates.
TINY_MODEL = dict(num_blocks=1, enc_num_basis=16, out_channels=8,
                  in_channels=16, upsampling_depth=2, groups=2)


def argv(hparams, base=TINY, **overrides):
    """Command-line arguments of ``train.py hparams/<hparams>`` with the
    tiny settings ``base``, then ``overrides`` (which win)."""
    args = [os.path.join(ROOT, "hparams", hparams)]  # absolute paths stay
    for key, value in {**base, **overrides}.items():
        args.append(f"--{key}={value}")
    return args + ["--noprogressbar", "--device=cpu"]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """The demo corpus prepared once at the tiny size, with the YAML's
    other options, so that recipe runs skip preparing."""
    from speechbrain_remix.prepare.demo import prepare_demo

    folder = str(tmp_path_factory.mktemp("demo_data"))
    prepare_demo(TINY["demo_folder"], folder, sample_rate=16000,
                 n_train=TINY["n_train"], n_valid=TINY["n_valid"],
                 n_test=TINY["n_test"], snr_range=[-5.0, 5.0], seed=1234)
    return folder


@pytest.fixture(scope="session")
def teacher_file(tmp_path_factory):
    """A randomly initialised tiny Sudo rm -rf teacher (2 outputs)."""
    from speechbrain_remix.models import SudoRmRf

    keys = ("num_blocks", "enc_num_basis", "enc_kernel_size", "out_channels",
            "in_channels", "upsampling_depth", "groups")
    path = str(tmp_path_factory.mktemp("teacher") / "model.ckpt")
    torch.manual_seed(0)
    torch.save(SudoRmRf(**{k: TINY[k] for k in keys}).state_dict(), path)
    return path


def _shield_lazy_modules():
    """Hypothesis (>= 6.13x) reads ``__file__`` of every module in
    ``sys.modules`` during collection.  SpeechBrain's lazy modules (e.g.
    ``speechbrain.integrations.k2_fsa``) import an optional dependency on
    attribute access and raise when it is missing, which aborts the whole
    session.  A ``__file__`` of ``None`` on the not-yet-loaded ones lets the
    scan skip them without importing anything."""
    try:
        from speechbrain.utils.importutils import LazyModule
    except ImportError:  # pragma: no cover - speechbrain is a dependency
        return
    for module in list(sys.modules.values()):
        if isinstance(module, LazyModule) and module.lazy_module is None:
            if "__file__" not in vars(module):
                module.__file__ = None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    _shield_lazy_modules()
