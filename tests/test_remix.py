"""Tests of bootstrapped remixing (speechbrain_remix.remix)."""

import collections
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechbrain_remix.remix import (
    bootstrap_remix,
    inverse_permutation,
    random_permutation,
    speech_and_noise,
    substitute_noise,
)

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------
# random_permutation
# --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(2, 16), seed=SEEDS, derangement=st.booleans())
def test_random_permutation_is_a_permutation(batch, seed, derangement):
    perm = random_permutation(batch, _gen(seed), derangement=derangement)
    assert perm.shape == (batch,)
    assert perm.dtype == torch.long
    assert sorted(perm.tolist()) == list(range(batch))


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(2, 16), seed=SEEDS)
def test_derangement_has_no_fixed_point(batch, seed):
    perm = random_permutation(batch, _gen(seed), derangement=True)
    assert (perm != torch.arange(batch)).all(), perm


def test_default_is_derangement():
    g = _gen(0)
    for _ in range(200):
        assert random_permutation(2, g).tolist() == [1, 0]


def test_no_derangement_can_give_identity():
    g = _gen(1)
    draws = {
        tuple(random_permutation(2, g, derangement=False).tolist())
        for _ in range(200)
    }
    assert draws == {(0, 1), (1, 0)}


def _counts(batch, derangement, n_draws=2000, seed=123):
    g = _gen(seed)
    return collections.Counter(
        tuple(random_permutation(batch, g, derangement=derangement).tolist())
        for _ in range(n_draws)
    )


def test_permutation_uniform_over_all_permutations():
    n_draws = 2000
    counts = _counts(3, derangement=False, n_draws=n_draws)
    assert set(counts) == set(itertools.permutations(range(3)))
    # Expected 1/6 each; binomial std ~ 0.0083, tolerance ~ 5 sigma.
    for perm, count in counts.items():
        assert abs(count / n_draws - 1 / 6) < 0.04, (perm, count)


def test_derangement_uniform_over_derangements():
    n_draws = 2000
    counts = _counts(3, derangement=True, n_draws=n_draws)
    assert set(counts) == {(1, 2, 0), (2, 0, 1)}
    for perm, count in counts.items():
        assert abs(count / n_draws - 0.5) < 0.05, (perm, count)


@pytest.mark.parametrize("batch", [0, 1])
def test_derangement_needs_two_items(batch):
    with pytest.raises(ValueError):
        random_permutation(batch, _gen(0), derangement=True)


def test_non_positive_batch_raises():
    with pytest.raises(ValueError):
        random_permutation(0, _gen(0), derangement=False)


def test_single_item_without_derangement_is_identity():
    assert random_permutation(1, _gen(0), derangement=False).tolist() == [0]


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(2, 16), seed=SEEDS, derangement=st.booleans())
def test_random_permutation_deterministic(batch, seed, derangement):
    g1, g2 = _gen(seed), _gen(seed)
    a = [random_permutation(batch, g1, derangement) for _ in range(3)]
    b = [random_permutation(batch, g2, derangement) for _ in range(3)]
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_random_permutation_uses_generator():
    # Different seeds must (almost surely) give different sequences.
    seqs = []
    for seed in (0, 1):
        g = _gen(seed)
        seqs.append([random_permutation(8, g).tolist() for _ in range(5)])
    assert seqs[0] != seqs[1]


# --------------------------------------------------------------------------
# inverse_permutation
# --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 16), seed=SEEDS)
def test_inverse_permutation_round_trip(batch, seed):
    g = _gen(seed)
    perm = torch.randperm(batch, generator=g)
    inv = inverse_permutation(perm)
    x = torch.randn(batch, 3, generator=g)
    assert torch.equal(x[perm][inv], x)
    assert torch.equal(x[inv][perm], x)
    assert torch.equal(inv[perm], torch.arange(batch))
    assert torch.equal(perm[inv], torch.arange(batch))


def test_inverse_permutation_example():
    perm = torch.tensor([2, 0, 3, 1])
    assert inverse_permutation(perm).tolist() == [1, 3, 0, 2]


# --------------------------------------------------------------------------
# bootstrap_remix
# --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(2, 8), length=st.integers(1, 32), seed=SEEDS)
def test_bootstrap_remix(batch, length, seed):
    g = _gen(seed)
    speech = torch.randn(batch, length, generator=g)
    noise = torch.randn(batch, length, generator=g)
    perm = random_permutation(batch, g)
    mixtures, targets = bootstrap_remix(speech, noise, perm)
    assert mixtures.shape == (batch, length)
    assert targets.shape == (batch, 2, length)
    torch.testing.assert_close(mixtures, targets.sum(1))
    assert torch.equal(targets[:, 0], speech)
    assert torch.equal(targets[:, 1], noise[perm])
    for b in range(batch):
        torch.testing.assert_close(mixtures[b], speech[b] + noise[int(perm[b])])


def test_bootstrap_remix_identity_rebuilds_mixture():
    g = _gen(0)
    speech = torch.randn(4, 10, generator=g)
    noise = torch.randn(4, 10, generator=g)
    mixtures, targets = bootstrap_remix(speech, noise, torch.arange(4))
    torch.testing.assert_close(mixtures, speech + noise)
    assert torch.equal(targets[:, 1], noise)


def test_bootstrap_remix_derangement_changes_every_mixture():
    g = _gen(0)
    speech = torch.randn(5, 10, generator=g)
    noise = torch.randn(5, 10, generator=g)
    perm = random_permutation(5, g)
    mixtures, _ = bootstrap_remix(speech, noise, perm)
    for b in range(5):
        assert not torch.allclose(mixtures[b], speech[b] + noise[b])


# --------------------------------------------------------------------------
# speech_and_noise
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n_src", [2, 3, 4])
def test_speech_and_noise(n_src):
    est = torch.randn(3, n_src, 20, generator=_gen(n_src))
    out = speech_and_noise(est)
    assert out.shape == (3, 2, 20)
    assert torch.equal(out[:, 0], est[:, 0])
    torch.testing.assert_close(out[:, 1], est[:, 1:].sum(1))
    torch.testing.assert_close(out.sum(1), est.sum(1))


def test_speech_and_noise_m3_sums_noise_slots():
    est = torch.stack(
        [
            torch.full((1, 4), 1.0),
            torch.full((1, 4), 2.0),
            torch.full((1, 4), 5.0),
        ],
        dim=1,
    )
    out = speech_and_noise(est)
    assert out[0, 0].tolist() == [1.0] * 4
    assert out[0, 1].tolist() == [7.0] * 4


def test_speech_and_noise_needs_two_slots():
    with pytest.raises(ValueError):
        speech_and_noise(torch.randn(2, 1, 10))


# --------------------------------------------------------------------------
# substitute_noise
# --------------------------------------------------------------------------


def _noise_pair(batch=16, length=8, seed=0):
    g = _gen(seed)
    return (
        torch.randn(batch, length, generator=g),
        torch.randn(batch, length, generator=g) + 10.0,
    )


def test_substitute_noise_p0_keeps_estimates():
    est, rec = _noise_pair()
    noise, zeta = substitute_noise(est, rec, 0.0, _gen(0))
    assert torch.equal(noise, est)
    assert zeta.dtype == torch.bool
    assert not zeta.any()


def test_substitute_noise_p1_uses_recordings():
    est, rec = _noise_pair()
    noise, zeta = substitute_noise(est, rec, 1.0, _gen(0))
    assert torch.equal(noise, rec)
    assert zeta.all()


@pytest.mark.parametrize("p_n", [0.2, 0.5, 0.8])
def test_substitute_noise_frequency(p_n):
    n_items = 4000
    est, rec = _noise_pair(batch=n_items, length=2, seed=1)
    noise, zeta = substitute_noise(est, rec, p_n, _gen(7))
    # Rows follow zeta exactly.
    assert torch.equal(noise[zeta], rec[zeta])
    assert torch.equal(noise[~zeta], est[~zeta])
    # Frequency: binomial std <= 0.008, tolerance ~ 5 sigma.
    assert abs(zeta.float().mean().item() - p_n) < 0.04


def test_substitute_noise_deterministic():
    est, rec = _noise_pair(batch=64)
    a = substitute_noise(est, rec, 0.5, _gen(3))
    b = substitute_noise(est, rec, 0.5, _gen(3))
    assert torch.equal(a[0], b[0])
    assert torch.equal(a[1], b[1])


@pytest.mark.parametrize("p_n", [-0.1, 1.1, float("nan")])
def test_substitute_noise_invalid_p(p_n):
    est, rec = _noise_pair()
    with pytest.raises(ValueError):
        substitute_noise(est, rec, p_n)


def test_substitute_noise_shape_mismatch():
    with pytest.raises(ValueError):
        substitute_noise(torch.zeros(4, 8), torch.zeros(4, 9), 0.5)
    with pytest.raises(ValueError):
        substitute_noise(torch.zeros(4, 8), torch.zeros(3, 8), 0.5)
