"""Composite measures (CSIG, CBAK, COVL; Hu & Loizou, 2008): each
component's fixed points and monotonicity, the vectorised pieces against
direct loops, reference values from pysepm and CMGAN's compute_metrics on
fixed signals, the clipping, and the ``eval_metrics: composite`` set."""

import math
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import ROOT
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter, resample_poly

from speechbrain_remix.metrics import CompositeMetrics, metric_set
from speechbrain_remix.metrics.composite import (
    _nearest_peaks,
    autocorrelation,
    composite,
    composite_scores,
    frame_measures,
    frames,
    llr_frames,
    lpc,
    segsnr_frames,
    wss_frames,
)

FS = 16000
DEMO = os.path.join(ROOT, "data", "demo", "speech", "test",
                    "fillets_v_1st-v-davej.ogg")


def harmonic_speech(seconds=3.0):
    """Deterministic speech-like signal: a gliding harmonic complex with a
    moving spectral tilt and some breath noise, in 4 syllables a second
    with near-silent gaps."""
    t = np.arange(int(seconds * FS)) / FS
    phase = 2 * np.pi * np.cumsum(140 + 40 * np.sin(2 * np.pi * 0.7 * t)) / FS
    tilt = 1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
    voiced = sum(np.sin(k * phase) / k**tilt for k in range(1, 21))
    rng = np.random.default_rng(0)
    breath = lfilter([1, -0.9], [1], rng.standard_normal(t.size))
    envelope = 0.02 + np.clip(np.sin(2 * np.pi * 2 * t), 0, None)
    return 0.1 * (voiced + 0.03 * breath) * envelope


def add_noise(clean, snr_db, seed):
    """``clean`` plus seeded white noise at ``snr_db`` (whole signal)."""
    noise = np.random.default_rng(seed).standard_normal(clean.size)
    gain = np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return clean + gain * noise


def demo_speech():
    speech, fs = sf.read(DEMO, dtype="float64")
    assert fs == FS
    return speech


def reference_cases():
    """The fixed (clean, estimate) pairs of :data:`REFERENCE`."""
    h, d = harmonic_speech(), demo_speech()
    return {
        "harmonic_0dB": (h, add_noise(h, 0, 1)),
        "harmonic_10dB": (h, add_noise(h, 10, 2)),
        "harmonic_30dB": (h, add_noise(h, 30, 3)),
        "demo_10dB": (d, add_noise(d, 10, 4)),
        "demo_30dB": (d, add_noise(d, 30, 5)),
    }


# ----------------------------------------------------------------------
# fixed points and monotonicity
def test_identical_signals_are_perfect():
    x = harmonic_speech(1.0)
    assert np.allclose(llr_frames(x, x, FS), 0, atol=1e-9)
    assert np.allclose(wss_frames(x, x, FS), 0, atol=1e-9)
    assert np.all(segsnr_frames(x, x, FS) == 35.0)  # the cap
    m = frame_measures(x, x, FS)
    assert m == pytest.approx({"llr": 0, "wss": 0, "segsnr": 35}, abs=1e-9)


def test_segsnr_floor_and_a_known_value():
    x = harmonic_speech(1.0)
    assert np.all(segsnr_frames(x, -3 * x, FS) == -10.0)  # -12 dB: floor
    # a per-frame scaled copy: SNR = 20 log10(1 / 0.1) = 20 dB everywhere
    assert np.allclose(segsnr_frames(x, 0.9 * x, FS), 20.0)


def test_more_noise_is_worse():
    clean = harmonic_speech(2.0)
    rows = [composite(clean, add_noise(clean, snr, 7), FS)
            for snr in (40, 20, 10, 0)]
    for better, worse in zip(rows, rows[1:]):
        assert worse["llr"] > better["llr"]
        assert worse["wss"] > better["wss"]
        assert worse["segsnr"] < better["segsnr"]
        assert worse["pesq"] < better["pesq"]
        for m in ("csig", "cbak", "covl"):
            assert worse[m] <= better[m]
    assert rows[0]["cbak"] > rows[-1]["cbak"]


def test_frames_match_composite_m():
    x = np.arange(1000.0)
    f = frames(x, FS)  # W = 480, S = 120, floor(1000/120 - 4) = 4
    win = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, 481) / 481))
    assert f.shape == (4, 480)
    assert np.allclose(f[3], x[360:840] * win)
    with pytest.raises(ValueError, match="shorter"):
        frames(np.ones(500), FS)


# ----------------------------------------------------------------------
# vectorised pieces against direct computations
def test_levinson_solves_the_normal_equations():
    rng = np.random.default_rng(0)
    x = lfilter([1], [1, -1.2, 0.6], rng.standard_normal((3, 480)), axis=-1)
    r = autocorrelation(x, 16)
    assert np.allclose(r[1, 5], np.dot(x[1, :-5], x[1, 5:]))
    a = lpc(r)
    for f in range(3):  # Yule-Walker: R c = -r
        assert np.allclose(a[f, 1:], solve_toeplitz(r[f, :-1], -r[f, 1:]))


def test_nearest_peaks_match_the_reference_loop():
    rng = np.random.default_rng(1)
    energy = rng.normal(size=(200, 25)).round(1)  # ties: flat slopes too

    def loop(e):  # composite.m's search, 0-based
        s = np.diff(e)
        out = []
        for i in range(24):
            n = i
            if s[i] > 0:
                while n < 24 and s[n] > 0:
                    n += 1
                out.append(e[n - 1])
            else:
                while n >= 0 and s[n] <= 0:
                    n -= 1
                out.append(e[n + 1])
        return out

    got = _nearest_peaks(energy, np.diff(energy, axis=-1))
    assert np.array_equal(got, np.array([loop(e) for e in energy]))


# ----------------------------------------------------------------------
# reference values
# pysepm's composite() (schmiph2/pysepm qualityMeasures.py, commit 3143ccc)
# on reference_cases(), rounded to 6 decimals; CMGAN's compute_metrics
# (commit 4a4e962) gives the same once its WSS's int16 scaling of float
# input is removed.  Ours agree to 2e-8 (see the module docstring).
REFERENCE = {
    "harmonic_0dB": {"pesq": 1.154559, "llr": 3.071467, "wss": 58.072303,
                     "segsnr": -4.583503, "csig": 1.0, "cbak": 1.490612,
                     "covl": 1.0},
    "harmonic_10dB": {"pesq": 1.242438, "llr": 2.416991, "wss": 42.909095,
                      "segsnr": 0.259999, "csig": 1.0, "cbak": 1.943902,
                      "covl": 1.056300},
    "harmonic_30dB": {"pesq": 1.762307, "llr": 0.984147, "wss": 10.552437,
                      "segsnr": 15.988156, "csig": 3.048012,
                      "cbak": 3.409770, "covl": 2.434907},
    "demo_10dB": {"pesq": 1.079886, "llr": 4.251473, "wss": 37.060367,
                  "segsnr": 2.016278, "csig": 1.0, "cbak": 2.017788,
                  "covl": 1.0},
    "demo_30dB": {"pesq": 1.999386, "llr": 1.955563, "wss": 11.348923,
                  "segsnr": 21.080848, "csig": 2.184215, "cbak": 3.838357,
                  "covl": 2.122815},
}


@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_reference_values(case):
    clean, estimate = reference_cases()[case]
    got = composite(clean, estimate, FS)
    for key, want in REFERENCE[case].items():
        assert got[key] == pytest.approx(want, rel=1e-4, abs=1e-4), key


def test_reference_values_at_8_khz():
    """Order-10 LPC and raw narrow-band PESQ (pysepm's values)."""
    clean, estimate = reference_cases()["harmonic_10dB"]
    got = composite(resample_poly(clean, 1, 2), resample_poly(estimate, 1, 2),
                    8000)
    want = {"pesq": 2.246931, "llr": 1.77234, "wss": 43.023947,
            "segsnr": 1.8708, "csig": 2.236946, "cbak": 2.524726,
            "covl": 2.194173}
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-4), key


def test_digital_silence_stays_finite():
    """``composite.m``'s ``eps`` keeps LLR defined on all-zero frames
    (pysepm and CMGAN return NaN there)."""
    clean = np.concatenate([np.zeros(8000), harmonic_speech(1.5)])
    got = composite(clean, add_noise(clean, 20, 0), FS, pesq=2.0)
    assert all(math.isfinite(v) for v in got.values())


# ----------------------------------------------------------------------
# the regressions and their clipping
def test_composite_scores_formulas_and_clipping():
    csig, cbak, covl = composite_scores(pesq=2.5, llr=0.8, wss=30.0,
                                        segsnr=4.0)
    assert csig == pytest.approx(3.093 - 1.029 * 0.8 + 0.603 * 2.5 - 0.27)
    assert cbak == pytest.approx(1.634 + 0.478 * 2.5 - 0.21 + 0.063 * 4)
    assert covl == pytest.approx(1.594 + 0.805 * 2.5 - 0.512 * 0.8 - 0.21)
    assert composite_scores(4.64, 0.0, 0.0, 35.0) == (5.0, 5.0, 5.0)
    assert composite_scores(-0.5, 3.0, 150.0, -10.0) == (1.0, 1.0, 1.0)
    assert all(math.isnan(v) for v in composite_scores(math.nan, 0, 0, 0))


def test_composite_is_clipped_and_reuses_a_given_pesq():
    clean = harmonic_speech(1.0)
    noisy = add_noise(clean, -5, 0)
    low = composite(clean, noisy, FS, pesq=1.0)
    assert low["pesq"] == 1.0 and low["csig"] == 1.0 and low["covl"] == 1.0
    high = composite(clean, clean, FS, pesq=4.64)
    assert (high["csig"], high["cbak"], high["covl"]) == (5.0, 5.0, 5.0)


def test_ten_seconds_take_well_under_a_second():
    clean = harmonic_speech(10.0)
    noisy = add_noise(clean, 5, 0)
    start = time.perf_counter()
    frame_measures(clean, noisy, FS)
    assert time.perf_counter() - start < 1.0


# ----------------------------------------------------------------------
# the metric set
def fake_batch(clean, mix):
    return SimpleNamespace(clean=SimpleNamespace(data=clean),
                           mix=SimpleNamespace(data=mix))


def test_metric_set_scores_a_batch():
    ms = metric_set({"eval_metrics": "composite", "sample_rate": FS})
    assert isinstance(ms, CompositeMetrics)
    assert ms.names == ("si_sdr", "si_sdri", "pesq", "stoi", "csig", "cbak",
                        "covl")
    assert (ms.reference, ms.columns, ms.separated) == (
        "clean", ("mix_wav", "clean_wav"), False)
    h = harmonic_speech(2.0)
    clean = torch.tensor(np.stack([h, np.roll(h, 4000)]), dtype=torch.float32)
    mix = torch.tensor(np.stack([add_noise(h, 20, 0), add_noise(h, 20, 1)]),
                       dtype=torch.float32)
    n = 24000  # utterance 0 is shorter than the padded batch
    estimate = clean[0, :n] + 0.5 * (mix[0, :n] - clean[0, :n])
    row = ms.score(estimate, fake_batch(clean, mix), 0, n)
    assert tuple(row) == ms.names
    direct = composite(clean[0, :n].double().numpy(),
                       estimate.double().numpy(), FS)
    for m in ("pesq", "csig", "cbak", "covl"):
        assert row[m] == pytest.approx(direct[m], abs=1e-6)
    assert row["si_sdri"] == pytest.approx(20 * math.log10(2), abs=0.05)
    worse = ms.score(mix[0, :n], fake_batch(clean, mix), 0, n)
    assert worse["si_sdri"] == pytest.approx(0, abs=1e-4)
    for m in ("pesq", "csig", "cbak", "covl"):
        assert worse[m] < row[m]


def test_metric_set_needs_16_khz():
    with pytest.raises(ValueError, match="16 kHz"):
        metric_set({"eval_metrics": "composite", "sample_rate": 8000})
