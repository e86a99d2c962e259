"""DNS-Challenge 2020: preparation on a fake tree of the real layout, and
one tiny epoch of every DNS recipe."""

import csv
import os

import numpy as np
import pytest
import torch
from conftest import TINY_RUN, argv
from fake_datasets import make_dns, write_wav

import train
from speechbrain_remix.data import DataError, make_dataset
from speechbrain_remix.models import SudoRmRf
from speechbrain_remix.prepare.dns import prepare_dns


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    return make_dns(str(tmp_path_factory.mktemp("DNS")))


def test_manifests(dns, tmp_path):
    out = str(tmp_path)
    prepare_dns(dns, out, n_valid=2)
    train_rows, valid = rows(f"{out}/train.csv"), rows(f"{out}/valid.csv")
    assert len(train_rows) == 10 and len(valid) == 2
    assert {r["ID"] for r in train_rows}.isdisjoint(r["ID"] for r in valid)
    assert len(rows(f"{out}/train_mix80.csv")) == 8
    assert len(rows(f"{out}/train_noise20.csv")) == 2
    assert len(rows(f"{out}/noise.csv")) == 4
    test = rows(f"{out}/test.csv")
    assert [r["ID"] for r in test] == ["fileid_0", "fileid_1", "fileid_2"]
    assert all(r["mix_wav"].endswith(f"_{r['ID']}.wav") for r in test)
    assert all(r["clean_wav"].endswith(f"clean_{r['ID']}.wav")
               for r in test)
    assert "with_reverb" in rows(f"{out}/test_reverb.csv")[0]["mix_wav"]
    # pairs are mixed at their natural power ratio, as virtual mixtures
    item = make_dataset(f"{out}/train.csv", out, 16000)[0]
    torch.testing.assert_close(item["mix"], item["clean"] + item["noise"])
    assert float(train_rows[0]["noise_gain"]) == 1.0


def test_deterministic_and_idempotent(dns, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    prepare_dns(dns, a, n_valid=2)
    prepare_dns(dns, b, n_valid=2)
    assert rows(f"{a}/train.csv") == rows(f"{b}/train.csv")
    stamp = os.path.getmtime(f"{a}/train.csv")
    prepare_dns(dns, a, n_valid=2)
    assert os.path.getmtime(f"{a}/train.csv") == stamp


def test_resamples_other_rates(tmp_path):
    root = make_dns(str(tmp_path / "DNS"), n_clean=4)
    write_wav(str(tmp_path / "DNS/datasets/clean/at_8k.wav"), 2.0, rate=8000)
    out = str(tmp_path / "out")
    prepare_dns(root, out, n_valid=1)
    resampled = [r for r in rows(f"{out}/train.csv") + rows(
        f"{out}/valid.csv") if r["ID"] == "at_8k"][0]
    assert resampled["clean_wav"].startswith(os.path.join(out, "resampled"))
    assert np.isclose(float(resampled["duration"]), 2.0)


def test_not_dns_is_named(tmp_path):
    (tmp_path / "datasets" / "clean").mkdir(parents=True)
    with pytest.raises(DataError, match="not the DNS-Challenge 2020") as err:
        prepare_dns(str(tmp_path), str(tmp_path / "out"))
    assert "noise" in str(err.value)


def test_unpaired_test_file_is_named(tmp_path):
    root = make_dns(str(tmp_path / "DNS"), n_clean=4)
    bad = write_wav(str(tmp_path / "DNS/datasets/test_set/synthetic/"
                        "no_reverb/noisy/x_fileid_99.wav"), 1.0)
    with pytest.raises(DataError, match="no clean_fileid") as err:
        prepare_dns(root, str(tmp_path / "out"), n_valid=1)
    assert bad in str(err.value)


def tiny_teacher(path, num_sources):
    keys = ("num_blocks", "enc_num_basis", "enc_kernel_size", "out_channels",
            "in_channels", "upsampling_depth", "groups")
    model = SudoRmRf(num_sources=num_sources,
                     **{k: TINY_RUN[k] for k in keys})
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.parametrize("hparams, extra", [
    ("supervised_dns.yaml", {}),
    ("mixit_dns.yaml", {}),
    ("remixit_dns.yaml", {"student_schedule": "[1, 2]",
                          "teacher_update_every": 1,
                          "number_of_epochs": 2}),
])
def test_recipe_runs_a_tiny_epoch(dns, tmp_path, hparams, extra):
    if hparams.startswith("remixit"):
        extra["teacher_source"] = tiny_teacher(str(tmp_path / "t.ckpt"), 3)
    summary = train.main(argv(
        hparams, base=TINY_RUN, data_folder=dns, n_valid=2,
        output_folder=str(tmp_path / "out"), **extra,
    ))
    assert summary["mixture"]["si_sdri"] == 0.0
    assert os.path.isfile(tmp_path / "out" / "test_results.csv")


def test_silent_noise_is_never_paired_and_nan_is_named(tmp_path):
    root = make_dns(str(tmp_path / "DNS"), n_clean=6)
    silent = write_wav(str(tmp_path / "DNS/datasets/noise/noise_class_1.wav"),
                       1.2, gain=0.0)
    out = str(tmp_path / "out")
    prepare_dns(root, out, n_valid=1)
    assert [r["ID"] for r in rows(f"{out}/noise.csv")] == [
        "noise_class_0", "noise_class_2", "noise_class_3"]
    pairs = rows(f"{out}/train.csv") + rows(f"{out}/valid.csv")
    assert len(pairs) == 6 and all(r["noise_wav"] != silent for r in pairs)
    with open(os.path.join(out, "skipped_silent.txt")) as f:
        assert f.read().split() == [silent]
    bad = write_wav(str(tmp_path / "DNS/datasets/test_set/synthetic/"
                        "with_reverb/clean/clean_fileid_1.wav"), 1.5,
                    nan=True)
    with pytest.raises(DataError, match="NaN or inf") as err:
        prepare_dns(root, out, n_valid=2)  # other options: prepared again
    assert bad in str(err.value)
    assert not os.path.exists(os.path.join(out, "prepare_done.json"))
