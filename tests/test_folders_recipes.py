"""A user's own folders, end to end: a teacher from clean speech and noise
folders (``hparams/supervised_folders.yaml``), then RemixIT on a folder
of noisy recordings alone (``hparams/remixit_folders.yaml``): checkpoint
selected by validation DNSMOS OVRL, evaluated on a held-out share, every
test recording written enhanced.  Tiny model, shipped demo audio."""

import csv
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, TINY_RUN, argv
from fake_datasets import write_wav
from speechbrain.utils.checkpoints import Checkpointer

import train
from speechbrain_remix.brains.base import EnhancementBrain
from speechbrain_remix.data import DataError
from speechbrain_remix.prepare.folders import hold_out, prepare_folders

DEMO = os.path.join(ROOT, "data", "demo")
DNSMOS = ["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"]
INTRUSIVE = ["si_sdr", "si_sdri", "pesq", "stoi"]
# the tiny model and run, but the YAMLs' own save_enhanced
TINY = {k: v for k, v in TINY_RUN.items() if k != "save_enhanced"}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def copy_demo(sub, folder, n):
    """The first ``n`` files of ``data/demo/<sub>`` copied to ``folder``
    (as a user's folder would hold them)."""
    os.makedirs(folder, exist_ok=True)
    names = sorted(os.listdir(os.path.join(DEMO, sub)))[:n]
    for name in names:
        shutil.copy(os.path.join(DEMO, sub, name), folder)
    return folder


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """hparams/supervised_folders.yaml on 8 clean utterances and 2 noise
    recordings: 12 synthesised mixtures, 1 held out for testing."""
    root = tmp_path_factory.mktemp("user")
    clean = copy_demo("speech/train", str(root / "clean"), 8)
    noise = copy_demo("noise/music/train", str(root / "noise"), 2)
    data, out = str(root / "teacher_data"), str(root / "supervised")
    summary = train.main(argv(
        "supervised_folders.yaml", base=TINY, clean_folder=clean,
        noise_folder=noise, data_folder=data, output_folder=out,
        n_mixtures=12))
    return root, data, out, summary


def test_supervised_folders_evaluates_held_out_mixtures(teacher):
    _, data, out, summary = teacher
    assert list(summary) == ["mixture", "model"]
    test = rows(os.path.join(data, "supervised_test.csv"))
    train_ids = [r["ID"] for r in rows(
        os.path.join(data, "supervised_train.csv"))]
    valid_ids = [r["ID"] for r in rows(
        os.path.join(data, "supervised_valid.csv"))]
    assert len(test) == 1 and len(valid_ids) == 2 and len(train_ids) == 9
    assert not {test[0]["ID"]} & set(train_ids + valid_ids)
    assert test[0]["clean_wav"]  # held-out mixtures keep their references
    results = rows(os.path.join(out, "test_results.csv"))
    assert list(results[0]) == ["ID", *INTRUSIVE]
    assert [r["ID"] for r in results] == [test[0]["ID"], "avg"]


@pytest.fixture(scope="module")
def remixit(teacher, tmp_path_factory):
    """hparams/remixit_folders.yaml on 12 noisy recordings alone, 2 epochs,
    with every validation DNSMOS OVRL recorded."""
    root, data, teacher_out, _ = teacher
    noisy = os.path.join(data, "mixtures", "mix")  # 12 noisy recordings
    out = str(tmp_path_factory.mktemp("remixit"))
    prepared = os.path.join(out, "data")
    values, loaded = [], []
    real_metric = EnhancementBrain.validation_metric
    real_load = Checkpointer.load_checkpoint

    def metric(self, name):
        values.append(real_metric(self, name))
        return values[-1]

    def load(self, ckpt, *args, **kwargs):
        loaded.append(ckpt)
        return real_load(self, ckpt, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(EnhancementBrain, "validation_metric", metric)
        mp.setattr(Checkpointer, "load_checkpoint", load)
        summary = train.main(argv(
            "remixit_folders.yaml", base=TINY, noisy_folder=noisy,
            data_folder=prepared, output_folder=out, number_of_epochs=2,
            teacher_source=os.path.join(teacher_out, "save")))
    return noisy, prepared, out, summary, values, loaded


def test_remixit_folders_holds_out_noisy_recordings(remixit):
    noisy, prepared, *_ = remixit
    splits = {name: rows(os.path.join(prepared, f"noisy_{name}.csv"))
              for name in ("train", "valid", "test")}
    assert {k: len(v) for k, v in splits.items()} == {
        "train": 9, "valid": 2, "test": 1}
    ids = [r["ID"] for split in splits.values() for r in split]
    assert sorted(ids) == sorted(os.path.splitext(f)[0]
                                 for f in os.listdir(noisy))
    for split in splits.values():  # no clean speech anywhere
        assert list(split[0]) == ["ID", "duration", "mix_wav"]


def test_remixit_folders_selects_by_validation_dnsmos(remixit):
    _, _, out, _, values, loaded = remixit
    assert len(values) == 2  # one validation DNSMOS OVRL per epoch
    assert all(1.0 <= v <= 5.0 for v in values)
    ckpts = Checkpointer(os.path.join(out, "save")).find_checkpoints()
    assert ckpts and all("dnsmos_ovrl" in c.meta for c in ckpts)
    best = Checkpointer(os.path.join(out, "save")).find_checkpoint(
        max_key="dnsmos_ovrl")
    assert best.meta["dnsmos_ovrl"] == max(values)
    assert best.meta["epoch"] == 1 + int(np.argmax(values))
    # the checkpoint evaluated is that one
    assert loaded[-1].meta["dnsmos_ovrl"] == max(values)


def test_remixit_folders_scores_and_writes_every_test_recording(remixit):
    _, prepared, out, summary, _, _ = remixit
    assert list(summary) == ["mixture", "teacher", "student"]
    test_ids = [r["ID"] for r in rows(os.path.join(prepared,
                                                   "noisy_test.csv"))]
    results = rows(os.path.join(out, "test_results.csv"))
    assert list(results[0]) == ["ID", *DNSMOS]
    assert [r["ID"] for r in results] == [*test_ids, "avg"]
    assert all(1.0 <= float(r[m]) <= 5.0 for r in results for m in DNSMOS)
    assert [r["ID"] for r in rows(os.path.join(out, "summary.csv"))] == [
        "mixture", "teacher", "student"]
    for system in ("teacher", "student"):
        written = os.listdir(os.path.join(out, "enhanced", system))
        assert sorted(written) == sorted(f"{i}.wav" for i in test_ids)
    assert os.path.getsize(os.path.join(out, "training.png")) > 1000


def test_remixit_folders_with_references_adds_intrusive_metrics(teacher,
                                                                 tmp_path):
    root, data, teacher_out, _ = teacher
    test = tmp_path / "test"  # a synthesised mixture, as a user's would be
    for row in rows(os.path.join(data, "supervised_train.csv"))[:1]:
        for kind in ("mix", "clean"):
            src = row[f"{kind}_wav"].replace("$data_root", data)
            sub = "noisy" if kind == "mix" else "clean"
            os.makedirs(test / sub, exist_ok=True)
            shutil.copy(src, test / sub)
    prepared, out = str(tmp_path / "data"), str(tmp_path / "out")
    summary = train.main(argv(
        "remixit_folders.yaml", base=TINY,
        noisy_folder=os.path.join(data, "mixtures", "mix"),
        test_folder=str(test), test_csv=os.path.join(prepared, "test.csv"),
        eval_metrics="enhancement_dnsmos", select_by="valid_loss",
        data_folder=prepared, output_folder=out,
        teacher_source=os.path.join(teacher_out, "save")) + ["--test_only"])
    # (--test_only: the student as initialised, the teacher; no training)
    # the test folder is the test set: nothing held out of the recordings
    assert not os.path.exists(os.path.join(prepared, "noisy_test.csv"))
    assert len(rows(os.path.join(prepared, "noisy_valid.csv"))) == 2
    results = rows(os.path.join(out, "test_results.csv"))
    assert list(results[0]) == ["ID", *INTRUSIVE, *DNSMOS]
    assert len(results) == 1 + 1
    assert abs(summary["mixture"]["si_sdri"]) < 1e-6
    assert os.path.getsize(os.path.join(out, "si_sdri.png")) > 1000


# ----------------------------------------------------------------------
# the held-out test share of prepare_folders
def noisy_folder(path, n):
    for i in range(n):
        write_wav(str(path / f"rec{i:02d}.wav"), 0.5, 16000, i)
    return str(path)


def test_test_share_is_deterministic_and_disjoint(tmp_path):
    noisy = noisy_folder(tmp_path / "noisy", 20)
    ids = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        out = str(tmp_path / name)
        prepare_folders(out, noisy_folder=noisy, test_fraction=0.1,
                        seed=seed)
        ids[name] = {s: [r["ID"] for r in rows(f"{out}/noisy_{s}.csv")]
                     for s in ("train", "valid", "test")}
    assert ids["a"] == ids["b"]  # the seed decides
    assert ids["a"]["test"] != ids["c"]["test"]
    assert [len(ids["a"][s]) for s in ("train", "valid", "test")] == [
        16, 2, 2]
    everything = sum(ids["a"].values(), [])
    assert sorted(everything) == [f"rec{i:02d}" for i in range(20)]


def test_test_share_needs_enough_recordings(tmp_path):
    out = str(tmp_path / "out")
    prepare_folders(out, noisy_folder=noisy_folder(tmp_path / "five", 5),
                    test_fraction=0.1)  # 5: one test, two and two
    assert len(rows(f"{out}/noisy_test.csv")) == 1
    with pytest.raises(DataError, match="test_fraction: 0"):
        prepare_folders(str(tmp_path / "o4"), test_fraction=0.1,
                        noisy_folder=noisy_folder(tmp_path / "four", 4))
    # without a test share, four are enough, as before
    prepare_folders(str(tmp_path / "o4b"),
                    noisy_folder=str(tmp_path / "four"))
    assert not os.path.exists(tmp_path / "o4b" / "noisy_test.csv")


def test_hold_out_takes_nothing_and_draws_nothing_at_zero():
    rng = np.random.default_rng(0)
    assert hold_out([1, 2, 3], 0.0, rng, "x") == ([1, 2, 3], [])
    assert rng.integers(1000) == np.random.default_rng(0).integers(1000)


def test_enhanced_files_are_readable(remixit):
    _, _, out, *_ = remixit
    folder = os.path.join(out, "enhanced", "student")
    for name in os.listdir(folder):
        wav, rate = sf.read(os.path.join(folder, name))
        assert rate == 16000 and wav.ndim == 1 and np.isfinite(wav).all()
