"""Data of personalized speech enhancement (Sivaraman et al., 2021): the
LibriSpeech + MUSAN + FSD50K front-end on fake trees of their real
layouts, and the demo front-end on the shipped corpus."""

import csv
import glob
import os

import pytest
import soundfile as sf
import torch
from conftest import ROOT
from fake_datasets import (
    make_fsd50k,
    make_librispeech100,
    make_musan,
    write_wav,
)

import speechbrain_remix.prepare.personal as personal
from speechbrain_remix.data import DataError, make_dataset
from speechbrain_remix.prepare.common import DONE_FILE
from speechbrain_remix.prepare.demo import _list as demo_files
from speechbrain_remix.prepare.demo import speech_halves
from speechbrain_remix.prepare.folders import prepare_folders
from speechbrain_remix.prepare.personal import (
    FIELDS,
    GENERAL_FIELDS,
    prepare_personal_librispeech,
)

DEMO = os.path.join(ROOT, "data", "demo")
# 6 fake speakers of 8 utterances: 3 test speakers, each with 3 test, 2
# validation and 3 training utterances; G: 24 utterances, 2 held out
OPTIONS = dict(n_test_speakers=3, n_test_utterances=3)
NOISE_FIELDS = ["ID", "duration", "noise_wav"]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def header(path):
    with open(path, newline="") as f:
        return next(csv.reader(f))


def csv_texts(folder):
    return {os.path.basename(p): open(p).read()
            for p in sorted(glob.glob(os.path.join(folder, "*.csv")))}


def snrs(manifest, folder):
    """The SNR of every row, from the signals the dataset synthesises,
    and the row's ``snr``; checks that the mixture is their sum."""
    dataset = make_dataset(manifest, folder, 16000,
                           required=("clean_wav", "noise_wav"))
    out = []
    for row, k in zip(rows(manifest), range(len(dataset))):
        item = dataset[k]
        assert item["id"] == row["ID"]
        torch.testing.assert_close(item["mix"], item["clean"] + item["noise"])
        snr = 10 * torch.log10(item["clean"].pow(2).sum()
                               / item["noise"].pow(2).sum())
        out.append((float(snr), float(row["snr"])))
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    return (make_librispeech100(str(root / "LibriSpeech"), n_speakers=6),
            os.path.join(make_musan(str(root / "MUSAN")), "musan"),
            make_fsd50k(str(root / "FSD50K")))


@pytest.fixture(scope="module")
def prepared(sources, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("personal"))
    prepare_personal_librispeech(*sources, out, **OPTIONS)
    return out


def test_librispeech_manifests(prepared):
    out = prepared
    speakers = rows(f"{out}/speakers.csv")
    assert header(f"{out}/speakers.csv") == ["speaker", "n_train", "n_valid",
                                             "n_test"]
    assert len(speakers) == 3
    assert [int(s["speaker"]) for s in speakers] == sorted(
        int(s["speaker"]) for s in speakers)
    general = rows(f"{out}/general_train.csv") + rows(
        f"{out}/general_valid.csv")
    assert header(f"{out}/general_train.csv") == GENERAL_FIELDS
    assert len(general) == 24 and len(rows(f"{out}/general_valid.csv")) == 2
    assert len({r["ID"] for r in general}) == 24
    assert all(r["ID"].startswith(r["speaker"] + "-") for r in general)
    test_speakers = {s["speaker"] for s in speakers}
    assert not test_speakers & {r["speaker"] for r in general}
    all_test = []
    for s in speakers:
        spk = s["speaker"]
        parts = {}
        for name in ("train", "valid", "test"):
            path = f"{out}/speaker_{spk}_{name}.csv"
            assert header(path) == FIELDS
            parts[name] = rows(path)
            assert len(parts[name]) == int(s[f"n_{name}"])
            assert all(r["speaker"] == spk and r["ID"].startswith(spk + "-")
                       for r in parts[name])
        assert [len(parts[n]) for n in ("train", "valid", "test")] == [3, 2, 3]
        ids = [r["ID"] for p in parts.values() for r in p]
        assert len(set(ids)) == len(ids) == 8  # disjoint, all used
        all_test += parts["test"]
        # premixtures: FSD50K dev clips without human sounds, resampled
        for r in parts["train"] + parts["valid"]:
            assert r["noise_wav"].startswith("$data_root/resampled/")
            assert os.path.basename(r["noise_wav"])[:4] in (
                "1001", "1002", "1003", "1005", "1006", "1007")
        assert all("/noise/sound-bible/" in r["noise_wav"]
                   for r in parts["test"])
    assert rows(f"{out}/test.csv") == all_test
    for name in ("noise_train", "noise_test", "premix_noise"):
        assert header(f"{out}/{name}.csv") == NOISE_FIELDS
    assert all("/noise/free-sound/" in r["noise_wav"]
               for r in rows(f"{out}/noise_train.csv"))
    assert len(rows(f"{out}/noise_train.csv")) == 4
    assert len(rows(f"{out}/noise_test.csv")) == 4
    premix = rows(f"{out}/premix_noise.csv")
    used = {r["noise_wav"] for s in speakers for n in ("train", "valid")
            for r in rows(f"{out}/speaker_{s['speaker']}_{n}.csv")}
    assert {r["noise_wav"] for r in premix} == used
    # only the clips used were resampled
    assert sorted(os.listdir(f"{out}/resampled")) == sorted(
        os.path.basename(p) for p in used)
    for r in premix:
        assert sf.info(r["noise_wav"].replace("$data_root", out)
                       ).samplerate == 16000


def test_librispeech_snrs(prepared):
    spk = rows(f"{prepared}/speakers.csv")[0]["speaker"]
    premix = snrs(f"{prepared}/speaker_{spk}_train.csv", prepared) + snrs(
        f"{prepared}/speaker_{spk}_valid.csv", prepared)
    for measured, listed in premix:
        assert measured == pytest.approx(listed, abs=1e-3)
        assert 0 <= listed <= 15
    for measured, listed in snrs(f"{prepared}/test.csv", prepared):
        assert measured == pytest.approx(listed, abs=1e-3)
        assert -5 <= listed <= 5


def test_librispeech_is_deterministic_and_skipped_when_done(
        sources, prepared, tmp_path):
    again = str(tmp_path / "again")
    prepare_personal_librispeech(*sources, again, **OPTIONS)
    assert csv_texts(again) == csv_texts(prepared)
    stamp = os.path.getmtime(f"{again}/test.csv")
    prepare_personal_librispeech(*sources, again, **OPTIONS)
    assert os.path.getmtime(f"{again}/test.csv") == stamp
    other = str(tmp_path / "other")
    prepare_personal_librispeech(*sources, other, **OPTIONS, seed=7)
    assert csv_texts(other) != csv_texts(prepared)


def test_interrupted_run_is_never_taken_as_done(sources, tmp_path,
                                                monkeypatch):
    out = str(tmp_path / "out")
    prepare_personal_librispeech(*sources, out, **OPTIONS)
    calls, real = [], personal.resample

    def crash_after_two(*args, **kwargs):
        calls.append(args)
        if len(calls) > 2:
            raise KeyboardInterrupt  # killed mid-way
        return real(*args, **kwargs)

    monkeypatch.setattr(personal, "resample", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        prepare_personal_librispeech(*sources, out, **OPTIONS, seed=2)
    assert not os.path.exists(os.path.join(out, DONE_FILE))
    monkeypatch.setattr(personal, "resample", real)
    prepare_personal_librispeech(*sources, out, **OPTIONS, seed=2)
    assert os.path.exists(os.path.join(out, DONE_FILE))
    fresh = str(tmp_path / "fresh")
    prepare_personal_librispeech(*sources, fresh, **OPTIONS, seed=2)
    assert csv_texts(out) == csv_texts(fresh)


def test_not_the_dataset_is_named(sources, tmp_path):
    libri, musan, fsd = sources
    out = str(tmp_path / "out")
    with pytest.raises(DataError, match="not LibriSpeech; missing .*"
                       "train-clean-100"):
        prepare_personal_librispeech(musan, musan, fsd, out)
    with pytest.raises(DataError, match="not MUSAN; missing .*free-sound"):
        prepare_personal_librispeech(libri, libri, fsd, out)
    with pytest.raises(DataError, match="not FSD50K; missing"):
        prepare_personal_librispeech(libri, musan, musan, out)
    # the parent of musan/ is accepted too (how the archive unpacks)
    prepare_personal_librispeech(libri, os.path.dirname(musan), fsd, out,
                                 **OPTIONS)


def test_wrong_rate_and_too_few_utterances_are_named(sources, tmp_path):
    libri, _, fsd = sources
    musan = os.path.join(make_musan(str(tmp_path / "m"), n=2), "musan")
    bad = write_wav(os.path.join(musan, "noise", "sound-bible", "x.wav"),
                    0.5, rate=8000)
    with pytest.raises(DataError, match="8000 Hz, expected 16000"):
        prepare_personal_librispeech(libri, musan, fsd, str(tmp_path / "o"),
                                     **OPTIONS)
    os.remove(bad)
    with pytest.raises(DataError, match="lower n_test_utterances"):
        prepare_personal_librispeech(libri, musan, fsd, str(tmp_path / "o"),
                                     n_test_speakers=2, n_test_utterances=6)
    assert not os.path.exists(os.path.join(tmp_path, "o", DONE_FILE))


def test_demo(demo_data, tmp_path):
    from speechbrain_remix.prepare.__main__ import main

    out = str(tmp_path / "demo")
    assert main(["personal_demo", "--source_folder", DEMO,
                 "--data_folder", out]) == 0
    # G is domain A of prepare_demo: the same halves, and prepare_demo's
    # labelled mixtures are the first of that half, in its order
    half_a, half_b = speech_halves(demo_files(DEMO, "speech/train"), 1234)
    ids_a = [os.path.basename(p)[:-4] for p in half_a]
    general = rows(f"{out}/general_train.csv") + rows(
        f"{out}/general_valid.csv")
    assert sorted(r["ID"] for r in general) == sorted(ids_a)
    assert {r["speaker"] for r in general} <= {
        "fillets_m", "klettres_da", "klettres_hu", "klettres_pt_BR"}
    labelled = [r["ID"] for name in ("A_train", "A_valid")
                for r in rows(os.path.join(demo_data, f"{name}.csv"))]
    assert labelled == ids_a[: len(labelled)]
    assert not set(ids_a) & {os.path.basename(p)[:-4] for p in half_b}
    assert rows(f"{out}/speakers.csv") == [
        {"speaker": "fillets_v", "n_train": "25", "n_valid": "3",
         "n_test": "12"}]
    parts = {n: rows(f"{out}/speaker_fillets_v_{n}.csv")
             for n in ("train", "valid", "test")}
    ids = [r["ID"] for p in parts.values() for r in p]
    assert len(set(ids)) == len(ids) == 40
    assert all(i.startswith("fillets_v_") for i in ids)
    assert rows(f"{out}/test.csv") == parts["test"]
    assert all("/noise/env/train/" in r["noise_wav"]
               for r in parts["train"] + parts["valid"])
    assert all("/noise/music/test/" in r["noise_wav"] for r in parts["test"])
    assert all("/noise/music/train/" in r["noise_wav"]
               for r in rows(f"{out}/noise_train.csv"))
    for measured, listed in snrs(f"{out}/speaker_fillets_v_train.csv", out):
        assert measured == pytest.approx(listed, abs=1e-3)
        assert 0 <= listed <= 15
    for measured, listed in snrs(f"{out}/test.csv", out):
        assert measured == pytest.approx(listed, abs=1e-3)
        assert -5 <= listed <= 5


def test_demo_other_speaker_and_unknown_speaker(tmp_path):
    from speechbrain_remix.prepare.personal import prepare_personal_demo

    out = str(tmp_path / "librivox")
    prepare_personal_demo(DEMO, out, speaker="librivox", n_test_utterances=1)
    parts = {n: rows(f"{out}/speaker_librivox_{n}.csv")
             for n in ("train", "valid", "test")}
    assert len(parts["test"]) == 1 and parts["train"]
    assert all(r["ID"].startswith("librivox_") and r["speaker"] == "librivox"
               for p in parts.values() for r in p)
    with pytest.raises(DataError, match="choose one of .*'fillets_v'"):
        prepare_personal_demo(DEMO, str(tmp_path / "x"), speaker="nobody")
    assert not os.path.isfile(tmp_path / "x" / "speakers.csv")


def test_folders_noise_alone_gives_noise_csv(tmp_path):
    # a user's own speaker: noisy recordings, and noise for PSE training
    for i in range(4):
        write_wav(str(tmp_path / "noisy" / f"rec{i}.wav"), 1.0, seed=i)
    for i in range(2):
        write_wav(str(tmp_path / "noise" / f"n{i}.wav"), 0.5, seed=10 + i)
    out = str(tmp_path / "out")
    prepare_folders(out, noisy_folder=str(tmp_path / "noisy"),
                    noise_folder=str(tmp_path / "noise"))
    assert [r["ID"] for r in rows(f"{out}/noise.csv")] == ["n0", "n1"]
    assert os.path.isfile(f"{out}/noisy_train.csv")
    assert not os.path.exists(f"{out}/supervised_train.csv")
    alone = str(tmp_path / "alone")
    prepare_folders(alone, noise_folder=str(tmp_path / "noise"))
    assert len(rows(f"{alone}/noise.csv")) == 2


def test_silent_premix_clips_are_redrawn(sources, tmp_path):
    libri, musan, _ = sources
    fsd = make_fsd50k(str(tmp_path / "FSD50K"))
    silent = ["1001", "1002", "1003", "1005", "1006"]  # all but 1007
    for fname in silent:
        write_wav(os.path.join(fsd, "FSD50K.dev_audio", f"{fname}.wav"), 0.8,
                  rate=44100, gain=0.0)
    out = str(tmp_path / "out")
    prepare_personal_librispeech(libri, musan, fsd, out, **OPTIONS)
    # no utterance lost to its noise: every speaker keeps 3 + 2 + 3
    assert all((s["n_train"], s["n_valid"], s["n_test"]) == ("3", "2", "3")
               for s in rows(f"{out}/speakers.csv"))
    assert [r["ID"] for r in rows(f"{out}/premix_noise.csv")] == ["1007"]
    skipped = open(f"{out}/skipped_silent.txt").read().split()
    assert skipped and set(skipped) <= {
        os.path.join(out, "resampled", f"{f}.wav") for f in silent}
