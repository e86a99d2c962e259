"""Preparation of a user's own folders of recordings."""

import csv
import os

import numpy as np
import pytest
import soundfile as sf

from speechbrain_remix.data import DataError, check_manifest
from speechbrain_remix.prepare.folders import main, prepare_folders

RATE = 16000


def wav(path, seconds=1.0, channels=1, rate=RATE, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    data = 0.1 * rng.standard_normal((int(seconds * rate), channels))
    sf.write(path, data.astype(np.float32), rate)
    return path


@pytest.fixture
def folders(tmp_path):
    for i in range(5):
        wav(str(tmp_path / "noisy" / f"rec{i}.wav"), seed=i)
        wav(str(tmp_path / "clean" / "spk" / f"utt{i}.flac"), seed=10 + i)
    for i in range(2):
        wav(str(tmp_path / "noise" / f"n{i}.wav"), seconds=0.3, seed=20 + i)
    for i in range(2):
        wav(str(tmp_path / "test" / "noisy" / f"t{i}.wav"), seed=30 + i)
        wav(str(tmp_path / "test" / "clean" / f"t{i}.wav"), seed=40 + i)
    return tmp_path


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_all_manifests(folders):
    out = str(folders / "out")
    prepare_folders(out, noisy_folder=str(folders / "noisy"),
                    clean_folder=str(folders / "clean"),
                    noise_folder=str(folders / "noise"),
                    test_folder=str(folders / "test"),
                    valid_fraction=0.2, n_mixtures=10, snr_range=(0.0, 0.0))
    train = check_manifest(os.path.join(out, "noisy_train.csv"), out)
    valid = check_manifest(os.path.join(out, "noisy_valid.csv"), out)
    assert len(train) == 4 and len(valid) == 1
    assert "clean_wav" not in rows(os.path.join(out, "noisy_train.csv"))[0]
    sup = check_manifest(os.path.join(out, "supervised_train.csv"), out,
                         ("mix_wav", "clean_wav", "noise_wav"))
    assert len(sup) == 8
    mix, _ = sf.read(sup[0]["mix_wav"])
    clean, _ = sf.read(sup[0]["clean_wav"])
    noise, _ = sf.read(sup[0]["noise_wav"])
    np.testing.assert_allclose(mix, clean + noise, atol=1e-6)
    snr = 10 * np.log10(np.sum(clean**2) / np.sum(noise**2))
    assert snr == pytest.approx(0.0, abs=1e-3)  # noise tiled and scaled
    assert len(check_manifest(os.path.join(out, "test.csv"), out,
                              ("mix_wav", "clean_wav"))) == 2
    assert len(rows(os.path.join(out, "noise.csv"))) == 2


def test_is_idempotent_and_deterministic(folders):
    out = str(folders / "out")
    kwargs = dict(clean_folder=str(folders / "clean"),
                  noise_folder=str(folders / "noise"), n_mixtures=4)
    prepare_folders(out, **kwargs)
    first = rows(os.path.join(out, "supervised_train.csv"))
    stamp = os.path.getmtime(os.path.join(out, "supervised_train.csv"))
    prepare_folders(out, **kwargs)  # same options: nothing is redone
    assert os.path.getmtime(os.path.join(out, "supervised_train.csv")) == stamp
    other = str(folders / "other")
    prepare_folders(other, **kwargs)
    assert [r["duration"] for r in rows(
        os.path.join(other, "supervised_train.csv"))] == [
        r["duration"] for r in first]


@pytest.mark.parametrize("bad, message", [
    (dict(channels=2), "channels, expected mono"),
    (dict(rate=8000), "expected 16000 Hz"),
    (dict(seconds=0.0), "empty audio"),
])
def test_bad_file_is_named(folders, bad, message):
    path = wav(str(folders / "noisy" / "bad.wav"), **bad)
    with pytest.raises(DataError, match=message) as err:
        prepare_folders(str(folders / "out"),
                        noisy_folder=str(folders / "noisy"))
    assert path in str(err.value)


def test_unpaired_test_file_is_named(folders):
    path = wav(str(folders / "test" / "noisy" / "lonely.wav"))
    with pytest.raises(DataError, match="no clean reference") as err:
        prepare_folders(str(folders / "out"),
                        test_folder=str(folders / "test"))
    assert path in str(err.value)


def test_folder_errors(folders):
    with pytest.raises(DataError, match="folder not found"):
        prepare_folders(str(folders / "out"),
                        noisy_folder=str(folders / "nope"))
    (folders / "empty").mkdir()
    with pytest.raises(DataError, match="no .wav"):
        prepare_folders(str(folders / "out"),
                        noisy_folder=str(folders / "empty"))
    with pytest.raises(DataError, match="needs noise_folder"):
        prepare_folders(str(folders / "out"),
                        clean_folder=str(folders / "clean"))
    with pytest.raises(DataError, match="at least one"):
        prepare_folders(str(folders / "out"))


def test_command_line(folders):
    out = str(folders / "cli")
    main(["--data_folder", out, "--noisy_folder", str(folders / "noisy")])
    assert os.path.isfile(os.path.join(out, "noisy_train.csv"))
