"""FUSS metrics: assignment against brute force, the score of each
mixture type, and the summary."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechbrain_remix.losses import si_sdr
from speechbrain_remix.metrics.fuss import (
    assign,
    fuss_summary,
    mixture_score,
)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(0, 3), st.integers(0, 10**6))
def test_assign_is_the_best_injective_map(k, extra, seed):
    g = torch.Generator().manual_seed(seed)
    refs = torch.randn(k, 64, generator=g)
    est = torch.randn(k + extra, 64, generator=g)
    got = assign(est, refs).sum()
    brute = max(
        sum(float(si_sdr(est[o[i]], refs[i])) for i in range(k))
        for o in itertools.permutations(range(k + extra), k)
    )
    assert float(got) == pytest.approx(brute, abs=1e-3)


def test_more_references_than_estimates_is_an_error():
    with pytest.raises(ValueError):
        assign(torch.randn(1, 10), torch.randn(2, 10))


def test_single_source_mixture_scores_si_sdr():
    src = torch.randn(1, 400)
    refs = torch.cat([src, torch.zeros(3, 400)])  # FUSS pads with silence
    est = torch.cat([torch.zeros(2, 400), src, torch.zeros(1, 400)])
    k, value = mixture_score(est, refs, src[0])
    assert k == 1 and value > 60


def test_multi_source_mixture_scores_improvement():
    refs = torch.randn(3, 400)
    mix = refs.sum(0)
    k, value = mixture_score(mix.expand(4, -1) / 4, torch.cat(
        [refs, torch.zeros(1, 400)]), mix)
    assert k == 3 and abs(value) < 1e-3  # outputs = mixture: no gain
    k, value = mixture_score(torch.cat([refs, torch.zeros(1, 400)]),
                             torch.cat([refs, torch.zeros(1, 400)]), mix)
    assert value > 40  # perfect separation: large gain


def test_silent_mixture_is_skipped():
    k, value = mixture_score(torch.zeros(2, 10), torch.zeros(2, 10),
                             torch.zeros(10))
    assert k == 0 and math.isnan(value)


def test_summary():
    out = fuss_summary([(1, 30.0), (2, 10.0), (2, 12.0), (4, 6.0),
                        (0, float("nan"))])
    assert out["1S"] == 30.0 and out["2Si"] == 11.0
    assert math.isnan(out["3Si"]) and out["4Si"] == 6.0
    assert out["MSi"] == pytest.approx(28.0 / 3)
    assert out["TRF"] == pytest.approx(58.0 / 4)
