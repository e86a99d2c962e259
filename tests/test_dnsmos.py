"""DNSMOS P.835: our wrapper against ``speechmos`` itself, resampling, and
the reference-free metric sets (the end-to-end run that selects a
checkpoint by DNSMOS OVRL is in ``tests/test_folders_recipes.py``)."""

import glob
import os

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
from conftest import ROOT
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_remix.metrics import metric_set
from speechbrain_remix.metrics.dnsmos import (
    DNSMOS_METRICS,
    DNSMOSMetrics,
    EnhancementDNSMOSMetrics,
    dnsmos,
)

RATE = 16000
DEMO = os.path.join(ROOT, "data", "demo")
KEYS = {"dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos",
        "dnsmos_ovrl": "ovrl_mos", "dnsmos_p808": "p808_mos"}


def demo_speech(seconds):
    """``seconds`` of shipped demo speech (test speakers, concatenated)."""
    parts, n = [], 0
    for path in sorted(glob.glob(os.path.join(DEMO, "speech", "test",
                                              "*.ogg"))):
        wav, rate = sf.read(path, dtype="float32")
        assert rate == RATE
        parts.append(wav)
        n += len(wav)
        if n >= seconds * RATE:
            break
    return np.concatenate(parts)[: int(seconds * RATE)]


def demo_noise(n):
    path = sorted(glob.glob(os.path.join(DEMO, "noise", "env", "test",
                                         "*.ogg")))[0]
    wav, _ = sf.read(path, dtype="float32")
    return np.tile(wav, n // len(wav) + 1)[:n]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """10 s of demo speech, clean and with environmental noise at 5 dB,
    written as float wavs."""
    folder = tmp_path_factory.mktemp("dnsmos")
    clean = demo_speech(10.0)
    noise = demo_noise(len(clean))
    gain = np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** 0.5)
    paths = {}
    for name, wav in (("clean", clean), ("noisy", clean + gain * noise)):
        paths[name] = str(folder / f"{name}.wav")
        sf.write(paths[name], wav.astype(np.float32), RATE, subtype="FLOAT")
    return paths


@pytest.mark.parametrize("name", ["clean", "noisy"])
def test_equals_speechmos_on_the_same_array(files, name):
    from speechmos import dnsmos as speechmos_dnsmos

    wav, rate = sf.read(files[name], dtype="float32")
    ours = dnsmos(torch.from_numpy(wav), rate)
    theirs = speechmos_dnsmos.run(wav, RATE)
    assert set(ours) == set(KEYS)
    for name, key in KEYS.items():  # the same computation: equal
        assert ours[name] == pytest.approx(float(theirs[key]), abs=1e-6)
    assert dnsmos(wav, rate) == ours  # numpy input too


def test_noise_lowers_background_and_overall_scores(files):
    clean = dnsmos(sf.read(files["clean"], dtype="float32")[0], RATE)
    noisy = dnsmos(sf.read(files["noisy"], dtype="float32")[0], RATE)
    assert noisy["dnsmos_bak"] < clean["dnsmos_bak"] - 0.5
    assert noisy["dnsmos_ovrl"] < clean["dnsmos_ovrl"]


def test_other_rates_give_the_16k_value(files):
    """An 8 kHz or 48 kHz copy of a signal scores as the signal itself.
    The signal is first band-limited to 4 kHz, so that the 8 kHz copy
    holds all of it; what then differs is only the resampling filters'
    error.  Measured: at most 0.005 (P.835) and 0.03 (P.808) at 8 kHz,
    0.001 at 48 kHz.  (A full-band signal loses its 4-8 kHz band at
    8 kHz: P.808 then drops by about 0.3.)"""
    wav = torch.from_numpy(sf.read(files["noisy"], dtype="float32")[0])
    wav = AF.resample(AF.resample(wav, RATE, 8000), 8000, RATE)
    reference = dnsmos(wav, RATE)
    for rate, tol in ((8000, 0.02), (48000, 0.005)):
        scores = dnsmos(AF.resample(wav, RATE, rate), rate)
        for name in DNSMOS_METRICS:
            assert scores[name] == pytest.approx(reference[name], abs=tol)
        assert scores["dnsmos_p808"] == pytest.approx(
            reference["dnsmos_p808"], abs=2.5 * tol)


def test_scaled_by_peak_only_above_one(files, monkeypatch):
    from speechmos import dnsmos as speechmos_dnsmos

    seen = []
    real = speechmos_dnsmos.run
    monkeypatch.setattr(speechmos_dnsmos, "run",
                        lambda x, sr: seen.append(x) or real(x[:RATE], sr))
    wav = torch.from_numpy(sf.read(files["noisy"], dtype="float32")[0])
    dnsmos(0.5 * wav, RATE)
    dnsmos(4.0 * wav, RATE)  # speechmos refuses values outside [-1, 1]
    np.testing.assert_array_equal(seen[0], (0.5 * wav).numpy())
    assert np.abs(seen[1]).max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="1-D"):
        dnsmos(torch.zeros(2, RATE), RATE)
    with pytest.raises(ValueError, match="NaN"):
        dnsmos(torch.full((RATE,), float("nan")), RATE)


def batch_of(files, with_clean):
    clean = torch.from_numpy(sf.read(files["clean"], dtype="float32")[0])
    noisy = torch.from_numpy(sf.read(files["noisy"], dtype="float32")[0])
    items = [{"id": "a", "mix": noisy, "clean": clean},
             {"id": "b", "mix": noisy[: 3 * RATE], "clean": clean[: 3 * RATE]}]
    if not with_clean:
        items = [{k: v for k, v in item.items() if k != "clean"}
                 for item in items]
    return PaddedBatch(items), clean, noisy


def test_metric_sets_score_a_batch(files):
    batch, clean, noisy = batch_of(files, with_clean=False)
    ms = metric_set({"eval_metrics": "dnsmos", "sample_rate": RATE})
    assert isinstance(ms, DNSMOSMetrics)
    assert hasattr(batch, ms.reference) and not hasattr(batch, "clean")
    # the second utterance, its padding cut: as dnsmos() of its 3 s
    row = ms.score(batch.mix.data[1], batch, 1, 3 * RATE)
    expected = dnsmos(noisy[: 3 * RATE], RATE)
    assert row == {m: expected[m] for m in DNSMOS_METRICS}
    # with references, the intrusive metrics come first, then DNSMOS
    batch, clean, noisy = batch_of(files, with_clean=True)
    ms = metric_set({"eval_metrics": "enhancement_dnsmos",
                     "sample_rate": RATE})
    assert isinstance(ms, EnhancementDNSMOSMetrics)
    assert ms.columns == ("mix_wav", "clean_wav") and ms.reference == "clean"
    row = ms.score(clean, batch, 0, len(clean))
    assert list(row) == list(ms.names)
    assert row["si_sdr"] > 100 and row["si_sdri"] > 90  # clean vs itself
    assert row["dnsmos_ovrl"] == pytest.approx(
        dnsmos(clean, RATE)["dnsmos_ovrl"], abs=1e-9)
