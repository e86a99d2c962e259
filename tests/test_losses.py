"""Tests of SI-SDR, the source loss and MixIT (speechbrain_remix.losses)."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechbrain_remix.losses import (
    enhancement_assignments,
    mixit_assignments,
    mixit_loss,
    neg_si_sdr,
    si_sdr,
    source_loss,
)

SEEDS = st.integers(0, 2**31 - 1)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _pair(seed, shape=(3, 64), dtype=torch.float64, noise=0.5):
    """A target and a degraded estimate of it."""
    g = _gen(seed)
    target = torch.randn(*shape, generator=g, dtype=dtype)
    estimate = target + noise * torch.randn(*shape, generator=g, dtype=dtype)
    return estimate, target


def _orthogonal_noise(target, g):
    """Zero-mean noise orthogonal to the (zero-mean) target."""
    noise = torch.randn(target.shape, generator=g, dtype=target.dtype)
    noise = noise - noise.mean(-1, keepdim=True)
    coef = (noise * target).sum(-1, keepdim=True) / (target**2).sum(
        -1, keepdim=True
    )
    return noise - coef * target


# --------------------------------------------------------------------------
# si_sdr
# --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, scale=st.floats(1e-2, 1e2))
def test_si_sdr_estimate_scale_invariant(seed, scale):
    estimate, target = _pair(seed)
    torch.testing.assert_close(
        si_sdr(scale * estimate, target),
        si_sdr(estimate, target),
        atol=1e-3,
        rtol=0,
    )


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, scale=st.floats(1e-2, 1e2))
def test_si_sdr_target_scale_invariant(seed, scale):
    estimate, target = _pair(seed)
    torch.testing.assert_close(
        si_sdr(estimate, scale * target),
        si_sdr(estimate, target),
        atol=1e-3,
        rtol=0,
    )


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, offset=st.floats(-10.0, 10.0))
def test_si_sdr_offset_invariant(seed, offset):
    estimate, target = _pair(seed)
    ref = si_sdr(estimate, target)
    torch.testing.assert_close(
        si_sdr(estimate + offset, target), ref, atol=1e-3, rtol=0
    )
    torch.testing.assert_close(
        si_sdr(estimate, target + offset), ref, atol=1e-3, rtol=0
    )


def test_si_sdr_offset_matters_without_zero_mean():
    estimate, target = _pair(0)
    ref = si_sdr(estimate, target, zero_mean=False)
    shifted = si_sdr(estimate + 5.0, target, zero_mean=False)
    assert (ref - shifted).abs().min() > 1.0


def test_si_sdr_float32_scale_invariant():
    estimate, target = _pair(1, dtype=torch.float32)
    torch.testing.assert_close(
        si_sdr(0.05 * estimate, target),
        si_sdr(estimate, target),
        atol=1e-3,
        rtol=0,
    )


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, gain=st.floats(0.1, 10.0), noise_scale=st.floats(0.01, 3))
def test_si_sdr_value_orthogonal_noise(seed, gain, noise_scale):
    g = _gen(seed)
    target = torch.randn(2, 128, generator=g, dtype=torch.float64)
    target = target - target.mean(-1, keepdim=True)
    noise = noise_scale * _orthogonal_noise(target, g)
    value = si_sdr(target + noise, target)
    expected = 10 * torch.log10((target**2).sum(-1) / (noise**2).sum(-1))
    torch.testing.assert_close(value, expected, atol=1e-4, rtol=0)
    # A gain on the target part does not change the noise, so the SI-SDR
    # grows by 20 log10(gain).
    scaled = si_sdr(gain * target + noise, target)
    torch.testing.assert_close(
        scaled, expected + 20 * math.log10(gain), atol=1e-4, rtol=0
    )


def test_si_sdr_known_value():
    target = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    noise = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64) * 0.5
    # ||t||^2 = 4, ||n||^2 = 1 -> 10 log10(4)
    value = si_sdr(target + noise, target)
    assert value.item() == pytest.approx(10 * math.log10(4.0), abs=1e-6)


def test_si_sdr_shape():
    estimate, target = _pair(0, shape=(2, 3, 50))
    assert si_sdr(estimate, target).shape == (2, 3)


def test_si_sdr_shape_mismatch_raises():
    with pytest.raises(ValueError):
        si_sdr(torch.zeros(2, 10), torch.zeros(2, 11))


# --------------------------------------------------------------------------
# neg_si_sdr
# --------------------------------------------------------------------------


def test_neg_si_sdr_is_negative_si_sdr():
    estimate, target = _pair(2)
    torch.testing.assert_close(
        neg_si_sdr(estimate, target), -si_sdr(estimate, target)
    )


def test_neg_si_sdr_clamp_above():
    g = _gen(3)
    target = torch.randn(2, 200, generator=g, dtype=torch.float64)
    estimate = target + 1e-3 * torch.randn(
        2, 200, generator=g, dtype=torch.float64
    )
    estimate.requires_grad_(True)
    assert (si_sdr(estimate, target) > 30).all()
    loss = neg_si_sdr(estimate, target, clamp_db=30.0)
    assert loss.tolist() == [-30.0, -30.0]
    loss.sum().backward()
    assert torch.count_nonzero(estimate.grad) == 0


def test_neg_si_sdr_clamp_below():
    estimate, target = _pair(4, noise=1.0)
    estimate.requires_grad_(True)
    unclamped = neg_si_sdr(estimate, target)
    assert (unclamped > -30).all()
    loss = neg_si_sdr(estimate, target, clamp_db=30.0)
    torch.testing.assert_close(loss, unclamped)
    loss.sum().backward()
    assert torch.isfinite(estimate.grad).all()
    assert (estimate.grad.abs().sum(-1) > 0).all()


def test_neg_si_sdr_clamp_mixed_batch():
    g = _gen(5)
    target = torch.randn(2, 200, generator=g, dtype=torch.float64)
    noise = torch.randn(2, 200, generator=g, dtype=torch.float64)
    estimate = target + torch.stack([1e-3 * noise[0], noise[1]])
    estimate.requires_grad_(True)
    loss = neg_si_sdr(estimate, target, clamp_db=30.0)
    assert loss[0].item() == -30.0
    assert loss[1].item() > -30.0
    loss.sum().backward()
    assert torch.count_nonzero(estimate.grad[0]) == 0
    assert torch.count_nonzero(estimate.grad[1]) > 0


@pytest.mark.parametrize("clamp_db", [10.0, 30.0, 50.0])
def test_perfect_estimate_loss_is_minus_clamp(clamp_db):
    target = torch.randn(3, 2, 100, generator=_gen(6))
    assert neg_si_sdr(target, target, clamp_db).eq(-clamp_db).all()
    assert source_loss(target, target, clamp_db=clamp_db).eq(-clamp_db).all()
    loss, _ = mixit_loss(target, target, clamp_db=clamp_db)
    # One term per mixture, each saturated.
    torch.testing.assert_close(loss, torch.full((3,), -2 * clamp_db))


# --------------------------------------------------------------------------
# source_loss
# --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=SEEDS,
    n_src=st.integers(1, 4),
    clamp=st.sampled_from([None, 5.0, 30.0]),
    data=st.data(),
)
def test_source_loss_weighted_sum(seed, n_src, clamp, data):
    weights = data.draw(
        st.lists(st.floats(0.0, 2.0), min_size=n_src, max_size=n_src)
    )
    estimate, target = _pair(seed, shape=(3, n_src, 40), noise=0.3)
    loss = source_loss(estimate, target, weights, clamp_db=clamp)
    assert loss.shape == (3,)
    for b in range(3):
        manual = sum(
            w * neg_si_sdr(estimate[b, k], target[b, k], clamp)
            for k, w in enumerate(weights)
        )
        assert loss[b].item() == pytest.approx(float(manual), abs=1e-6)


def test_source_loss_default_weights_are_mean():
    estimate, target = _pair(7, shape=(2, 3, 40))
    torch.testing.assert_close(
        source_loss(estimate, target),
        neg_si_sdr(estimate, target).mean(dim=1),
    )


def test_source_loss_wrong_number_of_weights():
    estimate, target = _pair(8, shape=(2, 2, 40))
    with pytest.raises(ValueError):
        source_loss(estimate, target, weights=[1.0, 1.0, 1.0])


# --------------------------------------------------------------------------
# assignments
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n_out", [1, 2, 3, 4, 5])
def test_mixit_assignments(n_out):
    a = mixit_assignments(n_out)
    assert a.shape == (2**n_out, 2, n_out)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    # Each output goes to exactly one mixture.
    assert a.sum(dim=1).eq(1).all()
    rows = {tuple(x.flatten().tolist()) for x in a}
    assert len(rows) == 2**n_out


def test_mixit_assignments_three_mixtures():
    a = mixit_assignments(3, n_mixtures=3)
    assert a.shape == (27, 3, 3)
    assert a.sum(dim=1).eq(1).all()
    assert len({tuple(x.flatten().tolist()) for x in a}) == 27


def test_enhancement_assignments_three_outputs():
    a = enhancement_assignments(3)
    assert a.shape == (2, 2, 3)
    assert a[:, 0, 0].eq(1).all() and a[:, 1, 0].eq(0).all()
    assert a.sum(dim=1).eq(1).all()
    rows = {tuple(x.flatten().tolist()) for x in a}
    # Eq. 3: P = {(1, 2), (2, 1)}.
    assert rows == {
        (1.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        (1.0, 0.0, 1.0, 0.0, 1.0, 0.0),
    }


@pytest.mark.parametrize("n_out", [4, 5])
def test_enhancement_assignments_general(n_out):
    a = enhancement_assignments(n_out)
    assert a[:, 0, 0].eq(1).all()
    assert a.sum(dim=1).eq(1).all()
    noise_to_m = a[:, 0, 1:].sum(-1)
    assert ((noise_to_m > 0) & (noise_to_m < n_out - 1)).all()
    # All splits of the n_out - 1 noise outputs, except the two extremes.
    assert a.shape[0] == 2 ** (n_out - 1) - 2


@pytest.mark.parametrize("n_out", [1, 2])
def test_enhancement_assignments_needs_three(n_out):
    with pytest.raises(ValueError):
        enhancement_assignments(n_out)


# --------------------------------------------------------------------------
# mixit_loss
# --------------------------------------------------------------------------


def _brute_force_mixit(estimates, mixtures, clamp_db=None):
    """min over all output-to-mixture maps of sum_k neg_si_sdr."""
    batch, n_out, _ = estimates.shape
    n_mix = mixtures.shape[1]
    losses = []
    for b in range(batch):
        values = []
        for choice in itertools.product(range(n_mix), repeat=n_out):
            total = 0.0
            for k in range(n_mix):
                remix = torch.zeros_like(mixtures[b, k])
                for m in range(n_out):
                    if choice[m] == k:
                        remix = remix + estimates[b, m]
                total += float(neg_si_sdr(remix, mixtures[b, k], clamp_db))
            values.append(total)
        losses.append(values)
    return torch.tensor(losses, dtype=torch.float64)


def _mixit_inputs(seed, batch, n_out, length, structured):
    g = _gen(seed)
    if structured:
        # Outputs that nearly decompose the two mixtures, so that the best
        # assignment is clearly better than the others (and may saturate).
        est = torch.randn(batch, n_out, length, generator=g)
        split = torch.randint(0, 2, (n_out,), generator=g)
        split[0], split[-1] = 0, 1
        mixtures = torch.stack(
            [est[:, split == 0].sum(1), est[:, split == 1].sum(1)], dim=1
        )
        est = est + 1e-2 * torch.randn(est.shape, generator=g)
    else:
        est = torch.randn(batch, n_out, length, generator=g)
        mixtures = torch.randn(batch, 2, length, generator=g)
    return est, mixtures


@settings(max_examples=30, deadline=None)
@given(
    seed=SEEDS,
    batch=st.integers(1, 3),
    n_out=st.integers(2, 4),
    length=st.integers(8, 64),
    structured=st.booleans(),
    clamp=st.sampled_from([None, 30.0]),
)
def test_mixit_loss_matches_brute_force(
    seed, batch, n_out, length, structured, clamp
):
    est, mixtures = _mixit_inputs(seed, batch, n_out, length, structured)
    loss, best = mixit_loss(est, mixtures, clamp_db=clamp)
    all_losses = _brute_force_mixit(est, mixtures, clamp)
    assert loss.shape == best.shape == (batch,)
    expected = all_losses.min(dim=1).values
    torch.testing.assert_close(loss.double(), expected, atol=2e-3, rtol=1e-4)
    # ``best`` indexes mixit_assignments, whose order is that of
    # itertools.product: the loss of that assignment is the minimum.
    picked = all_losses[torch.arange(batch), best]
    torch.testing.assert_close(picked, expected, atol=2e-3, rtol=1e-4)


def _brute_force_eq3(est, mixtures, clamp_db=None):
    """Eq. 3: min over P in {(1, 2), (2, 1)} of
    L(s + n_P1, m) + L(n_P2, n)."""
    out = []
    for b in range(est.shape[0]):
        s = est[b, 0]
        values = [
            float(neg_si_sdr(s + est[b, p1], mixtures[b, 0], clamp_db))
            + float(neg_si_sdr(est[b, p2], mixtures[b, 1], clamp_db))
            for p1, p2 in ((1, 2), (2, 1))
        ]
        out.append(values)
    return torch.tensor(out, dtype=torch.float64)


@settings(max_examples=30, deadline=None)
@given(
    seed=SEEDS,
    batch=st.integers(1, 4),
    length=st.integers(8, 64),
    structured=st.booleans(),
    clamp=st.sampled_from([None, 30.0]),
)
def test_mixit_enhancement_matches_eq3(seed, batch, length, structured, clamp):
    est, mixtures = _mixit_inputs(seed, batch, 3, length, structured)
    assignments = enhancement_assignments(3)
    loss, best = mixit_loss(est, mixtures, assignments, clamp_db=clamp)
    both = _brute_force_eq3(est, mixtures, clamp)
    expected = both.min(dim=1).values
    torch.testing.assert_close(loss.double(), expected, atol=2e-3, rtol=1e-4)
    # Identify which Eq. 3 permutation each assignment row is.
    perms = []
    for a in assignments:
        p1 = int(a[0, 1:].argmax()) + 1
        perms.append(0 if p1 == 1 else 1)
    picked = both[torch.arange(batch), torch.tensor(perms)[best]]
    torch.testing.assert_close(picked, expected, atol=2e-3, rtol=1e-4)


def test_mixit_loss_finds_true_split():
    g = _gen(9)
    s, n1, n2 = torch.randn(3, 1, 400, generator=g)
    est = torch.stack([s, n1, n2], 1)
    mixtures = torch.stack([s + n1, n2], 1)
    loss, best = mixit_loss(est, mixtures, enhancement_assignments(3))
    chosen = enhancement_assignments(3)[best[0]]
    assert chosen[0].tolist() == [1.0, 1.0, 0.0]
    assert chosen[1].tolist() == [0.0, 0.0, 1.0]
    assert loss.item() < -60


def test_mixit_loss_bad_assignments_raise():
    est = torch.randn(2, 3, 50)
    mixtures = torch.randn(2, 2, 50)
    with pytest.raises(ValueError):
        mixit_loss(est, mixtures, mixit_assignments(4))


def test_mixit_loss_gradient():
    est = torch.randn(2, 3, 50, requires_grad=True)
    mixtures = torch.randn(2, 2, 50)
    loss, _ = mixit_loss(est, mixtures)
    loss.sum().backward()
    assert torch.isfinite(est.grad).all()
    assert est.grad.abs().sum() > 0


def test_sparsity_loss_bounds_and_order():
    from speechbrain_remix.losses import sparsity_loss

    x = torch.randn(3, 4, 100)
    value = sparsity_loss(x)
    assert ((value >= 1.0 - 1e-3) & (value <= 2.0 + 1e-3)).all()
    sparse = x.clone()
    sparse[:, 1:] *= 0.01
    assert (sparsity_loss(sparse) < value).all()


def test_mixit_loss_with_another_signal_loss():
    from speechbrain_remix.losses import thresholded_snr_loss

    s, n1, n2 = torch.randn(3, 1, 300)
    est = torch.stack([s, n1, n2], 1)
    mix = torch.stack([s + n2, n1], 1)
    loss, best = mixit_loss(est, mix, loss_fn=lambda e, r:
                            thresholded_snr_loss(r, e))
    assert loss.item() == pytest.approx(-60.0, abs=1e-3)  # 2 x -30 dB
