"""How every scheme applies a model to mixtures: mean/std normalization
(Section III-D of RemixIT), mixture consistency (Eq. 1) and rescaling.

A causal model (``causal = True``, which streams) cannot know the mean
and std of a recording it has not heard yet, so it gets the mixture as
it is (a DC offset included).  The causal models here are
scale-equivariant by construction (Sudo rm -rf: per-frame norms after a
bias-free encoder; GRU masker: magnitudes over their frame RMS), so the
std would not change their output anyway."""

import torch

from speechbrain_remix.consistency import mixture_consistency
from speechbrain_remix.losses import si_sdr


def normalize(mixture, eps=1e-9):
    """Zero-mean, unit-std mixtures (Section III-D of RemixIT).

    Returns the normalized mixture and the ``(mean, std)`` to undo it.
    """
    mean = mixture.mean(dim=-1, keepdim=True)
    std = mixture.std(dim=-1, keepdim=True, unbiased=False) + eps
    return (mixture - mean) / std, (mean, std)


def separate(model, mixture, rescale=True):
    """Applies a separation model the way every scheme here does.

    The mixture is normalized (mean/std, Section III-D of RemixIT), the
    model's ``M`` outputs are projected to sum to it (Eq. 1), and, with
    ``rescale``, brought back to the mixture's scale so that they add up to
    the input mixture itself.

    Arguments
    ---------
    model : torch.nn.Module
        Maps ``[B, T]`` to ``[B, M, T]``.
    mixture : torch.Tensor
        ``[B, T]``.
    rescale : bool
        Return estimates in the mixture's scale (else in the normalized
        domain, where they sum to the normalized mixture).

    Returns
    -------
    torch.Tensor
        ``[B, M, T]`` estimates.

    Example
    -------
    >>> model = lambda x: torch.stack([0.5 * x, 0.1 * x], 1)
    >>> mix = torch.randn(2, 100) * 3 + 1
    >>> torch.allclose(separate(model, mix).sum(1), mix, atol=1e-4)
    True
    """
    if is_causal(model):
        estimates = mixture_consistency(model(mixture), mixture)
        if rescale:
            return estimates
        # the normalized domain of the non-causal path: the same estimates,
        # shifted and scaled to add up to the normalized mixture
        _, (mean, std) = normalize(mixture)
        return (estimates - mean.unsqueeze(1) / estimates.shape[1]) \
            / std.unsqueeze(1)
    x, (mean, std) = normalize(mixture)
    estimates = mixture_consistency(model(x), x)
    if not rescale:
        return estimates
    n_src = estimates.shape[1]
    return estimates * std.unsqueeze(1) + mean.unsqueeze(1) / n_src


def closest_output(estimates, reference):
    """The output of each mixture closest to its reference (highest
    SI-SDR): permutation solving for a model whose outputs have no fixed
    order (trained from scratch, Saijo & Ogawa, 2023; MixIT of mixtures of
    mixtures), as separation metrics score it.  An oracle choice: it
    needs the clean speech, so it is for evaluation only.  Scored over
    the whole length: give unpadded signals (a batch of one).

    Arguments
    ---------
    estimates : torch.Tensor
        ``[B, N, T]`` outputs.
    reference : torch.Tensor
        ``[B, T]`` clean speech.

    Returns
    -------
    torch.Tensor
        ``[B, T]``.

    Example
    -------
    >>> ref = torch.randn(2, 800)
    >>> near = ref + 0.1 * torch.randn(2, 800)
    >>> est = torch.stack([torch.randn(2, 800), near, torch.randn(2, 800)], 1)
    >>> torch.equal(closest_output(est, ref), near)
    True
    """
    best = closest_index(estimates, reference)
    return estimates[torch.arange(len(best), device=best.device), best]


def closest_index(estimates, reference):
    """Index ``[B]`` of each mixture's output closest to its reference
    (highest SI-SDR; see :func:`closest_output`).

    Example
    -------
    >>> ref = torch.randn(1, 800)
    >>> closest_index(torch.stack([torch.randn(1, 800), ref], 1), ref)
    tensor([1])
    """
    scores = si_sdr(estimates, reference.unsqueeze(1).expand_as(estimates))
    return scores.argmax(dim=1)


def is_causal(model):
    """Whether ``model`` (or the module a DDP wrapper holds) is causal."""
    return bool(getattr(getattr(model, "module", model), "causal", False))
