"""The frame-level equations of data purification (Sivaraman et al., 2021)
against direct NumPy computations: SegSNR (Eq. 7), the weights (Eq. 11),
the segmental MSE (Eq. 12), and the frame-weighted SI-SDR of
confidence-weighted RemixIT."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechbrain_remix.losses import confidence_weighted_loss, si_sdr
from speechbrain_remix.models import SNRPredictor
from speechbrain_remix.segsnr import (
    frame_weights,
    frames,
    seg_mse,
    segsnr,
    weighted_si_sdr,
)

N, H = 1024, 256


def np_frames(x):
    """Frame ``j`` of Eq. 7: samples ``Hj .. Hj + N - 1`` of the signal
    padded by ``N / 2`` reflected samples at each end, times the periodic
    Hann window."""
    padded = np.pad(x, N // 2, mode="reflect")
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N) / N)
    count = 1 + len(x) // H
    return np.stack([w * padded[H * j : H * j + N] for j in range(count)])


def signals(seed, length=16000):
    rng = np.random.default_rng(seed)
    speech = rng.standard_normal(length) * np.repeat(
        rng.uniform(0, 1, length // 400 + 1), 400)[:length]  # varying level
    noise = 0.3 * rng.standard_normal(length)
    return speech, noise


def test_segsnr_is_eq7():
    s, n = signals(0)
    x = s + n
    v, r = np_frames(s), np_frames(s - x)  # residual r = v - v_hat
    expected = 10 * np.log10((v**2).sum(1) / (r**2).sum(1))
    got = segsnr(torch.from_numpy(s), torch.from_numpy(x))
    assert got.shape == (63,)  # 1 s at 16 kHz: J = 63 (Sec. 3.3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_segsnr_frames_follow_the_speech_level():
    """Loud frames have a high SNR, near-silent ones a low one."""
    s = np.zeros(16000)
    s[8000:] = np.random.default_rng(1).standard_normal(8000)
    n = 0.1 * np.random.default_rng(2).standard_normal(16000)
    alpha = segsnr(torch.from_numpy(s), torch.from_numpy(s + n))
    assert alpha[:25].max() < -50 and alpha[40:].min() > 15


def test_frame_weights_are_a_detached_sigmoid():
    """Eq. 11, and no gradient reaches the SNR predictor through p."""
    h = SNRPredictor(hidden=8, num_layers=1)
    x = torch.randn(2, 16000)
    p = frame_weights(h(x))
    assert not p.requires_grad
    torch.testing.assert_close(p, torch.sigmoid(h(x)).detach())
    est = torch.randn(2, 16000, requires_grad=True)
    seg_mse(est, x, p).sum().backward()
    assert est.grad is not None
    assert all(q.grad is None for q in h.parameters())


def np_seg_mse(est, tgt, p):
    """Eq. 12, each signal's mean removed first (official code)."""
    e = np_frames(tgt - tgt.mean()) - np_frames(est - est.mean())
    return np.mean(p * (e**2).sum(1) / N)


def test_seg_mse_is_eq12_and_windowed_mse_with_unit_weights():
    s, n = signals(3)
    y = s + 0.5 * n + 0.2  # an offset: removed with the means
    ones = np.ones(63)
    got = seg_mse(torch.from_numpy(y)[None], torch.from_numpy(s)[None])
    assert got.item() == pytest.approx(np_seg_mse(y, s, ones), rel=1e-9)
    p = np.random.default_rng(4).uniform(0, 1, 63)
    weighted = seg_mse(torch.from_numpy(y)[None], torch.from_numpy(s)[None],
                       torch.from_numpy(p)[None])
    assert weighted.item() == pytest.approx(np_seg_mse(y, s, p), rel=1e-9)
    # divided by J, not by the weights' sum: halving p halves the loss
    half = seg_mse(torch.from_numpy(y)[None], torch.from_numpy(s)[None],
                   torch.from_numpy(p / 2)[None])
    assert half.item() == pytest.approx(weighted.item() / 2, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 62))
def test_seg_mse_with_one_frame_weighted_is_that_frame(seed, j):
    rng = np.random.default_rng(seed)
    y, s = rng.standard_normal(16000), rng.standard_normal(16000)
    p = np.zeros(63)
    p[j] = 1.0
    e = np_frames(s - s.mean())[j] - np_frames(y - y.mean())[j]
    got = seg_mse(torch.from_numpy(y)[None], torch.from_numpy(s)[None],
                  torch.from_numpy(p)[None])
    assert got.item() == pytest.approx((e**2).sum() / N / 63, rel=1e-9)


def np_weighted_si_sdr(est, tgt, p):
    est, tgt = np_frames(est - est.mean()), np_frames(tgt - tgt.mean())
    inner = lambda a, b: (p[:, None] * a * b).sum()  # noqa: E731
    alpha = inner(est, tgt) / inner(tgt, tgt)
    e = est - alpha * tgt
    return 10 * np.log10(inner(alpha * tgt, alpha * tgt) / inner(e, e))


def test_weighted_si_sdr_by_hand_and_its_invariances():
    s, n = signals(5)
    y = 2.0 * s + n
    p = np.random.default_rng(6).uniform(0, 1, 63)
    t = lambda a: torch.from_numpy(a)[None]  # noqa: E731
    got = weighted_si_sdr(t(y), t(s), t(p)).item()
    assert got == pytest.approx(np_weighted_si_sdr(y, s, p), abs=1e-6)
    # scale of the weights, of the estimate: no change
    assert weighted_si_sdr(t(y), t(s), t(5 * p)).item() == pytest.approx(
        got, abs=1e-6)
    assert weighted_si_sdr(t(-3 * y), t(s), t(p)).item() == pytest.approx(
        got, abs=1e-6)
    # unit weights: the plain SI-SDR (the squared Hann window at 75 %
    # overlap sums to a constant; only the edge frames differ)
    ones = torch.ones(1, 63, dtype=torch.float64)
    assert weighted_si_sdr(t(y), t(s), ones).item() == pytest.approx(
        si_sdr(t(y), t(s)).item(), abs=0.05)


def test_weighted_si_sdr_ignores_frames_of_zero_weight():
    """An estimate wrong only where the pseudo-target is distrusted (p = 0)
    is perfect for the weighted loss, not for the plain one."""
    rng = np.random.default_rng(7)
    s = rng.standard_normal(16000)
    y = s.copy()
    y[6000:9000] += 3 * rng.standard_normal(3000)  # frames 20..38 touched
    p = np.ones(63)
    p[19:40] = 0.0  # frame j covers samples 256 j - 512 .. 256 j + 511
    t = lambda a: torch.from_numpy(a)[None]  # noqa: E731
    # (not infinite: removing each signal's mean spreads a little of the
    # error over every frame)
    assert weighted_si_sdr(t(y), t(s), t(p)).item() > 40
    assert si_sdr(t(y), t(s)).item() < 5


def test_confidence_weighted_loss_is_blind_to_distrusted_frames():
    """Both terms weighted by p (Eq. 6 in segmental form): with mixture-
    consistent estimates and targets, an error in frames of weight 0 costs
    nothing, and the gradient there is (almost: the mean removal and the
    projection couple all samples) zero."""
    torch.manual_seed(0)
    targets = torch.randn(3, 2, 16000, dtype=torch.float64)
    estimates = targets + 0.5 * torch.randn(3, 2, 16000, dtype=torch.float64)
    p = torch.rand(3, 63, dtype=torch.float64)
    loss = confidence_weighted_loss(estimates, targets, p, (0.5, 0.5), 30.0)
    by_hand = -0.5 * weighted_si_sdr(estimates[:, 0], targets[:, 0], p) \
        - 0.5 * weighted_si_sdr(estimates[:, 1], targets[:, 1], p)
    torch.testing.assert_close(loss, by_hand)

    mix = torch.randn(1, 16000, dtype=torch.float64)
    speech = torch.randn(1, 16000, dtype=torch.float64)
    targets = torch.stack([speech, mix - speech], 1)
    error = 0.3 * torch.randn(1, 16000, dtype=torch.float64)
    estimate = (speech + error).requires_grad_()
    p = torch.ones(1, 63, dtype=torch.float64)
    p[0, 19:40] = 0.0  # frames covering samples 4352 .. 10495
    loss = confidence_weighted_loss(
        torch.stack([estimate, mix - estimate], 1), targets, p)
    loss.sum().backward()
    inside = estimate.grad[0, 6000:9000].abs().max()
    outside = estimate.grad[0, :3000].abs().max()
    assert inside < 1e-3 * outside


def test_frames_shape_for_short_and_odd_lengths():
    assert frames(torch.randn(300)).shape == (2, N)  # zero-padded
    assert frames(torch.randn(3, 16384)).shape == (3, 65, N)


def test_frames_are_the_predictors_stft_frames():
    """Frame j of the losses is frame j of the STFT the SNR predictor
    reads (same centring, padding, window), whatever the length."""
    from speechbrain_remix.spectral import stft

    for length in (16000, 16384, 40000):
        x = torch.randn(1, length, dtype=torch.float64)
        by_frames = torch.fft.rfft(frames(x), dim=-1).abs()
        torch.testing.assert_close(by_frames, stft(x)[0].T.abs()[None],
                                   rtol=1e-4, atol=1e-5)  # f32 window
