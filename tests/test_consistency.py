"""Tests of the mixture-consistency projection."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechbrain_remix.consistency import mixture_consistency

SHAPES = dict(
    batch=st.integers(1, 4),
    n_src=st.integers(1, 4),
    length=st.integers(1, 64),
    seed=st.integers(0, 2**31 - 1),
)


def _random(batch, n_src, length, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    est = torch.randn(batch, n_src, length, generator=g, dtype=dtype)
    mix = 3.0 * torch.randn(batch, length, generator=g, dtype=dtype)
    return est, mix, g


@settings(max_examples=30, deadline=None)
@given(**SHAPES)
def test_outputs_sum_to_mixture(batch, n_src, length, seed):
    est, mix, _ = _random(batch, n_src, length, seed, dtype=torch.float32)
    out = mixture_consistency(est, mix)
    assert out.shape == est.shape
    torch.testing.assert_close(out.sum(1), mix, atol=1e-5, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(**SHAPES)
def test_idempotent(batch, n_src, length, seed):
    est, mix, _ = _random(batch, n_src, length, seed)
    once = mixture_consistency(est, mix)
    twice = mixture_consistency(once, mix)
    torch.testing.assert_close(twice, once)


@settings(max_examples=30, deadline=None)
@given(**SHAPES)
def test_consistent_estimates_unchanged(batch, n_src, length, seed):
    est, _, _ = _random(batch, n_src, length, seed)
    mix = est.sum(1)
    torch.testing.assert_close(mixture_consistency(est, mix), est)


@settings(max_examples=30, deadline=None)
@given(**SHAPES)
def test_correction_equal_across_sources(batch, n_src, length, seed):
    est, mix, _ = _random(batch, n_src, length, seed)
    delta = mixture_consistency(est, mix) - est
    expected = (mix - est.sum(1)) / n_src
    for m in range(n_src):
        torch.testing.assert_close(delta[:, m], expected)


@settings(max_examples=30, deadline=None)
@given(**SHAPES)
def test_orthogonal_projection(batch, n_src, length, seed):
    est, _, g = _random(batch, n_src, length, seed)
    # A random point y of the affine set {s : sum_m s_m = mix}.
    y = torch.randn(batch, n_src, length, generator=g, dtype=est.dtype)
    mix = y.sum(1)
    out = mixture_consistency(est, mix)
    # out is the closest consistent point to est: ||out - y|| <= ||est - y||
    # per item, and the residual est - out is orthogonal to out - y.
    dist_out = (out - y).flatten(1).norm(dim=1)
    dist_est = (est - y).flatten(1).norm(dim=1)
    assert (dist_out <= dist_est + 1e-9).all()
    inner = ((est - out) * (out - y)).flatten(1).sum(1)
    torch.testing.assert_close(
        inner, torch.zeros_like(inner), atol=1e-8, rtol=0
    )


def test_known_values():
    est = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    mix = torch.tensor([[5.0, 2.0]])
    out = mixture_consistency(est, mix)
    assert out.tolist() == [[[2.0, 1.0], [3.0, 1.0]]]


def test_gradient_flows():
    est = torch.randn(2, 3, 10, requires_grad=True)
    mixture_consistency(est, torch.randn(2, 10)).sum().backward()
    assert est.grad is not None


@pytest.mark.parametrize(
    "est_shape, mix_shape",
    [
        ((2, 10), (2, 10)),
        ((2, 2, 10), (2, 2, 10)),
        ((2, 2, 10), (10,)),
        ((1, 2, 3, 10), (1, 10)),
    ],
)
def test_bad_shapes_raise(est_shape, mix_shape):
    with pytest.raises(ValueError):
        mixture_consistency(torch.zeros(est_shape), torch.zeros(mix_shape))
