"""Preparation of a user's own folders of recordings."""

import csv
import logging
import os

import numpy as np
import pytest
import soundfile as sf
from fake_datasets import write_wav

import speechbrain_remix.prepare.folders as folders_module
from speechbrain_remix.data import DataError, check_manifest
from speechbrain_remix.prepare.common import DONE_FILE, SKIPPED_FILE
from speechbrain_remix.prepare.folders import main, prepare_folders

RATE = 16000


def wav(path, seconds=1.0, channels=1, rate=RATE, seed=0, **kwargs):
    return write_wav(path, seconds, rate, seed, channels, **kwargs)


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
    assert len(train) == 3 and len(valid) == 2  # two: a batch to remix
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


def test_command_line_reports_data_error_in_one_line(folders, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--data_folder", str(folders / "cli"),
              "--noisy_folder", str(folders / "nope")])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "nope: folder not found" in err


@pytest.mark.parametrize("folder", ["noisy", "noise", "clean/spk",
                                    "test/clean"])
def test_non_finite_file_is_an_error_naming_it(folders, folder):
    bad = wav(str(folders / folder / "bad.wav"), nan=True)
    if folder == "test/clean":  # its noisy partner, so that it is paired
        wav(str(folders / "test" / "noisy" / "bad.wav"))
    out = folders / "out"
    with pytest.raises(DataError, match="NaN or inf") as err:
        prepare_folders(str(out), noisy_folder=str(folders / "noisy"),
                        clean_folder=str(folders / "clean"),
                        noise_folder=str(folders / "noise"),
                        test_folder=str(folders / "test"), n_mixtures=4)
    assert bad in str(err.value) and "re-export" in str(err.value)
    assert not (out / DONE_FILE).exists()


def test_silent_files_are_skipped_counted_and_listed(folders, caplog):
    silent = [
        wav(str(folders / "noisy" / "zeros.wav"), gain=0.0),
        wav(str(folders / "noisy" / "tiny.wav"), gain=1e-8, subtype="FLOAT"),
        wav(str(folders / "noise" / "n_silent.wav"), gain=0.0),
        wav(str(folders / "test" / "clean" / "t1.wav"), gain=0.0),
    ]
    # real but very quiet recordings stay: 16-bit dither (+-1 LSB) and a
    # float file at -100 dBFS
    quiet = [wav(str(folders / "noisy" / "dither.wav"), gain=1 / 32768),
             wav(str(folders / "noisy" / "quiet.wav"), gain=1e-5,
                 subtype="FLOAT")]
    out = str(folders / "out")
    with caplog.at_level(logging.WARNING):
        prepare_folders(out, noisy_folder=str(folders / "noisy"),
                        clean_folder=str(folders / "clean"),
                        noise_folder=str(folders / "noise"),
                        test_folder=str(folders / "test"), n_mixtures=30)
    noisy = rows(os.path.join(out, "noisy_train.csv")) + rows(
        os.path.join(out, "noisy_valid.csv"))
    assert sorted(r["ID"] for r in noisy) == sorted(
        [f"rec{i}" for i in range(5)] + ["dither", "quiet"])
    assert quiet[0] in {r["mix_wav"] for r in noisy}
    assert [r["ID"] for r in rows(os.path.join(out, "noise.csv"))] == [
        "n0", "n1"]
    sup = check_manifest(os.path.join(out, "supervised_train.csv"), out,
                         ("mix_wav", "clean_wav", "noise_wav")) + \
        check_manifest(os.path.join(out, "supervised_valid.csv"), out,
                       ("mix_wav", "clean_wav", "noise_wav"))
    assert len(sup) == 30  # silent noise never drawn: no mixture lost
    for row in sup:  # every synthesised mixture has noise in it
        assert np.sqrt(np.mean(sf.read(row["noise_wav"])[0] ** 2)) > 1e-3
    assert [r["ID"] for r in rows(os.path.join(out, "test.csv"))] == ["t0"]
    with open(os.path.join(out, SKIPPED_FILE)) as f:
        assert sorted(f.read().split("\n")[:-1]) == sorted(silent)
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "4 silent file(s) skipped" in message and silent[0] in message


def test_silent_noise_excerpt_drops_that_mixture(folders):
    # noise silent after its first half: a 1 s excerpt starting past
    # 1.5 s (a quarter of the offsets) would make a mixture without noise
    for path in (folders / "noise").iterdir():
        path.unlink()
    data = np.zeros(3 * RATE, np.float32)
    data[: 3 * RATE // 2] = 0.1
    sf.write(str(folders / "noise" / "mostly_silent.wav"), data, RATE)
    out = str(folders / "out")
    prepare_folders(out, clean_folder=str(folders / "clean"),
                    noise_folder=str(folders / "noise"), n_mixtures=12,
                    snr_range=(0.0, 0.0))
    sup = rows(os.path.join(out, "supervised_train.csv")) + rows(
        os.path.join(out, "supervised_valid.csv"))
    assert 3 <= len(sup) < 12
    for row in sup:
        noise, _ = sf.read(row["noise_wav"].replace("$data_root", out))
        assert np.sqrt(np.mean(noise ** 2)) > 1e-3
    with open(os.path.join(out, SKIPPED_FILE)) as f:
        listed = f.read().split()
    assert len(listed) == 12 - len(sup)
    assert all("/mixtures/noise/" in p for p in listed)


def test_small_folder_holds_out_two_for_validation(tmp_path, caplog):
    for i in range(12):
        wav(str(tmp_path / "noisy" / f"rec{i}.wav"), seed=i)
    out = str(tmp_path / "out")
    with caplog.at_level(logging.INFO):
        prepare_folders(out, noisy_folder=str(tmp_path / "noisy"))
    assert len(rows(os.path.join(out, "noisy_valid.csv"))) == 2
    assert len(rows(os.path.join(out, "noisy_train.csv"))) == 10
    assert "2 files held out for validation instead of 1" in caplog.text


@pytest.mark.parametrize("n_good, n_silent", [(2, 0), (2, 2)])
def test_too_few_usable_recordings_is_named(tmp_path, n_good, n_silent):
    noisy = tmp_path / "noisy"
    for i in range(n_good):
        wav(str(noisy / f"rec{i}.wav"), seed=i)
    for i in range(n_silent):
        wav(str(noisy / f"silent{i}.wav"), gain=0.0)
    with pytest.raises(DataError, match="need at least 3") as err:
        prepare_folders(str(tmp_path / "out"), noisy_folder=str(noisy))
    assert str(noisy) in str(err.value)
    assert (f"{n_silent} silent" in str(err.value)) == bool(n_silent)


def test_interrupted_run_is_never_taken_as_done(folders, monkeypatch):
    out = folders / "out"
    kwargs = dict(noisy_folder=str(folders / "noisy"),
                  clean_folder=str(folders / "clean"),
                  noise_folder=str(folders / "noise"), n_mixtures=6)
    prepare_folders(str(out), seed=1, **kwargs)  # A completes
    calls = []
    real = folders_module.write_mixture

    def crash_after_two(*args, **kw):
        calls.append(args[2])
        if len(calls) > 2:
            raise KeyboardInterrupt  # killed mid-way through B
        return real(*args, **kw)

    monkeypatch.setattr(folders_module, "write_mixture", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        prepare_folders(str(out), seed=2, **kwargs)
    # A's manifests are still there, with two of B's mixtures under them
    assert (out / "supervised_train.csv").exists()
    assert not (out / DONE_FILE).exists()
    monkeypatch.setattr(folders_module, "write_mixture", real)
    for seed in (1, 2):  # neither option set is taken as done: both redo
        stamp = os.path.getmtime(out / "supervised_train.csv")
        os.utime(out / "supervised_train.csv", (stamp - 10, stamp - 10))
        prepare_folders(str(out), seed=seed, **kwargs)
        assert os.path.getmtime(out / "supervised_train.csv") > stamp - 10
    fresh = folders / "fresh"
    prepare_folders(str(fresh), seed=2, **kwargs)
    for name in ("noisy_train.csv", "noisy_valid.csv",
                 "supervised_train.csv", "supervised_valid.csv"):
        assert rows(out / name) == rows(fresh / name), name
    mixture = rows(out / "supervised_train.csv")[0]["mix_wav"]
    np.testing.assert_array_equal(
        sf.read(mixture.replace("$data_root", str(out)))[0],
        sf.read(mixture.replace("$data_root", str(fresh)))[0])
