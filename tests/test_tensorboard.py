"""``tensorboard: True`` in a YAML: the epoch stats of ``train_log.txt``
also as TensorBoard scalars under ``<output_folder>/tensorboard``; and
``speechbrain-remix plot`` on the folder of that real run."""

import glob
import os
from types import SimpleNamespace

import pytest
from conftest import ROOT, argv
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

import train
from speechbrain_remix.cli import main as cli
from speechbrain_remix.plots import read_train_log
from speechbrain_remix.reporting import TensorBoardStats


@pytest.fixture(scope="module")
def run(demo_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tensorboard_run"))
    train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                    output_folder=out, number_of_epochs=2,
                    tensorboard=True))
    return out


def test_tensorboard_scalars_are_the_train_log_stats(run):
    files = glob.glob(os.path.join(run, "tensorboard", "events.out.*"))
    assert len(files) == 1
    events = EventAccumulator(files[0])
    events.Reload()
    log = read_train_log(os.path.join(run, "train_log.txt"))
    assert log["epoch"] == [1.0, 2.0]
    for tag, column in [("loss/valid", "valid loss"),
                        ("loss/train", "train loss"), ("lr", "lr")]:
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2]  # the epoch
        # train_log.txt rounds to 3 significant digits (%.2e)
        for s, logged in zip(scalars, log[column]):
            assert s.value == pytest.approx(logged, rel=6e-3), tag


def test_tensorboard_is_off_by_default_and_opens_lazily(tmp_path):
    """The demo YAMLs say ``tensorboard: False``; with True, nothing is
    written before the first epoch ends (a Brain built only to enhance,
    ``runs.load_run``, leaves no events file in the run folder)."""
    for name in ("supervised_demo.yaml", "remixit_demo.yaml"):
        with open(os.path.join(ROOT, "hparams", name)) as f:
            assert "\ntensorboard: False\n" in f.read()
    off = SimpleNamespace(output_folder=str(tmp_path))
    assert TensorBoardStats.from_hparams(off) is None
    on = TensorBoardStats.from_hparams(SimpleNamespace(
        output_folder=str(tmp_path), tensorboard=True))
    assert on.folder == str(tmp_path / "tensorboard")
    assert not os.path.exists(on.folder)


def test_plot_command_on_a_real_run(run, tmp_path):
    out = tmp_path / "plots"
    assert cli(["plot", run, "--out", str(out), "--examples", "1"]) == 0
    names = sorted(os.listdir(out))
    assert "training.png" in names and "si_sdri.png" in names
    assert [n for n in names if n.startswith("spectrograms_")]
    assert "teacher_brackets.png" not in names  # a supervised run
