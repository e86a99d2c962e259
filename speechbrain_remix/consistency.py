"""Mixture-consistency projection (Eqs. 1 and 4 of RemixIT).

RemixIT forces the estimated sources of every model to add up to the input
mixture, ``x = s_hat + sum_i n_hat_i`` (Eq. 1), so that the teacher's
speech and noise estimates are a decomposition of the observed mixture
(Eq. 4).  The projection of Wisdom et al. (2019) with uniform weights adds
the same share of the residual to every source.
"""


def mixture_consistency(estimates, mixture):
    """Projects ``estimates`` so that they sum exactly to ``mixture``.

    ``s_i <- s_i + (x - sum_j s_j) / M`` (unweighted projection of
    RemixIT's reference [45]).  It is the orthogonal projection onto the
    affine set ``{s : sum_j s_j = x}``, so estimates that already sum to the
    mixture are left unchanged.

    Arguments
    ---------
    estimates : torch.Tensor
        Source estimates, shape ``[B, M, T]``.
    mixture : torch.Tensor
        The mixture they should add up to, shape ``[B, T]``.

    Returns
    -------
    torch.Tensor
        Projected estimates, shape ``[B, M, T]``.

    Example
    -------
    >>> import torch
    >>> est = torch.randn(4, 2, 100)
    >>> mix = torch.randn(4, 100)
    >>> out = mixture_consistency(est, mix)
    >>> torch.allclose(out.sum(1), mix, atol=1e-5)
    True
    """
    if estimates.dim() != 3 or mixture.dim() != 2:
        raise ValueError(
            "mixture_consistency expects estimates [B, M, T] and mixture "
            f"[B, T], got {tuple(estimates.shape)} and {tuple(mixture.shape)}"
        )
    residual = mixture - estimates.sum(dim=1)
    return estimates + residual.unsqueeze(1) / estimates.shape[1]
