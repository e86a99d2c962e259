"""Equations checked against numbers worked out by hand or against an
independent formula written here, so that a sign or scale error in the
code cannot pass: the thresholded SNR (Eq. 8 of Saijo & Ogawa), its
zero-reference variant, the MixIT sparsity term, MixIT's Eq. 3 of RemixIT,
and the normalization of the mixture of mixtures inside ``MixITBrain``
(Saijo & Ogawa, Sec. 3.4)."""

import itertools
import math
from types import SimpleNamespace

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedData

from speechbrain_remix.brains.mixit import MixITBrain
from speechbrain_remix.losses import (
    enhancement_assignments,
    mixit_loss,
    sparsity_loss,
    thresholded_snr_loss,
    zero_reference_snr_loss,
)

F64 = torch.float64


def _t(values):
    return torch.tensor(values, dtype=F64)


# --------------------------------------------------------------------------
# Thresholded SNR (Eq. 8 of Saijo & Ogawa):
# L(y, y_hat) = -10 log10(||y||^2 / (||y - y_hat||^2 + tau ||y||^2))
# --------------------------------------------------------------------------


def test_thresholded_snr_hand_value():
    y = _t([3.0, 4.0])  # ||y||^2 = 25
    y_hat = _t([3.0, 3.0])  # ||y - y_hat||^2 = 1
    # tau = 0.04: tau ||y||^2 = 1, so the loss is -10 log10(25 / 2)
    loss = thresholded_snr_loss(y, y_hat, tau=0.04)
    assert loss.item() == pytest.approx(-10.969100130080564, abs=1e-6)
    # the threshold is relative to the *reference*: swapping the arguments
    # (||y_hat||^2 = 18) gives -10 log10(18 / 1.72), another value
    swapped = thresholded_snr_loss(y_hat, y, tau=0.04)
    assert swapped.item() == pytest.approx(-10.197440581955288, abs=1e-6)


def test_thresholded_snr_saturates_at_minus_10_log10_tau():
    y = _t([1.0, -2.0, 2.0])
    # a perfect estimate: -10 log10(1 / tau) = -30 dB for tau = 1e-3
    assert thresholded_snr_loss(y, y, tau=1e-3).item() == pytest.approx(
        -30.0, abs=1e-9)


# --------------------------------------------------------------------------
# Zero-reference SNR (Eq. 2 of the FUSS paper, used by the supervised
# variants of Saijo & Ogawa): 10 log10(||y - y_hat||^2 + tau ||x||^2),
# thresholded by the mixture x of the same item.
# --------------------------------------------------------------------------


def test_zero_reference_snr_hand_values():
    # item 0: ||x||^2 = 25^2 + 10^2 + 5^2 = 750, so tau ||x||^2 = 0.75
    # item 1: a silent mixture, no threshold at all
    mixture = _t([[25.0, 10.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    silent = torch.zeros(2, 2, 4, dtype=F64)
    reference = silent.clone()
    reference[:, 1] = _t([1.0, 0.0, 0.0, 0.0])  # one active source
    estimate = torch.zeros(2, 2, 4, dtype=F64)
    estimate[:, 0] = _t([0.3, 0.4, 0.0, 0.0])  # 0.25 of leaked energy
    estimate[:, 1] = _t([0.5, 0.0, 0.0, 0.0])  # error energy 0.25
    loss = zero_reference_snr_loss(reference, estimate, mixture, tau=1e-3)
    assert loss.shape == (2, 2)
    expected = [
        [10 * math.log10(0.25 + 0.75), 10 * math.log10(0.25 + 0.75)],
        [10 * math.log10(0.25), 10 * math.log10(0.25)],
    ]
    torch.testing.assert_close(loss, _t(expected), atol=1e-6, rtol=0)
    assert loss[0].tolist() == pytest.approx([0.0, 0.0], abs=1e-9)
    # a silent estimate of a silent reference: only the floor remains,
    # 10 log10(0.75) = -1.249 dB (lower, i.e. better, than the leak above)
    floor = zero_reference_snr_loss(silent[:1, :1], silent[:1, :1],
                                    mixture[:1], tau=1e-3)
    assert floor.item() == pytest.approx(-1.2493873660829993, abs=1e-6)


# --------------------------------------------------------------------------
# MixIT sparsity (Wisdom et al., 2021, Eq. 6): ||r||_1 / ||r||_2 with r the
# outputs' RMS levels ("MixIT + Sparsity" of Saijo & Ogawa).
# --------------------------------------------------------------------------


def _constant_outputs(levels, length=16):
    """``[1, N, length]`` outputs, output ``n`` constant at ``levels[n]``
    (so that its RMS is ``|levels[n]|``)."""
    return _t(levels)[None, :, None].expand(1, len(levels), length).clone()


def test_sparsity_hand_value():
    # r = (1, 2, 2, 0): ||r||_1 = 5, ||r||_2 = 3
    value = sparsity_loss(_constant_outputs([1.0, 2.0, -2.0, 0.0]))
    assert value.item() == pytest.approx(5 / 3, abs=1e-4)


def test_sparser_outputs_have_lower_sparsity_loss():
    # the same total energy (sum of r^2 = 9) in one output, then spread
    one = sparsity_loss(_constant_outputs([3.0, 0.0, 0.0, 0.0]))
    some = sparsity_loss(_constant_outputs([1.0, 2.0, 2.0, 0.0]))
    spread = sparsity_loss(_constant_outputs([1.5, 1.5, 1.5, 1.5]))
    assert one.item() == pytest.approx(1.0, abs=1e-4)
    assert spread.item() == pytest.approx(2.0, abs=1e-6)  # sqrt(N)
    assert one < some < spread


# --------------------------------------------------------------------------
# MixIT for enhancement, Eq. 3 of RemixIT, on orthogonal zero-mean signals
# whose SI-SDRs are worked out by hand.
# --------------------------------------------------------------------------


def test_mixit_eq3_hand_value():
    s = _t([1.0, -1.0, 1.0, -1.0])  # speech
    n1 = _t([1.0, 1.0, -1.0, -1.0])  # noise in the noisy mixture
    n2 = _t([1.0, -1.0, -1.0, 1.0])  # the added noise; all norms^2 = 4
    m, n = s + n1, n2
    est = torch.stack([s, n1 + 0.5 * n2, 0.5 * n2])[None]
    loss, best = mixit_loss(est, torch.stack([m, n])[None],
                            enhancement_assignments(3), clamp_db=30.0)
    # P = (1, 2): s + (n1 + n2/2) against m = s + n1: projection s + n1
    # (energy 8), residual n2/2 (energy 1): SI-SDR = 10 log10 8; n2/2
    # against n2: a perfect scaled copy, clamped at 30 dB.
    # P = (2, 1): s + n2/2 against m: projection (s + n1)/2 (energy 2),
    # residual (s - n1 + n2)/2 (energy 3): 10 log10(2/3); n1 + n2/2
    # against n2: projection n2/2 (energy 1), residual n1 (energy 4).
    eq3 = {
        (1, 2): -10 * math.log10(8.0) - 30.0,
        (2, 1): -10 * math.log10(2 / 3) - 10 * math.log10(1 / 4),
    }
    assert eq3[(2, 1)] == pytest.approx(7.781512503836436)
    chosen = enhancement_assignments(3)[best[0]]
    assert chosen.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # (1, 2)
    assert loss.item() == pytest.approx(eq3[(1, 2)], abs=1e-4)
    assert loss.item() == pytest.approx(-39.03089986991944, abs=1e-4)


# --------------------------------------------------------------------------
# MixIT for separation inside the Brain (Saijo & Ogawa, Sec. 3.4): each
# observed mixture has its mean removed and is divided by its std, the
# mixture of mixtures (MoM) is their sum, and the model sees the MoM
# normalized again; the MixIT references are the normalized mixtures.
# --------------------------------------------------------------------------

EPS = 1e-9  # the eps of brains.base.normalize


def _normalized(x):
    """``(x - mean) / (std + eps)`` with the biased std, written out."""
    centred = x - x.mean(-1, keepdim=True)
    std = centred.pow(2).mean(-1, keepdim=True).sqrt()
    return centred / (std + EPS)


class _Recorder(torch.nn.Module):
    """A fixed 3-output "separator" that records what it is given."""

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor([0.6, 0.3, 0.1]))
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        shifted = torch.roll(x, 1, dims=-1)
        return torch.stack([self.gain[0] * x, self.gain[1] * shifted,
                            self.gain[2] * x * x], dim=1)


def _mixit_brain(**overrides):
    hparams = {
        "seed": 0, "select_by": "last", "sample_rate": 8,
        "crop_seconds": 8.0, "mom_from_batch": True,
        "all_assignments": True, "extra_noise": False, "clamp_db": 30.0,
        "tau": 1e-3, "sparsity_weight": 0.0, "sparsity_from_epoch": 1,
        **overrides,
    }
    brain = MixITBrain(modules={"model": _Recorder()}, hparams=hparams,
                       run_opts={"device": "cpu", "noprogressbar": True})
    brain.on_fit_start()
    return brain


@pytest.fixture
def two_mixtures():
    g = torch.Generator().manual_seed(7)
    # very different levels and offsets, so that summing raw mixtures (or
    # only dividing by the std) gives another model input
    loud = 10.0 * torch.randn(64, generator=g) + 3.0
    quiet = 0.1 * torch.randn(64, generator=g) - 0.5
    mix = torch.stack([loud, quiet])
    batch = SimpleNamespace(mix=PaddedData(mix, torch.ones(2)),
                            id=["loud", "quiet"])
    return mix, batch


@pytest.mark.parametrize("stage", [sb.Stage.TRAIN, sb.Stage.VALID])
def test_mixit_brain_normalizes_each_mixture_then_the_mom(two_mixtures,
                                                          stage):
    mix, batch = two_mixtures
    brain = _mixit_brain()
    estimates, references = brain.training_forward(batch, stage)
    x = _normalized(mix)  # x_1, x_2
    # B = 2: the other mixture of the batch is the other item
    expected_refs = torch.stack([x, x.flip(0)], dim=1)
    torch.testing.assert_close(references, expected_refs, atol=1e-5,
                               rtol=1e-5)
    mom = x[0] + x[1]
    (model_input,) = brain.modules.model.inputs
    torch.testing.assert_close(model_input,
                               _normalized(torch.stack([mom, mom])),
                               atol=1e-5, rtol=1e-5)
    # mixture consistency, in the MoM's own scale: the outputs add up to
    # x_1 + x_2, which the references also add up to
    torch.testing.assert_close(estimates.sum(1), references.sum(1),
                               atol=1e-4, rtol=1e-4)


def _neg_tsnr(ref, est, tau):
    e_ref = ref.pow(2).sum()
    return -10 * torch.log10(e_ref / ((ref - est).pow(2).sum()
                                      + tau * e_ref))


def _generalized_mixit_by_hand(estimates, references, tau):
    """min over every output-to-mixture map of the summed Eq. 8 losses,
    averaged over the batch."""
    per_item = []
    for est, refs in zip(estimates, references):
        n_out = est.shape[0]
        values = []
        for choice in itertools.product((0, 1), repeat=n_out):
            total = 0.0
            for k in (0, 1):
                picked = [est[i] for i in range(n_out) if choice[i] == k]
                remix = sum(picked) if picked else torch.zeros_like(refs[k])
                total = total + _neg_tsnr(refs[k], remix, tau)
            values.append(total)
        per_item.append(min(values))
    return torch.stack(per_item).mean()


def test_mixit_brain_loss_and_sparsity_sign(two_mixtures):
    mix, batch = two_mixtures
    brain = _mixit_brain()
    predictions = brain.training_forward(batch, sb.Stage.VALID)
    loss = brain.training_objectives(predictions, batch, sb.Stage.VALID)
    estimates, references = predictions
    expected = _generalized_mixit_by_hand(estimates.double(),
                                          references.double(), 1e-3)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-3)

    # the sparsity term is added with a positive weight: weight * l1/l2
    weighted = _mixit_brain(sparsity_weight=2.0)
    predictions = weighted.training_forward(batch, sb.Stage.VALID)
    with_sparsity = weighted.training_objectives(predictions, batch,
                                                 sb.Stage.VALID)
    rms = predictions[0].double().pow(2).mean(-1).sqrt()
    ratio = (rms.sum(-1) / rms.pow(2).sum(-1).sqrt()).mean()
    assert with_sparsity.item() - loss.item() == pytest.approx(
        2.0 * ratio.item(), abs=1e-3)
    # ... and only from ``sparsity_from_epoch`` on
    later = _mixit_brain(sparsity_weight=2.0, sparsity_from_epoch=5)
    later.on_stage_start(sb.Stage.TRAIN, epoch=4)
    predictions = later.training_forward(batch, sb.Stage.VALID)
    assert later.training_objectives(
        predictions, batch, sb.Stage.VALID).item() == pytest.approx(
            loss.item(), abs=1e-5)
