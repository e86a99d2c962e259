"""Composite speech-quality measures CSIG, CBAK and COVL (Hu & Loizou,
2008, "Evaluation of objective quality measures for speech enhancement",
IEEE TASLP 16(1)), and their components: log-likelihood ratio (LLR),
weighted spectral slope (WSS) and segmental SNR.

The composite measures are linear regressions, fitted on listening tests,
of PESQ and the three frame-based distortions::

    CSIG = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS   (signal distortion)
    CBAK = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR (background noise)
    COVL = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS   (overall quality)

each clipped to ``[1, 5]``.  The frame-based measures follow Loizou's
MATLAB ``composite.m`` (the book *Speech Enhancement: Theory and Practice*;
LLR, WSS and segSNR after Pellom and Hansen) detail for detail:

* 30 ms Hann frames (``0.5 (1 - cos(2 pi n / (W + 1)))``, ``n = 1..W``)
  every 7.5 ms, ``floor(L / S - W / S)`` of them (the last full frame is
  not used, as in the reference); ``eps`` is added to both signals, which
  are cut to the shorter length (it keeps LLR finite, if large, on
  digital silence, where pysepm and CMGAN's port give NaN);
* **LLR**: LPC of order 16 (10 below 10 kHz) by Levinson-Durbin on each
  frame's autocorrelation, ``log(a_e^T R_c a_e / a_c^T R_c a_c)``; the
  mean of the 95 % lowest frame values;
* **WSS** (Klatt, 1982): 25 Gaussian critical-band filters (up to 3.6 kHz)
  on a ``2 W``-rounded-up FFT power spectrum, band energies in dB (floor
  ``1e-10``), slope differences weighted by Klatt's ``Kmax = 20``,
  ``Klocmax = 1`` weights and normalised by their sum; the mean of the
  95 % lowest frame values.  The nearest-peak search reproduces the
  reference's indexing (searching to the right, it takes the band just
  below the peak);
* **segSNR**: per-frame SNR ``10 log10(E_s / (E_n + eps) + eps)`` clipped
  to ``[-10, 35]`` dB, the mean over all frames.

PESQ, the choice to note: the regression was fitted with the *raw*
narrow-band PESQ score of the time.  At 16 kHz this module uses the
wide-band PESQ (ITU-T P.862.2, MOS-LQO) of the ``pesq`` package, as the
widely used Python implementations do (``pysepm``, CMGAN's
``compute_metrics``, SpeechBrain's and Facebook's ``denoiser``
``eval_composite``) and as the VoiceBank-DEMAND literature reports CSIG,
CBAK and COVL: our numbers are comparable with those tables, not with the
2008 paper's.  At 8 kHz the narrow-band MOS-LQO is mapped back to the raw
PESQ score (inverse of P.862.1), as ``composite.m`` intends and ``pysepm``
does.

Checked against two widely used Python ports, transcribed from their
sources into a scratch folder (file I/O and STOI left out; not a
dependency) and run on five fixed 16 kHz pairs
(``tests/test_composite.py``: a seeded harmonic speech-like signal with
seeded white noise at 0, 10 and 30 dB, and a shipped demo utterance with
noise at 10 and 30 dB):

* ``pysepm`` (schmiph2/pysepm, ``qualityMeasures.composite``, commit
  3143ccc): largest absolute difference 1.4e-8 (LLR and CSIG: rounding
  in frames whose clean LPC is ill-conditioned), PESQ identical, WSS and
  segSNR within 1e-14.  The test holds its values.
* CMGAN's ``src/tools/compute_metrics.py`` (ruizhecao96/CMGAN, commit
  4a4e962; validated by its authors against ``composite.m`` on the
  VoiceBank-DEMAND test set): the same agreement (1.7e-8) once its WSS's
  division of the input by 32768 is removed.  That division, meant for
  int16 samples, is applied to float input too and floors about 65 % of
  the band energies at -100 dB: on these signals its WSS is lower by up
  to 41 and
  its CSIG, CBAK and COVL higher by up to 0.32, 0.29 and 0.27.
* SpeechBrain's ``eval_composite`` (from Facebook's ``denoiser``) differs
  by more and is not a reference here: its segSNR removes the mean and
  rescales the estimate to the clean peak, in place (so PESQ sees the
  rescaled estimate too), and its LPC in float32 and ``nan_to_num`` move
  LLR on near-silent frames (up to 0.64 in LLR and 0.45 in CSIG here).

LLR, WSS and segSNR of 10 s of audio take about 0.1 s here (vectorised
over frames; pysepm's loops take 1 s), PESQ about 0.2 s more.

Example
-------
>>> import numpy as np
>>> t = np.arange(16000) / 16000
>>> clean = np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
>>> m = frame_measures(clean, clean, 16000)
>>> round(m["llr"], 6), round(m["wss"], 6), m["segsnr"]
(0.0, 0.0, 35.0)
>>> composite_scores(pesq=4.64, llr=0.0, wss=0.0, segsnr=35.0)
(5.0, 5.0, 5.0)
"""

import logging
import math

import numpy as np

from speechbrain_remix.metrics.enhancement import (
    METRICS,
    EnhancementMetrics,
    enhancement_metrics,
)

logger = logging.getLogger(__name__)

ALPHA = 0.95  # share of the lowest frame values kept for LLR and WSS
SEGSNR_RANGE = (-10.0, 35.0)  # dB, per frame
EPS = np.finfo(np.float64).eps

# Critical bands of the WSS measure (centre frequency, bandwidth) in Hz.
CENTER_HZ = np.array([
    50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372,
    703.378, 798.717, 904.128, 1020.38, 1148.30, 1288.72, 1442.54, 1610.70,
    1794.16, 1993.93, 2211.08, 2446.71, 2701.97, 2978.04, 3276.17, 3597.63,
])
BANDWIDTH_HZ = np.array([
    70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398,
    105.411, 116.256, 127.914, 140.423, 153.823, 168.154, 183.457, 199.776,
    217.153, 235.631, 255.255, 276.072, 298.126, 321.465, 346.136,
])
K_MAX, K_LOCMAX = 20.0, 1.0  # Klatt's weighting constants (1982, p. 1280)


def _frame_geometry(sample_rate):
    """Window length ``W`` (30 ms, rounded half up as MATLAB does) and hop
    ``S = floor(W / 4)`` in samples."""
    win = int(math.floor(30 * sample_rate / 1000 + 0.5))
    return win, win // 4


def frames(signal, sample_rate):
    """Hann-windowed analysis frames of the composite measures.

    Arguments
    ---------
    signal : numpy.ndarray
        1-D signal.
    sample_rate : int
        Sampling rate in Hz.

    Returns
    -------
    numpy.ndarray
        ``[F, W]`` with ``W`` = 30 ms, hop ``W // 4`` and
        ``F = floor(L / S - W / S)`` frames (as ``composite.m``).

    Example
    -------
    >>> frames(np.ones(16000), 16000).shape
    (129, 480)
    """
    win, hop = _frame_geometry(sample_rate)
    n = int(math.floor(len(signal) / hop - win / hop))
    if n < 1:
        raise ValueError(
            f"signal of {len(signal)} samples is shorter than the "
            f"{win + hop}-sample minimum of the composite measures"
        )
    window = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, win + 1) / (win + 1)))
    view = np.lib.stride_tricks.sliding_window_view(signal, win)[::hop][:n]
    return view * window


def _prepare(clean, estimate):
    """float64 copies cut to the shorter length, ``eps`` added (as
    ``composite.m``)."""
    clean = np.asarray(clean, dtype=np.float64).reshape(-1)
    estimate = np.asarray(estimate, dtype=np.float64).reshape(-1)
    n = min(len(clean), len(estimate))
    return clean[:n] + EPS, estimate[:n] + EPS


def _lowest_mean(values, alpha=ALPHA):
    """Mean of the ``round(alpha * F)`` lowest values (NaNs sort last, as
    in MATLAB)."""
    keep = max(1, int(math.floor(len(values) * alpha + 0.5)))
    return float(np.mean(np.sort(values)[:keep]))


# ----------------------------------------------------------------------
# LLR
def autocorrelation(framed, order):
    """Autocorrelation lags ``0..order`` of each frame, ``[F, order + 1]``.

    Example
    -------
    >>> autocorrelation(np.array([[1.0, 2.0, 3.0]]), 2)
    array([[14.,  8.,  3.]])
    """
    n = framed.shape[-1]
    return np.stack([np.einsum("fi,fi->f", framed[:, : n - k], framed[:, k:])
                     for k in range(order + 1)], axis=-1)


def lpc(acorr):
    """Prediction-error filters ``[1, c_1, ..., c_P]`` from autocorrelation
    lags by the Levinson-Durbin recursion, vectorised over frames.

    Arguments
    ---------
    acorr : numpy.ndarray
        ``[F, P + 1]`` autocorrelation lags.

    Returns
    -------
    numpy.ndarray
        ``[F, P + 1]``: ``e[n] = x[n] + sum_k c_k x[n - k]`` is the
        prediction error.

    Example
    -------
    >>> lpc(np.array([[1.0, 0.5, 0.25]])) + 0.0  # AR(1) process, a = 0.5
    array([[ 1. , -0.5,  0. ]])
    """
    n_frames, order = acorr.shape[0], acorr.shape[1] - 1
    poly = np.zeros((n_frames, order + 1))
    poly[:, 0] = 1.0
    error = acorr[:, 0].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(1, order + 1):
            acc = np.einsum("fj,fj->f", poly[:, :i], acorr[:, i:0:-1])
            k = -acc / error
            poly[:, 1:i] = poly[:, 1:i] + k[:, None] * poly[:, i - 1:0:-1]
            poly[:, i] = k
            error = (1 - k * k) * error
    return poly


def llr_frames(clean, estimate, sample_rate):
    """Log-likelihood ratio of each frame (no ``eps`` added, no trimming).

    Non-positive ratios (degenerate frames) give NaN.
    """
    order = 10 if sample_rate < 10000 else 16
    r_clean = autocorrelation(frames(clean, sample_rate), order)
    r_est = autocorrelation(frames(estimate, sample_rate), order)
    a_clean, a_est = lpc(r_clean), lpc(r_est)
    lags = np.abs(np.subtract.outer(np.arange(order + 1),
                                    np.arange(order + 1)))
    toeplitz = r_clean[:, lags]  # [F, P + 1, P + 1]
    num = np.einsum("fi,fij,fj->f", a_est, toeplitz, a_est)
    den = np.einsum("fi,fij,fj->f", a_clean, toeplitz, a_clean)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / den
        return np.where(ratio > 0, np.log(np.where(ratio > 0, ratio, 1.0)),
                        np.nan)


# ----------------------------------------------------------------------
# WSS
def critical_band_filters(sample_rate):
    """The 25 Gaussian critical-band filters of WSS on the positive FFT
    bins, ``[25, n_fft // 2]`` (values below -30 dB set to zero).

    Example
    -------
    >>> critical_band_filters(16000).shape
    (25, 512)
    """
    win, _ = _frame_geometry(sample_rate)
    half = 2 ** int(math.ceil(math.log2(2 * win))) // 2
    nyquist = sample_rate / 2
    centre = np.floor(CENTER_HZ / nyquist * half)[:, None]
    width = (BANDWIDTH_HZ / nyquist * half)[:, None]
    norm = np.log(BANDWIDTH_HZ[0]) - np.log(BANDWIDTH_HZ)[:, None]
    bins = np.arange(half)[None, :]
    filt = np.exp(-11 * ((bins - centre) / width) ** 2 + norm)
    min_factor = math.exp(-30.0 / (2.0 * 2.303))  # -30 dB point
    return np.where(filt > min_factor, filt, 0.0)


def _nearest_peaks(energy, slope):
    """Energy of the nearest spectral peak of each band, searching right
    where the slope rises and left otherwise (``composite.m``'s indexing).
    """
    n = slope.shape[-1]
    idx = np.broadcast_to(np.arange(n), slope.shape)
    rising = slope > 0
    # first band j >= i whose slope does not rise (n if none)
    nxt = np.where(rising, n, idx)
    nxt = np.minimum.accumulate(nxt[:, ::-1], axis=-1)[:, ::-1]
    # last band j <= i whose slope rises (-1 if none)
    prv = np.maximum.accumulate(np.where(rising, idx, -1), axis=-1)
    peak = np.where(rising, nxt - 1, prv + 1)
    return np.take_along_axis(energy, peak, axis=-1)


def wss_frames(clean, estimate, sample_rate):
    """Weighted spectral slope distance of each frame (no ``eps`` added,
    no trimming)."""
    filters = critical_band_filters(sample_rate)
    n_fft = 2 * filters.shape[1]

    def band_db(signal):
        spec = np.abs(np.fft.rfft(frames(signal, sample_rate), n_fft)) ** 2
        energy = spec[:, : n_fft // 2] @ filters.T
        return 10 * np.log10(np.maximum(energy, 1e-10))

    weights, slopes = [], []
    for db in (band_db(clean), band_db(estimate)):
        slope = np.diff(db, axis=-1)
        peak = _nearest_peaks(db, slope)
        low = db[:, :-1]
        w_max = K_MAX / (K_MAX + db.max(axis=-1, keepdims=True) - low)
        w_loc = K_LOCMAX / (K_LOCMAX + peak - low)
        weights.append(w_max * w_loc)
        slopes.append(slope)
    weight = (weights[0] + weights[1]) / 2
    dist = np.sum(weight * (slopes[0] - slopes[1]) ** 2, axis=-1)
    return dist / np.sum(weight, axis=-1)


# ----------------------------------------------------------------------
# segmental SNR
def segsnr_frames(clean, estimate, sample_rate):
    """Segmental SNR of each frame in dB, clipped to ``[-10, 35]``."""
    c = frames(clean, sample_rate)
    e = frames(estimate, sample_rate)
    signal = np.sum(c**2, axis=-1)
    noise = np.sum((c - e) ** 2, axis=-1)
    snr = 10 * np.log10(signal / (noise + EPS) + EPS)
    return np.clip(snr, *SEGSNR_RANGE)


def frame_measures(clean, estimate, sample_rate):
    """LLR, WSS (means of their 95 % lowest frames) and segmental SNR (the
    mean over all frames) of ``estimate`` against ``clean``.

    Arguments
    ---------
    clean, estimate : array_like
        1-D signals (cut to the shorter one).
    sample_rate : int
        Sampling rate in Hz.

    Returns
    -------
    dict
        ``{"llr", "wss", "segsnr"}`` (floats).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(8000)
    >>> m = frame_measures(x, x + 0.1 * rng.standard_normal(8000), 16000)
    >>> 10 < m["segsnr"] < 30, m["llr"] > 0, m["wss"] > 0
    (True, True, True)
    """
    return _measures(*_prepare(clean, estimate), sample_rate)


def _measures(clean, estimate, sample_rate):
    return {
        "llr": _lowest_mean(llr_frames(clean, estimate, sample_rate)),
        "wss": _lowest_mean(wss_frames(clean, estimate, sample_rate)),
        "segsnr": float(np.mean(segsnr_frames(clean, estimate,
                                              sample_rate))),
    }


# ----------------------------------------------------------------------
# PESQ and the composite regressions
def raw_pesq_from_mos_lqo(mos_lqo):
    """Raw PESQ score from a narrow-band MOS-LQO (inverse of ITU-T
    P.862.1's mapping ``0.999 + 4 / (1 + exp(-1.4945 x + 4.6607))``).

    Example
    -------
    >>> x = 2.5
    >>> y = 0.999 + 4 / (1 + math.exp(-1.4945 * x + 4.6607))
    >>> round(raw_pesq_from_mos_lqo(y), 9)
    2.5
    """
    return (4.6607 - math.log(4.0 / (mos_lqo - 0.999) - 1.0)) / 1.4945


def pesq_score(clean, estimate, sample_rate):
    """The PESQ value the composite measures use: wide-band MOS-LQO at
    16 kHz, raw narrow-band PESQ at 8 kHz; NaN where PESQ is undefined
    (no utterance detected, too short)."""
    from pesq import pesq as pesq_fn

    if sample_rate not in (8000, 16000):
        raise ValueError(f"PESQ needs 8 or 16 kHz audio, not {sample_rate}")
    mode = "wb" if sample_rate == 16000 else "nb"
    try:
        value = pesq_fn(sample_rate, np.asarray(clean, np.float64),
                        np.asarray(estimate, np.float64), mode)
    except Exception as err:  # NoUtterancesError, buffer too short...
        logger.warning("PESQ undefined (%s); recording NaN", err)
        return math.nan
    return value if mode == "wb" else raw_pesq_from_mos_lqo(value)


def composite_scores(pesq, llr, wss, segsnr):
    """CSIG, CBAK and COVL from their components, each clipped to
    ``[1, 5]`` (NaN stays NaN).

    Example
    -------
    >>> scores = composite_scores(pesq=2.0, llr=0.5, wss=40.0, segsnr=5.0)
    >>> [round(v, 4) for v in scores]
    [3.4245, 2.625, 2.668]
    >>> composite_scores(pesq=-0.5, llr=2.0, wss=150.0, segsnr=-10.0)
    (1.0, 1.0, 1.0)
    """
    csig = 3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss
    cbak = 1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * segsnr
    covl = 1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss
    return tuple(v if math.isnan(v) else min(5.0, max(1.0, v))
                 for v in (csig, cbak, covl))


def composite(clean, estimate, sample_rate, pesq=None):
    """PESQ, LLR, WSS, segmental SNR, CSIG, CBAK and COVL of ``estimate``.

    Arguments
    ---------
    clean, estimate : array_like
        1-D signals (numpy arrays or CPU tensors; cut to the shorter).
    sample_rate : int
        8000 or 16000 Hz (PESQ's rates).
    pesq : float, optional
        A PESQ value already computed for this pair (as
        :func:`pesq_score` would), to avoid computing it twice.

    Returns
    -------
    dict
        ``{"pesq", "llr", "wss", "segsnr", "csig", "cbak", "covl"}``.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(32000) / 16000
    >>> clean = np.sin(2 * np.pi * 150 * t) * np.sin(np.pi * t) ** 2
    >>> noisy = clean + 0.05 * rng.standard_normal(t.size)
    >>> out = composite(clean, noisy, 16000, pesq=2.0)
    >>> sorted(out)
    ['cbak', 'covl', 'csig', 'llr', 'pesq', 'segsnr', 'wss']
    >>> all(1 <= out[k] <= 5 for k in ("csig", "cbak", "covl"))
    True
    """
    clean, estimate = _prepare(clean, estimate)
    out = _measures(clean, estimate, sample_rate)
    if pesq is None:
        pesq = pesq_score(clean, estimate, sample_rate)
    out["pesq"] = float(pesq)
    out["csig"], out["cbak"], out["covl"] = composite_scores(
        out["pesq"], out["llr"], out["wss"], out["segsnr"])
    return out


# ----------------------------------------------------------------------
# the metric set
COMPOSITE_METRICS = METRICS + ("csig", "cbak", "covl")


class CompositeMetrics(EnhancementMetrics):
    """The enhancement metric set plus CSIG, CBAK and COVL
    (``eval_metrics: composite``): SI-SDR, SI-SDR improvement, wide-band
    PESQ, STOI, CSIG, CBAK, COVL of each system's speech ``[B, T]``
    against ``clean_wav``.  PESQ is computed once and shared.  16 kHz
    only (wide-band PESQ and the frame settings the regressions were
    checked with).

    Example
    -------
    >>> from types import SimpleNamespace
    >>> import torch
    >>> t = torch.arange(16000) / 16000
    >>> clean = torch.sin(2 * torch.pi * 200 * t) * torch.sin(torch.pi * t)
    >>> mix = clean + 0.1 * torch.randn(16000, generator=torch.manual_seed(0))
    >>> batch = SimpleNamespace(clean=SimpleNamespace(data=clean[None]),
    ...                         mix=SimpleNamespace(data=mix[None]))
    >>> ms = CompositeMetrics(16000)
    >>> ms.names
    ('si_sdr', 'si_sdri', 'pesq', 'stoi', 'csig', 'cbak', 'covl')
    >>> row = ms.score(clean, batch, 0, 16000)  # the clean speech itself
    >>> tuple(row) == ms.names, row["csig"], row["cbak"], row["covl"]
    (True, 5.0, 5.0, 5.0)
    """

    names = COMPOSITE_METRICS

    def __init__(self, sample_rate, n_speakers=None):
        if sample_rate != 16000:
            raise ValueError(
                f"eval_metrics: composite needs 16 kHz audio (wide-band "
                f"PESQ; CSIG/CBAK/COVL as the literature computes them), "
                f"not sample_rate: {sample_rate}; resample the data or use "
                "eval_metrics: enhancement"
            )
        super().__init__(sample_rate, n_speakers)

    def score(self, estimate, batch, b, length):
        """Metrics of utterance ``b`` of ``batch`` (first ``length``
        samples) for its estimate (1-D)."""
        clean = batch.clean.data[b, :length]
        row = enhancement_metrics(estimate, clean, batch.mix.data[b, :length],
                                  self.sample_rate)
        comp = composite(clean.double().numpy(), estimate.double().numpy(),
                         self.sample_rate, pesq=row["pesq"])
        return {**row, **{m: comp[m] for m in ("csig", "cbak", "covl")}}
