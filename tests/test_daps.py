"""DAPS preparation (Wang et al., 2020, Tables 1-2) on a fake tree with
DAPS's real folder and file naming."""

import csv
import json
import os
import re

import numpy as np
import pytest
import soundfile as sf
from fake_datasets import make_daps, write_wav

from speechbrain_remix.data import DataError, make_dataset
from speechbrain_remix.prepare.common import DONE_FILE, SKIPPED_FILE
from speechbrain_remix.prepare.daps import (
    SEGMENTS,
    estimate_lag,
    prepare_daps,
    split_daps,
)

ENVS = ("ipad_office1", "iphone_bedroom1")
LAG = 441  # 10 ms at 44.1 kHz: 160 samples at 16 kHz
SMALL = dict(environments=ENVS, segment_seconds=0.5, speaker_split=(4, 2, 2),
             script_split=(1, 1, 1))
COLUMNS = {
    "clean_train.csv": "ID,duration,mix_wav,clean_wav,speaker",
    "noisy_train.csv": "ID,duration,mix_wav,environment,speaker",
    "noise_only.csv": "ID,duration,noise_wav",
    "mix_train.csv": "ID,duration,mix_wav,noise_only",
    "test.csv": "ID,duration,mix_wav,clean_wav,environment,speaker",
    "street_noisy_train_5db.csv": "ID,duration,mix_wav,speaker",
    "street_noise_only_5db.csv": "ID,duration,noise_wav",
    "street_mix_train_5db.csv": "ID,duration,mix_wav,noise_only",
    "street_test_5db.csv": "ID,duration,mix_wav,clean_wav,noise_wav,speaker",
}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def header(path):
    with open(path) as f:
        return f.readline().strip()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("daps_data")
    root = make_daps(str(base / "daps"), lags={"ipad_office1": LAG})
    street = str(base / "street")
    for k in range(3):  # stereo, 44.1 kHz, as library recordings are
        write_wav(os.path.join(street, f"London_{k}.wav"), 1.6, rate=44100,
                  seed=50 + k, channels=2, gain=0.05)
    write_wav(os.path.join(street, "London_silent.wav"), 1.0, gain=0.0)
    return root, street


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    root, street = tree
    out = str(tmp_path_factory.mktemp("daps_out"))
    prepare_daps(root, out, noise_only_share=0.3, street_noise_folder=street,
                 street_n_noise=10, **SMALL)
    return out


def test_manifests_and_columns(prepared):
    for name, columns in COLUMNS.items():
        assert header(os.path.join(prepared, name)) == columns, name
        for suffix in ("_train", "_valid"):
            if "_train" in name:
                assert os.path.isfile(os.path.join(
                    prepared, name.replace("_train", suffix)))
    for env in ENVS:
        for base in ("noisy_train", "noisy_valid", "noise_only",
                     "mix_train", "mix_valid", "test"):
            assert header(f"{prepared}/{base}_{env}.csv") == header(
                f"{prepared}/{base}.csv")
    row = rows(f"{prepared}/clean_train.csv")[0]
    assert row["mix_wav"] == row["clean_wav"]
    info = sf.info(row["clean_wav"])
    assert (info.samplerate, info.frames) == (16000, 8000)
    assert float(row["duration"]) == 0.5
    # the shared pipeline reads them: noisy data with its flag, test pairs
    item = make_dataset(f"{prepared}/mix_train.csv", prepared, 16000)[0]
    assert item["mix"].shape == (8000,) and float(item["noise_only"]) in (
        0.0, 1.0)
    item = make_dataset(f"{prepared}/test.csv", prepared, 16000,
                        ("mix_wav", "clean_wav"))[0]
    assert item["mix"].shape == item["clean"].shape


def test_split_disjoint_and_balanced(prepared):
    with open(f"{prepared}/split.json") as f:
        sets = json.load(f)
    for key in ("speakers", "scripts"):
        chosen = [set(sets[s][key]) for s in SEGMENTS]
        assert sum(map(len, chosen)) == len(set.union(*chosen))
    for s in SEGMENTS:
        sexes = [p[0] for p in sets[s]["speakers"]]
        assert sexes.count("f") == sexes.count("m") > 0

    def takes(name):
        return {tuple(r["ID"].split("_")[:2]) for r in rows(
            f"{prepared}/{name}")}

    for name, part in (("clean_train.csv", "clean"),
                       ("clean_valid.csv", "clean"),
                       ("noisy_train.csv", "mix"), ("noisy_valid.csv", "mix"),
                       ("test.csv", "test"),
                       ("street_noisy_valid_5db.csv", "mix"),
                       ("street_test_10db.csv", "test")):
        speakers = {t[0] for t in takes(name)}
        scripts = {t[1] for t in takes(name)}
        assert speakers <= set(sets[part]["speakers"]), name
        assert scripts <= set(sets[part]["scripts"]), name
        if "valid" not in name:  # a few validation segments: not all
            assert speakers == set(sets[part]["speakers"]), name


def test_split_follows_the_seed():
    speakers = [f"{s}{i}" for s in "fm" for i in range(1, 11)]
    scripts = [f"script{i}" for i in range(1, 6)]
    a = split_daps(speakers, scripts, 1234)
    assert a == split_daps(speakers, scripts, 1234)
    assert a != split_daps(speakers, scripts, 1)
    assert [len(a[s]["speakers"]) for s in SEGMENTS] == [8, 8, 4]
    assert [len(a[s]["scripts"]) for s in SEGMENTS] == [2, 2, 1]
    with pytest.raises(DataError, match="even"):
        split_daps(speakers, scripts, 1, speaker_split=(7, 9, 4))
    with pytest.raises(DataError, match="needs 11 of each sex"):
        split_daps(speakers, scripts, 1, speaker_split=(8, 8, 6))


def test_deterministic(tree, prepared, tmp_path):
    root, street = tree
    out = str(tmp_path / "again")
    prepare_daps(root, out, noise_only_share=0.3, street_noise_folder=street,
                 street_n_noise=10, **SMALL)
    for name in ("split.json", "mix_train.csv", "clean_valid.csv",
                 "street_noise_files.txt", "street_mix_valid_10db.csv"):
        with open(f"{out}/{name}") as a, open(f"{prepared}/{name}") as b:
            assert a.read().replace(out, prepared) == b.read(), name
    other = str(tmp_path / "other")
    prepare_daps(root, other, seed=7, **SMALL)
    with open(f"{other}/split.json") as a, open(
            f"{prepared}/split.json") as b:
        assert json.load(a) != json.load(b)


@pytest.mark.parametrize("share", [0.0, 0.3, 0.5])
def test_noise_only_share(tree, prepared, share):
    root, street = tree
    prepare_daps(root, prepared, noise_only_share=share,
                 street_noise_folder=street, street_n_noise=10, **SMALL)
    assert os.path.isfile(os.path.join(prepared, DONE_FILE))
    names = ("mix_train", "mix_valid", f"mix_train_{ENVS[0]}",
             "street_mix_train_5db", "street_mix_valid_10db")
    written = {n: rows(f"{prepared}/{n}.csv") for n in names}
    # back to the fixture's share (cheap: only these manifests change)
    prepare_daps(root, prepared, noise_only_share=0.3,
                 street_noise_folder=street, street_n_noise=10, **SMALL)
    for name in names:
        flags = [int(r["noise_only"]) for r in written[name]]
        n_noise, n_speech = sum(flags), len(flags) - sum(flags)
        assert n_noise == round(share / (1 - share) * n_speech), name
        assert abs(n_noise / len(flags) - share) <= 1 / len(flags)
    # noise-only clips hold no speech: room noise (0.005) only, no burst
    for r in rows(f"{prepared}/noise_only.csv"):
        wav = sf.read(r["noise_wav"])[0]
        assert len(wav) >= 8000 and np.sqrt(np.mean(wav**2)) < 0.01


def test_per_environment_test_sets(prepared):
    every = rows(f"{prepared}/test.csv")
    lags = {r["recording"]: int(r["lag_samples"])
            for r in rows(f"{prepared}/alignment.csv")}
    for env in ENVS:
        test = rows(f"{prepared}/test_{env}.csv")
        assert test and {r["environment"] for r in test} == {env}
        assert [r for r in every if r["environment"] == env] == test
        for r in test:
            mix, clean = sf.read(r["mix_wav"])[0], sf.read(r["clean_wav"])[0]
            assert mix.shape == clean.shape
            assert np.corrcoef(mix, clean)[0, 1] > 0.95  # aligned
        expected = 160 if env == "ipad_office1" else 0
        assert {v for k, v in lags.items() if k.endswith(env)} == {expected}


def test_unaligned_when_alignment_is_off(tree, tmp_path):
    out = str(tmp_path / "out")
    prepare_daps(tree[0], out, max_lag_seconds=0.0,
                 **{**SMALL, "environments": ("ipad_office1",)})
    r = rows(f"{out}/test_ipad_office1.csv")[0]
    mix, clean = sf.read(r["mix_wav"])[0], sf.read(r["clean_wav"])[0]
    assert abs(np.corrcoef(mix, clean)[0, 1]) < 0.5


def test_estimate_lag_both_ways():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(8000)
    for lag in (-37, 0, 52):
        y = np.roll(x, lag) + 0.3 * rng.standard_normal(8000)
        assert estimate_lag(x, y, 100, 80, 4000) == lag


def test_street_mixtures_at_the_asked_snr(tree, prepared):
    with open(f"{prepared}/street_noise_files.txt") as f:
        used = f.read().split()
    assert len(used) == 3  # the silent file is never used
    assert all(p.startswith(tree[1]) and "silent" not in p for p in used)
    with open(f"{prepared}/{SKIPPED_FILE}") as f:
        assert "London_silent" in f.read()
    for snr in (5, 10):
        test = rows(f"{prepared}/street_test_{snr}db.csv")
        assert test
        for r in test:
            mix, clean, noise = (sf.read(r[k])[0] for k in (
                "mix_wav", "clean_wav", "noise_wav"))
            measured = 10 * np.log10(np.sum(clean**2) / np.sum(noise**2))
            assert abs(measured - snr) < 1e-3
            assert np.allclose(mix, clean + noise, atol=1e-6)
        train = rows(f"{prepared}/street_mix_train_{snr}db.csv")
        assert {r["noise_only"] for r in train} == {"0", "1"}
    # noise-only clips at the level the noise has in the mixtures
    level = {snr: np.median([np.sqrt(np.mean(sf.read(r["noise_wav"])[0]**2))
                             for r in rows(f"{prepared}/street_noise_only_"
                                           f"{snr}db.csv")])
             for snr in (5, 10)}
    assert abs(20 * np.log10(level[5] / level[10]) - 5) < 1.0


def test_not_daps(tmp_path, tree):
    with pytest.raises(DataError, match="not DAPS.*clean.*daps.tar.gz"):
        prepare_daps(str(tmp_path), str(tmp_path / "out"))
    with pytest.raises(DataError, match="missing folder.*ipad_balcony1"):
        prepare_daps(tree[0], str(tmp_path / "out"),
                     **{**SMALL, "environments": ("ipad_balcony1",)})
    assert not os.path.exists(tmp_path / "out" / DONE_FILE)


def test_missing_or_broken_file(tmp_path):
    root = make_daps(str(tmp_path / "daps"), environments=("ipad_office1",),
                     seconds=2.0)
    small = {**SMALL, "environments": ("ipad_office1",)}
    sets = split_daps([f"{s}{i}" for s in "fm" for i in range(1, 5)],
                      ["script1", "script2", "script3"], 1234,
                      small["speaker_split"], small["script_split"])
    take = f"{sets['clean']['speakers'][0]}_{sets['clean']['scripts'][0]}"
    bad = f"{root}/clean/{take}_clean.wav"
    write_wav(bad, 2.0, rate=44100, nan=True)
    with pytest.raises(DataError, match=re.escape(f"{bad}: contains NaN")):
        prepare_daps(str(tmp_path), str(tmp_path / "out"), **small)
    take = f"{sets['mix']['speakers'][1]}_{sets['mix']['scripts'][0]}"
    os.remove(f"{root}/ipad_office1/{take}_ipad_office1.wav")
    with pytest.raises(DataError, match=f"missing, e.g. .*{take}_ipad"):
        prepare_daps(str(tmp_path), str(tmp_path / "out"), **small)


def test_idempotent(tree, prepared):
    again = dict(noise_only_share=0.3, street_noise_folder=tree[1],
                 street_n_noise=10, **SMALL)
    stamp = os.path.getmtime(f"{prepared}/noisy_train.csv")
    prepare_daps(tree[0], prepared, **again)
    assert os.path.getmtime(f"{prepared}/noisy_train.csv") == stamp
    os.remove(f"{prepared}/test_{ENVS[1]}.csv")  # no longer complete
    prepare_daps(tree[0], prepared, **again)
    assert os.path.isfile(f"{prepared}/test_{ENVS[1]}.csv")
    assert os.path.getmtime(f"{prepared}/noisy_train.csv") > stamp


def test_command_line(tree, tmp_path):
    from speechbrain_remix.prepare.__main__ import main

    out = str(tmp_path / "out")
    assert main(["daps", "--data_folder", tree[0], "--save_folder", out,
                 "--environments", "iphone_bedroom1", "--segment_seconds",
                 "0.5", "--speaker_split", "4", "2", "2", "--script_split",
                 "1", "1", "1", "--noise_only_share", "0.5"]) == 0
    flags = [r["noise_only"] for r in rows(f"{out}/mix_train.csv")]
    assert flags.count("1") == flags.count("0")
