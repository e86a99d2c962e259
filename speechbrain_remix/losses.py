"""Signal-level losses of RemixIT: SI-SDR (Eq. 16), the supervised and
RemixIT losses (Eqs. 2 and 6) and MixIT (Eq. 3, and its general form).

Shapes follow one convention: signals are ``[..., T]``; sources of a batch
are ``[B, M, T]``; losses are returned per batch item (``[B]``) so that
callers choose the reduction (the Brains average over the batch, which is
Eq. 2/6's sum divided by ``B``).
"""

import itertools

import torch

from speechbrain_remix.segsnr import weighted_si_sdr


def si_sdr(estimate, target, zero_mean=True, eps=1e-8):
    """Scale-invariant signal-to-distortion ratio in dB (Eq. 16 of RemixIT).

    ``SI-SDR = 20 log10(||a y|| / ||a y - y_hat||)`` with
    ``a = y_hat^T y / ||y||^2``.  With ``zero_mean`` both signals are first
    made zero-mean, so the value is also invariant to a constant offset.

    Arguments
    ---------
    estimate : torch.Tensor
        Estimated signal(s) ``y_hat``, shape ``[..., T]``.
    target : torch.Tensor
        Reference signal(s) ``y``, same shape.
    zero_mean : bool
        Remove the mean of both signals first.
    eps : float
        Guards the divisions and logarithms.

    Returns
    -------
    torch.Tensor
        SI-SDR in dB, shape ``[...]``.

    Example
    -------
    >>> y = torch.randn(16000)
    >>> round(si_sdr(3.0 * y, y).item()) > 60
    True
    """
    if estimate.shape != target.shape:
        raise ValueError(
            f"shape mismatch: estimate {tuple(estimate.shape)} vs target "
            f"{tuple(target.shape)}"
        )
    if zero_mean:
        estimate = estimate - estimate.mean(dim=-1, keepdim=True)
        target = target - target.mean(dim=-1, keepdim=True)
    dot = (estimate * target).sum(dim=-1, keepdim=True)
    energy = (target**2).sum(dim=-1, keepdim=True) + eps
    projection = dot / energy * target
    noise = estimate - projection
    ratio = (projection**2).sum(dim=-1) / ((noise**2).sum(dim=-1) + eps)
    return 10 * torch.log10(ratio + eps)


def neg_si_sdr(estimate, target, clamp_db=None):
    """Negative SI-SDR loss (Eq. 16), optionally saturated at ``clamp_db``.

    Saturating the SI-SDR (the official RemixIT code uses 30 dB) stops
    well-reconstructed items from dominating the gradient.

    Arguments
    ---------
    estimate : torch.Tensor
        Shape ``[..., T]``.
    target : torch.Tensor
        Shape ``[..., T]``.
    clamp_db : float, optional
        SI-SDR above this value gives a constant loss (zero gradient).

    Returns
    -------
    torch.Tensor
        Loss in dB, shape ``[...]``.

    Example
    -------
    >>> y = torch.randn(100)
    >>> neg_si_sdr(y, y, clamp_db=30.0).item()
    -30.0
    """
    value = si_sdr(estimate, target)
    if clamp_db is not None:
        value = torch.clamp(value, max=clamp_db)
    return -value


def source_loss(estimates, targets, weights=None, clamp_db=None):
    """Per-source regression loss of Eqs. 2 and 6 of RemixIT.

    ``L_b = sum_k w_k L(est_bk, tgt_bk)``.  With true targets this is the
    supervised loss (Eq. 2); with the teacher's remixed estimates
    ``[s~, P n~]`` as targets it is the RemixIT loss (Eq. 6).  The default
    weights ``1/K`` reproduce the 0.5 speech + 0.5 noise of the official
    code.

    Arguments
    ---------
    estimates : torch.Tensor
        Shape ``[B, K, T]``.
    targets : torch.Tensor
        Shape ``[B, K, T]``.
    weights : sequence of float, optional
        One weight per source (default ``1/K`` each).
    clamp_db : float, optional
        See :func:`neg_si_sdr`.

    Returns
    -------
    torch.Tensor
        Loss per batch item, shape ``[B]``.

    Example
    -------
    >>> x = torch.randn(2, 2, 100)
    >>> source_loss(x, x, clamp_db=30.0).tolist()
    [-30.0, -30.0]
    """
    n_src = estimates.shape[1]
    if weights is None:
        weights = [1.0 / n_src] * n_src
    if len(weights) != n_src:
        raise ValueError(f"{len(weights)} weights for {n_src} sources")
    w = torch.as_tensor(weights, dtype=estimates.dtype, device=estimates.device)
    return (neg_si_sdr(estimates, targets, clamp_db) * w).sum(dim=1)


def confidence_weighted_loss(estimates, targets, frame_weights, weights=None,
                             clamp_db=None):
    """The RemixIT loss (Eq. 6) in segmental form.

    Confidence-weighted RemixIT (beyond both papers; the conclusion of
    RemixIT asks for a proxy of the pseudo-targets' quality): both terms
    are negative frame-weighted SI-SDRs
    (:func:`~speechbrain_remix.segsnr.weighted_si_sdr`) with the weights
    ``p_j = sigmoid(h(s~)_j)`` of the SNR predictor of data purification
    (Eq. 11 of Sivaraman et al.) applied to the teacher's speech estimate
    ``s~``: frames the predictor finds noisy count less.  The noise term
    is weighted too: the student's estimates and the targets both sum to
    the bootstrapped mixture (mixture consistency), so the noise error is
    minus the speech error, and an unweighted noise term would put back
    half of the weight that the speech term takes off a distrusted frame.

    Arguments
    ---------
    estimates, targets : torch.Tensor
        ``[B, 2, T]``: speech, noise.
    frame_weights : torch.Tensor
        ``[B, J]`` weights of the frames.
    weights : sequence of float, optional
        Speech and noise weights (default 0.5 each).
    clamp_db : float, optional
        Both SI-SDRs saturate at this value.

    Returns
    -------
    torch.Tensor
        ``[B]``.

    Example
    -------
    >>> x = torch.randn(2, 2, 16000)
    >>> confidence_weighted_loss(x, x, torch.rand(2, 63), clamp_db=30.0)
    tensor([-30., -30.])
    """
    w_speech, w_noise = weights if weights is not None else (0.5, 0.5)
    speech = weighted_si_sdr(estimates[:, 0], targets[:, 0], frame_weights)
    noise = weighted_si_sdr(estimates[:, 1], targets[:, 1], frame_weights)
    if clamp_db is not None:
        speech, noise = speech.clamp(max=clamp_db), noise.clamp(max=clamp_db)
    return -(w_speech * speech + w_noise * noise)


def mixit_assignments(n_outputs, n_mixtures=2):
    """All assignments of ``n_outputs`` slots to ``n_mixtures`` mixtures
    (generalized MixIT): ``n_mixtures ** n_outputs`` binary matrices.

    Arguments
    ---------
    n_outputs : int
        Number of model outputs ``M``.
    n_mixtures : int
        Number of mixtures that were added together.

    Returns
    -------
    torch.Tensor
        Shape ``[A, n_mixtures, n_outputs]``; ``A[a, k, m] = 1`` if output
        ``m`` is assigned to mixture ``k``.

    Example
    -------
    >>> mixit_assignments(3).shape
    torch.Size([8, 2, 3])
    """
    rows = []
    for choice in itertools.product(range(n_mixtures), repeat=n_outputs):
        a = torch.zeros(n_mixtures, n_outputs)
        a[list(choice), list(range(n_outputs))] = 1.0
        rows.append(a)
    return torch.stack(rows)


def enhancement_assignments(n_outputs=3):
    """The assignments of Eq. 3 of RemixIT for speech enhancement.

    Output 0 (speech) always goes with the noisy mixture ``m``; the noise
    outputs are split between ``m`` and the extra noise ``n`` with at least
    one noise output on each side.  For ``M = 3`` this is the set
    ``P = {(1, 2), (2, 1)}`` of Eq. 3.

    Arguments
    ---------
    n_outputs : int
        Number of model outputs ``M >= 3``.

    Returns
    -------
    torch.Tensor
        Shape ``[A, 2, n_outputs]``.

    Example
    -------
    >>> enhancement_assignments(3)[:, 1].tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    if n_outputs < 3:
        raise ValueError("MixIT enhancement needs speech + 2 noise outputs")
    allowed = []
    for a in mixit_assignments(n_outputs, 2):
        noise_to_m = a[0, 1:].sum()
        if a[0, 0] == 1 and 0 < noise_to_m < n_outputs - 1:
            allowed.append(a)
    return torch.stack(allowed)


def mixit_loss(estimates, mixtures, assignments=None, clamp_db=None,
               loss_fn=None):
    """Mixture invariant training loss (Eq. 3 of RemixIT; Wisdom et al.).

    ``L_b = min_A sum_k L(sum_m A_km est_bm, mix_bk)``: each mixture is
    compared with the sum of the outputs assigned to it, under the best of
    the allowed assignments.

    Arguments
    ---------
    estimates : torch.Tensor
        Outputs for the mixture of mixtures, shape ``[B, M, T]``.
    mixtures : torch.Tensor
        The mixtures that were added, shape ``[B, K, T]`` (``K = 2``).
    assignments : torch.Tensor, optional
        Allowed assignments ``[A, K, M]`` (default: all of
        :func:`mixit_assignments`).
    clamp_db : float, optional
        See :func:`neg_si_sdr`.
    loss_fn : callable, optional
        ``(estimate, reference) -> loss`` over the last axis, instead of
        the clamped negative SI-SDR (e.g. the thresholded SNR of
        Saijo & Ogawa: ``lambda e, r: thresholded_snr_loss(r, e)``).

    Returns
    -------
    loss : torch.Tensor
        Loss per batch item under the best assignment, shape ``[B]``.
    best : torch.Tensor
        Index of the best assignment per item, shape ``[B]``.

    Example
    -------
    >>> s, n1, n2 = torch.randn(3, 1, 200)
    >>> est = torch.stack([s, n1, n2], 1)
    >>> mix = torch.stack([s + n2, n1], 1)
    >>> loss, best = mixit_loss(est, mix, enhancement_assignments(3))
    >>> best.tolist()
    [1]
    """
    n_mix, n_out = mixtures.shape[1], estimates.shape[1]
    if assignments is None:
        assignments = mixit_assignments(n_out, n_mix)
    assignments = assignments.to(estimates)
    if assignments.shape[1:] != (n_mix, n_out):
        raise ValueError(
            f"assignments {tuple(assignments.shape)} do not match {n_mix} "
            f"mixtures and {n_out} outputs"
        )
    # remixed[b, a, k] = sum_m A[a, k, m] * est[b, m]
    remixed = torch.einsum("akm,bmt->bakt", assignments, estimates)
    target = mixtures.unsqueeze(1).expand_as(remixed)
    if loss_fn is None:
        losses = neg_si_sdr(remixed, target, clamp_db)
    else:
        losses = loss_fn(remixed, target)
    losses = losses.sum(dim=2)  # [B, A]
    loss, best = losses.min(dim=1)
    return loss, best


# ---------------------------------------------------------------------------
# Losses of Saijo & Ogawa (2023), RemixIT and Self-Remixing from scratch.


def thresholded_snr_loss(reference, estimate, tau=1e-3):
    """Negative thresholded SNR (Eq. 8 of Self-Remixing from scratch).

    ``-10 log10(||y||^2 / (||y - y_hat||^2 + tau ||y||^2))``: the SNR
    saturates at ``-10 log10(tau)`` (30 dB for ``tau = 1e-3``).

    Arguments
    ---------
    reference, estimate : torch.Tensor
        ``[..., T]``.
    tau : float
        Threshold.

    Returns
    -------
    torch.Tensor
        ``[...]``, in dB.

    Example
    -------
    >>> y = torch.randn(100)
    >>> round(thresholded_snr_loss(y, y).item(), 3)
    -30.0
    """
    energy = reference.pow(2).sum(-1)
    error = (reference - estimate).pow(2).sum(-1)
    return 10 * torch.log10(error + tau * energy + 1e-12) - 10 * torch.log10(
        energy + 1e-12)


def zero_reference_snr_loss(reference, estimate, mixture, tau=1e-3):
    """SNR loss defined for silent references (Eq. 2 of the FUSS paper,
    used by the supervised variants of Self-Remixing):
    ``10 log10(||y - y_hat||^2 + tau ||x||^2)``, thresholded relative to
    the mixture ``x`` rather than to the (possibly zero) reference.

    Arguments
    ---------
    reference, estimate : torch.Tensor
        ``[B, N, T]``.
    mixture : torch.Tensor
        ``[B, T]``.
    tau : float
        Threshold.

    Returns
    -------
    torch.Tensor
        ``[B, N]``.

    Example
    -------
    >>> x = torch.randn(1, 50)
    >>> silent = torch.zeros(1, 1, 50)
    >>> bool(torch.isfinite(zero_reference_snr_loss(silent, silent, x)).all())
    True
    """
    error = (reference - estimate).pow(2).sum(-1)
    floor = tau * mixture.pow(2).sum(-1, keepdim=True)
    return 10 * torch.log10(error + floor + 1e-12)


def _tsnr_time_first(estimate, reference):
    """:func:`thresholded_snr_loss` on SpeechBrain PIT's ``[T, ...]``."""
    value = thresholded_snr_loss(reference.movedim(0, -1),
                                 estimate.movedim(0, -1))
    return value.unsqueeze(0)


def pit_loss(estimates, targets, base_loss=_tsnr_time_first):
    """Permutation-invariant loss (Eq. 3 of Self-Remixing), with
    SpeechBrain's :class:`~speechbrain.nnet.losses.PitWrapper`.

    Arguments
    ---------
    estimates, targets : torch.Tensor
        ``[B, N, T]``.
    base_loss : callable
        Loss on time-first tensors, no reduction over sources (default: the
        thresholded SNR of Eq. 8).

    Returns
    -------
    loss : torch.Tensor
        ``[B]``, mean over the ``N`` matched pairs.
    aligned : torch.Tensor
        The estimates reordered to match the targets, ``[B, N, T]``.

    Example
    -------
    >>> t = torch.randn(2, 3, 100)
    >>> loss, aligned = pit_loss(t[:, [2, 0, 1]], t)
    >>> torch.equal(aligned, t), loss.tolist()
    (True, [-30.0, -30.0])
    """
    from speechbrain.nnet.losses import PitWrapper

    pit = PitWrapper(base_loss)
    est, tgt = estimates.transpose(1, 2), targets.transpose(1, 2)
    loss, perms = pit(est, tgt)
    aligned = pit.reorder_tensor(est, perms).transpose(1, 2)
    return loss, aligned


def self_remixing_loss(mixtures, unshuffled, tau=1e-3):
    """Self-Remixing loss (Eq. 5): each observed mixture against the sum of
    the student's outputs put back in their pre-shuffle order.

    Arguments
    ---------
    mixtures : torch.Tensor
        Observed mixtures ``[B, T]``.
    unshuffled : torch.Tensor
        ``s_hat^(Pi^-1)``, ``[B, N, T]``.
    tau : float
        Threshold of Eq. 8.

    Returns
    -------
    torch.Tensor
        ``[B]``.
    """
    return thresholded_snr_loss(mixtures, unshuffled.sum(dim=1), tau)


def permutation_min(loss_fn, estimates, targets):
    """``min`` over output orders of ``loss_fn(est, ref).mean(-1)``, for
    losses that SpeechBrain's PIT cannot take (e.g. ones that also need the
    mixture).  Brute force: fine for the few outputs of these models.

    Arguments
    ---------
    loss_fn : callable
        ``(estimates [B, N, T], targets [B, N, T]) -> [B, N]``.
    estimates, targets : torch.Tensor
        ``[B, N, T]``.

    Returns
    -------
    torch.Tensor
        ``[B]``.

    Example
    -------
    >>> t = torch.randn(2, 3, 40)
    >>> mse = lambda e, r: (e - r).pow(2).mean(-1)
    >>> permutation_min(mse, t[:, [1, 2, 0]], t).tolist()
    [0.0, 0.0]
    """
    orders = itertools.permutations(range(estimates.shape[1]))
    losses = torch.stack([loss_fn(estimates[:, list(order)], targets).mean(-1)
                          for order in orders], dim=1)
    return losses.min(dim=1).values


def sparsity_loss(estimates, eps=1e-8):
    """Sparsity of the outputs' levels (Wisdom et al., 2021, Eq. 6):
    ``||r||_1 / ||r||_2`` of the vector ``r`` of per-output RMS values,
    smallest when one output carries everything; it discourages
    over-separation ("MixIT + Sparsity" of Saijo & Ogawa, 2023).

    Arguments
    ---------
    estimates : torch.Tensor
        ``[B, N, T]``.

    Returns
    -------
    torch.Tensor
        ``[B]``, between 1 and ``sqrt(N)``.

    Example
    -------
    >>> one = torch.zeros(1, 4, 10); one[0, 0] = 1.0
    >>> round(sparsity_loss(one).item(), 3)
    1.0
    >>> round(sparsity_loss(torch.ones(1, 4, 10)).item(), 4)
    2.0
    """
    rms = estimates.pow(2).mean(-1).add(eps).sqrt()
    return rms.sum(-1) / rms.pow(2).sum(-1).sqrt()
