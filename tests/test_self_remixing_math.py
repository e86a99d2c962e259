"""Property tests of the N-output remixing and losses of Self-Remixing /
RemixIT from scratch (Saijo & Ogawa, 2023)."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechbrain_remix.losses import (
    pit_loss,
    self_remixing_loss,
    thresholded_snr_loss,
    zero_reference_snr_loss,
)
from speechbrain_remix.remix import (
    channel_permutations,
    channel_shuffle,
    remix_channels,
    unshuffle_channels,
)

SETTINGS = settings(max_examples=30, deadline=None)


@SETTINGS
@given(st.integers(1, 12), st.integers(1, 4), st.integers(0, 10**6),
       st.booleans())
def test_channel_permutations_are_permutations(batch, n, seed, constrained):
    if constrained and batch < n:
        with pytest.raises(ValueError, match="needs a batch of at least"):
            channel_permutations(batch, n, constrained=True)
        return
    g = torch.Generator().manual_seed(seed)
    perms = channel_permutations(batch, n, g, constrained=constrained)
    assert perms.shape == (n, batch)
    for p in perms:
        assert sorted(p.tolist()) == list(range(batch))
    if constrained:  # no pseudo-mixture takes two sources of one mixture
        for b in range(batch):
            assert len(set(perms[:, b].tolist())) == n


def test_constrained_fallback_is_valid():
    g = torch.Generator().manual_seed(0)
    perms = channel_permutations(4, 4, g, constrained=True, max_tries=0)
    for b in range(4):
        assert sorted(perms[:, b].tolist()) == [0, 1, 2, 3]
    for p in perms:
        assert sorted(p.tolist()) == [0, 1, 2, 3]


def test_unconstrained_shuffle_can_remix_one_mixture_twice():
    g = torch.Generator().manual_seed(0)
    seen = False
    for _ in range(200):
        perms = channel_permutations(3, 3, g)
        seen |= any(len(set(perms[:, b].tolist())) < 3 for b in range(3))
    assert seen


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 10**6))
def test_channel_shuffle_permutes_each_row(batch, n, seed):
    x = torch.randn(batch, n, 7)
    y = channel_shuffle(x, torch.Generator().manual_seed(seed))
    for b in range(batch):
        rows = {tuple(r.tolist()) for r in x[b]}
        assert {tuple(r.tolist()) for r in y[b]} == rows
    torch.testing.assert_close(y.sum(1), x.sum(1))


@SETTINGS
@given(st.integers(2, 8), st.integers(1, 4), st.integers(0, 10**6))
def test_remix_and_inverse(batch, n, seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(batch, n, 9, generator=g)
    perms = channel_permutations(batch, n, g)
    mix, shuffled = remix_channels(s, perms)
    torch.testing.assert_close(mix, shuffled.sum(1))
    for b in range(batch):
        for c in range(n):
            assert torch.equal(shuffled[b, c], s[perms[c, b], c])
    assert torch.equal(unshuffle_channels(shuffled, perms), s)


def test_thresholded_snr_formula():
    y = torch.randn(3, 200)
    e = 0.3 * torch.randn(3, 200)
    tau = 1e-3
    expected = -10 * torch.log10(
        y.pow(2).sum(-1) / (e.pow(2).sum(-1) + tau * y.pow(2).sum(-1)))
    torch.testing.assert_close(thresholded_snr_loss(y, y + e, tau),
                               expected)
    # saturates at -10 log10(tau) = -30 dB
    assert thresholded_snr_loss(y, y).allclose(torch.full((3,), -30.0))
    assert (thresholded_snr_loss(y, y + 1e-6 * e) >= -30.0 - 1e-4).all()


def test_zero_reference_snr_is_finite_and_rewards_silence():
    mix = torch.randn(2, 100)
    silent = torch.zeros(2, 1, 100)
    good = zero_reference_snr_loss(silent, silent, mix)
    bad = zero_reference_snr_loss(silent, torch.randn(2, 1, 100), mix)
    assert torch.isfinite(good).all() and (bad > good).all()


@SETTINGS
@given(st.integers(2, 4), st.integers(0, 10**6))
def test_pit_loss_matches_brute_force(n, seed):
    g = torch.Generator().manual_seed(seed)
    est, tgt = torch.randn(2, n, 50, generator=g), torch.randn(
        2, n, 50, generator=g)
    loss, aligned = pit_loss(est, tgt)
    for b in range(2):
        brute = min(
            torch.stack([thresholded_snr_loss(tgt[b, i], est[b, p[i]])
                         for i in range(n)]).mean()
            for p in itertools.permutations(range(n))
        )
        assert float(loss[b]) == pytest.approx(float(brute), abs=1e-4)
        direct = thresholded_snr_loss(tgt[b], aligned[b]).mean()
        assert float(direct) == pytest.approx(float(brute), abs=1e-4)


def _self_remixing_of_trivial_model(use_channel_shuffle, seed):
    """Sec. 2.4: teacher and student output the mixture on channel 0 and
    silence elsewhere; returns the Self-Remixing loss per item."""
    g = torch.Generator().manual_seed(seed)
    batch, n = 4, 3
    x = torch.randn(batch, 100, generator=g)

    def trivial(m):
        return torch.stack([m] + [torch.zeros_like(m)] * (n - 1), 1)

    teacher = trivial(x)
    if use_channel_shuffle:
        teacher = channel_shuffle(teacher, g)
    perms = channel_permutations(batch, n, g)
    pseudo, shuffled = remix_channels(teacher, perms)
    _, aligned = pit_loss(trivial(pseudo), shuffled)
    return self_remixing_loss(x, unshuffle_channels(aligned, perms))


def test_trivial_solution_without_channel_shuffle():
    """Without channel shuffle the non-separating model reaches the best
    possible Self-Remixing loss (the trivial solution); channel shuffle
    takes that optimum away."""
    for seed in range(5):
        loss = _self_remixing_of_trivial_model(False, seed)
        assert torch.allclose(loss, torch.full_like(loss, -30.0), atol=1e-3)
    worse = [_self_remixing_of_trivial_model(True, seed).max()
             for seed in range(5)]
    assert max(worse) > -20.0
