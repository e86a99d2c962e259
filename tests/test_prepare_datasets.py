"""WHAM!, VCTK-DEMAND and LibriFSD50K preparation on fake trees of their
real layouts."""

import csv
import os

import pytest
import soundfile as sf
import torch
from fake_datasets import (
    make_fsd50k,
    make_librispeech,
    make_vctk,
    make_wham,
    write_wav,
)

from speechbrain_remix.data import DataError, make_dataset
from speechbrain_remix.prepare.common import SKIPPED_FILE
from speechbrain_remix.prepare.librifsd50k import prepare_librifsd50k
from speechbrain_remix.prepare.vctk import prepare_vctk
from speechbrain_remix.prepare.wham import prepare_wham


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_wham(tmp_path):
    root = make_wham(str(tmp_path / "wham"))
    out = str(tmp_path / "out")
    prepare_wham(root, out)
    train = rows(f"{out}/train.csv")
    assert len(train) == 6 and len(rows(f"{out}/valid.csv")) == 3
    assert len(rows(f"{out}/test.csv")) == 3
    assert "/mix_single/" in train[0]["mix_wav"]
    assert "/s1/" in train[0]["clean_wav"] and "/noise/" in train[0][
        "noise_wav"]
    assert len(rows(f"{out}/train_noise20.csv")) == 1
    assert len(rows(f"{out}/train_mix80.csv")) == 5
    stamp = os.path.getmtime(f"{out}/train.csv")
    prepare_wham(root, out)  # idempotent
    assert os.path.getmtime(f"{out}/train.csv") == stamp


def test_wham_errors(tmp_path):
    with pytest.raises(DataError, match="not the generated WHAM"):
        prepare_wham(str(tmp_path), str(tmp_path / "out"))
    root = make_wham(str(tmp_path / "wham"))
    os.remove(os.path.join(root, "wav16k/min/tr/s1",
                           "400o030a_1.2_200o0310_-1.2.wav"))
    with pytest.raises(DataError, match="no s1/"):
        prepare_wham(root, str(tmp_path / "out"))


def test_vctk_resamples_to_16k(tmp_path):
    root = make_vctk(str(tmp_path / "vctk"))
    out = str(tmp_path / "out")
    prepare_vctk(root, out)
    test = rows(f"{out}/test.csv")
    assert [r["ID"] for r in test] == [f"p232_{i:03d}" for i in range(4)]
    assert sf.info(test[0]["mix_wav"]).samplerate == 16000
    assert sf.info(test[0]["clean_wav"]).samplerate == 16000
    assert "clean_wav" not in rows(f"{out}/mixtures.csv")[0]


def test_vctk_errors(tmp_path):
    with pytest.raises(DataError, match="not the VCTK-DEMAND"):
        prepare_vctk(str(tmp_path), str(tmp_path / "out"))
    root = make_vctk(str(tmp_path / "vctk"))
    write_wav(os.path.join(root, "noisy_testset_wav", "p999_001.wav"), 1.0,
              rate=48000)
    with pytest.raises(DataError, match="no clean file"):
        prepare_vctk(root, str(tmp_path / "out"))


@pytest.fixture
def lfsd_sources(tmp_path):
    return (make_librispeech(str(tmp_path / "LibriSpeech")),
            make_fsd50k(str(tmp_path / "FSD50K")))


def test_librifsd50k(lfsd_sources, tmp_path):
    libri, fsd = lfsd_sources
    out = str(tmp_path / "out")
    prepare_librifsd50k(libri, fsd, out, n_mixtures=(6, 2, 3),
                        snr_range=(5.0, 5.0))
    train = rows(f"{out}/train.csv")
    assert len(train) == 6 and len(rows(f"{out}/test.csv")) == 3
    # no human sound, the right FSD50K split for each set
    assert all(r["noise_wav"].split("/")[-1][:4] in ("1001", "1002", "1003")
               for r in train)
    assert all(r["noise_wav"].split("/")[-1][:4] in ("1005", "1006", "1007")
               for r in rows(f"{out}/valid.csv"))
    assert all(r["noise_wav"].split("/")[-1][:4] in ("2001", "2002", "2003")
               for r in rows(f"{out}/test.csv"))
    assert sf.info(train[0]["noise_wav"]).samplerate == 16000
    item = make_dataset(f"{out}/train.csv", out, 16000)[0]
    snr = 10 * torch.log10(item["clean"].pow(2).sum()
                           / item["noise"].pow(2).sum())
    assert abs(float(snr) - 5.0) < 1e-3
    # deterministic
    again = str(tmp_path / "again")
    prepare_librifsd50k(libri, fsd, again, n_mixtures=(6, 2, 3),
                        snr_range=(5.0, 5.0))
    assert [r["ID"] for r in rows(f"{again}/train.csv")] == [
        r["ID"] for r in train]


def test_librifsd50k_errors(lfsd_sources, tmp_path):
    libri, fsd = lfsd_sources
    with pytest.raises(DataError, match="not FSD50K"):
        prepare_librifsd50k(libri, str(tmp_path), str(tmp_path / "o"))
    with pytest.raises(DataError, match="not LibriSpeech"):
        prepare_librifsd50k(str(tmp_path), fsd, str(tmp_path / "o"))


def test_command_line(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    root = make_vctk(str(tmp_path / "vctk"))
    out = str(tmp_path / "out")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "VCTK", "prepare.py"),
         "--data_folder", root, "--save_folder", out],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(rows(f"{out}/test.csv")) == 4


def test_fuss(tmp_path):
    from fake_datasets import make_fuss

    from speechbrain_remix.prepare.fuss import prepare_fuss

    root = make_fuss(str(tmp_path / "fuss_dev"))
    out = str(tmp_path / "out")
    prepare_fuss(root, out)
    test = rows(f"{out}/test.csv")
    assert [r["ID"] for r in test] == [f"example{i:05d}" for i in range(4)]
    assert [len(r["source_wavs"].split(";")) for r in test] == [1, 2, 3, 4]
    item = make_dataset(f"{out}/test.csv", out, 16000,
                        ("mix_wav", "source_wavs"), max_sources=4)[3]
    assert item["sources"].shape == (4, 24000)
    item = make_dataset(f"{out}/test.csv", out, 16000,
                        ("mix_wav", "source_wavs"), max_sources=4)[0]
    assert item["sources"][1:].abs().sum() == 0  # padded with silence
    with pytest.raises(DataError, match="not FUSS"):
        prepare_fuss(str(tmp_path), str(tmp_path / "o"))


def test_wsjmix_simulation(tmp_path):
    pytest.importorskip("pyroomacoustics")
    from fake_datasets import make_wsj_chime

    from speechbrain_remix.prepare.wsjmix import prepare_wsjmix

    root = make_wsj_chime(str(tmp_path / "data"))
    out = str(tmp_path / "out")
    prepare_wsjmix(os.path.join(root, "wsj"), os.path.join(root, "CHiME3"),
                   out, n_mixtures=(3, 2, 2), snr_range=(15.0, 15.0))
    test = rows(f"{out}/test.csv")
    assert len(test) == 2 and len(rows(f"{out}/train.csv")) == 3
    item = make_dataset(f"{out}/test.csv", out, 8000,
                        ("mix_wav", "source_wavs"))[0]
    s1, s2, noise = item["sources"]
    torch.testing.assert_close(item["mix"], s1 + s2 + noise, atol=1e-5,
                               rtol=0)
    snr = 10 * torch.log10((s1 + s2).pow(2).sum() / noise.pow(2).sum())
    assert abs(float(snr) - 15.0) < 1e-2
    assert abs(float(s1.pow(2).sum() / s2.pow(2).sum()) - 1.0) < 1e-3
    # different speakers in every mixture
    for r in test:
        a, b = r["ID"].split("_")[1:3]
        assert a[:3] != b[:3]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="fewer than two speakers"):
        prepare_wsjmix(str(tmp_path / "empty"), os.path.join(root, "CHiME3"),
                       str(tmp_path / "o"), n_mixtures=(1, 1, 1))


def skipped(out):
    with open(os.path.join(out, SKIPPED_FILE)) as f:
        return f.read().split("\n")[:-1]


def test_wham_silent_file_drops_its_row_and_nan_is_named(tmp_path):
    root = make_wham(str(tmp_path / "wham"))
    name = "400o030a_1.2_200o0310_-1.2.wav"
    silent = write_wav(os.path.join(root, "wav16k/min/tr/noise", name), 1.5,
                       gain=0.0)
    out = str(tmp_path / "out")
    prepare_wham(root, out)
    for manifest in ("train.csv", "train_mix80.csv", "train_noise20.csv",
                     "noise.csv"):
        assert all(r["ID"] != name[:-4] and r["noise_wav"] != silent
                   for r in rows(f"{out}/{manifest}")), manifest
    assert len(rows(f"{out}/train.csv")) == 5
    assert skipped(out) == [silent]
    bad = write_wav(os.path.join(root, "wav16k/min/cv/s1", name), 1.5,
                    nan=True)
    with pytest.raises(DataError, match="NaN or inf") as err:
        prepare_wham(root, str(tmp_path / "out2"))
    assert bad in str(err.value)


def test_vctk_silent_reference_drops_the_pair(tmp_path):
    root = make_vctk(str(tmp_path / "vctk"))
    write_wav(os.path.join(root, "clean_testset_wav", "p232_001.wav"), 1.5,
              rate=48000, gain=0.0)
    out = str(tmp_path / "out")
    prepare_vctk(root, out)
    assert [r["ID"] for r in rows(f"{out}/test.csv")] == [
        "p232_000", "p232_002", "p232_003"]
    assert [r["ID"] for r in rows(f"{out}/mixtures.csv")] == [
        "p232_000", "p232_002", "p232_003"]
    # the resampled copy is what is checked and listed
    assert skipped(out) == [os.path.join(out, "resampled", "clean",
                                         "p232_001.wav")]


def test_fuss_silent_source_is_left_out_of_its_mixture(tmp_path):
    from fake_datasets import make_fuss

    from speechbrain_remix.prepare.fuss import prepare_fuss

    root = make_fuss(str(tmp_path / "fuss_dev"))
    silent = write_wav(os.path.join(
        root, "ssdata", "eval", "example00003_sources",
        "foreground1_sound.wav"), 1.5, gain=0.0)
    out = str(tmp_path / "out")
    prepare_fuss(root, out)
    test = rows(f"{out}/test.csv")
    assert [len(r["source_wavs"].split(";")) for r in test] == [1, 2, 3, 3]
    assert silent not in test[3]["source_wavs"]
    assert skipped(out) == [silent]


def test_librifsd50k_silent_utterance_is_never_mixed(lfsd_sources,
                                                       tmp_path):
    libri, fsd = lfsd_sources
    silent = write_wav(os.path.join(libri, "test-clean", "120", "200",
                                    "120-200-0000.flac"), 1.5, gain=0.0)
    out = str(tmp_path / "out")
    # 8 test mixtures from 4 utterances: the silent one is drawn twice
    prepare_librifsd50k(libri, fsd, out, n_mixtures=(6, 2, 8))
    test = rows(f"{out}/test.csv")
    assert len(test) == 6
    assert all(r["clean_wav"] != silent for r in test)
    assert skipped(out) == [silent]


def test_command_line_reports_data_error_in_one_line(tmp_path, capsys):
    from speechbrain_remix.prepare.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["vctk", "--data_folder", str(tmp_path),
              "--save_folder", str(tmp_path / "out")])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "not the VCTK-DEMAND" in err


def test_wsjmix_draw_with_a_silent_file_is_skipped(tmp_path):
    from speechbrain_remix.prepare.common import Preparation
    from speechbrain_remix.prepare.wsjmix import load

    prep = Preparation(str(tmp_path), {})
    good = write_wav(str(tmp_path / "a.wav"), 0.5)
    silent = write_wav(str(tmp_path / "b.wav"), 0.5, gain=0.0)
    assert load(good, 8000, prep).shape == (4000,)  # resampled
    assert load(silent, 8000, prep) is None
    assert prep.silent_files == [silent]
    with pytest.raises(DataError, match="NaN or inf"):
        load(write_wav(str(tmp_path / "c.wav"), 0.5, nan=True), 8000, prep)
