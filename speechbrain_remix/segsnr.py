"""Frame-level quantities of data purification (Sivaraman, Kim & Kim,
2021): segmental SNR (Eq. 7), frame weights (Eq. 11), segmental MSE
(Eq. 12), and a frame-weighted SI-SDR, the segmental form of the RemixIT
loss used by confidence-weighted RemixIT.

Every frame-level quantity uses one framing, so that the ``j``-th weight
always belongs to the ``j``-th frame of the loss: ``N = 1024``-sample
Hann-windowed frames every ``H = 256`` samples (Sec. 3.3), centred as
``torch.stft`` centres them (``N / 2`` samples of reflect padding at each
end, as the official code pads), which gives ``J = 1 + L // H`` frames for
``L`` samples; the paper's ``ceil(L / H)`` is the same number unless ``H``
divides ``L`` (for its 1 s crops both give 63), and it is the number of
frames of the STFT the SNR predictor sees.
"""

import torch

N_FFT, HOP = 1024, 256


def frames(signal, n_fft=N_FFT, hop=HOP, window=True):
    """Centred, optionally Hann-windowed frames of ``signal``.

    Arguments
    ---------
    signal : torch.Tensor
        ``[..., L]``.
    n_fft, hop : int
        Frame size ``N`` and hop ``H``.
    window : bool
        Multiply each frame by the Hann window ``w`` of Eq. 7.

    Returns
    -------
    torch.Tensor
        ``[..., J, N]`` with ``J = 1 + L // H``.

    Example
    -------
    >>> frames(torch.randn(2, 16000)).shape
    torch.Size([2, 63, 1024])
    """
    shape = signal.shape
    flat = signal.reshape(-1, 1, shape[-1])
    # reflect padding needs more samples than the pad; shorter: zeros
    mode = "reflect" if shape[-1] > n_fft // 2 else "constant"
    padded = torch.nn.functional.pad(flat, (n_fft // 2, n_fft // 2), mode=mode)
    out = padded[:, 0].unfold(-1, n_fft, hop)
    if window:
        out = out * torch.hann_window(n_fft, periodic=True,
                                      dtype=signal.dtype,
                                      device=signal.device)
    return out.reshape(*shape[:-1], *out.shape[-2:])


def segsnr(target, estimate, eps=1e-8, n_fft=N_FFT, hop=HOP):
    """Segmental SNR in dB, Eq. 7 of Sivaraman et al.

    ``SegSNR_j(v, v_hat) = 10 log10(sum_i (w_i v_i)^2 / sum_i (w_i r_i)^2)``
    over frame ``j``, with the residual ``r = v - v_hat``.  The SNR
    predictor's target is ``SegSNR(s, x)`` of clean speech ``s`` and its
    mixture ``x`` (Eq. 9), i.e. the frame SNR of speech to noise.  Raw dB,
    not clipped (as the official code); ``eps`` keeps a silent frame finite.

    Arguments
    ---------
    target : torch.Tensor
        ``v``, ``[..., L]``.
    estimate : torch.Tensor
        ``v_hat``, same shape.

    Returns
    -------
    torch.Tensor
        ``[..., J]``.

    Example
    -------
    >>> s = torch.randn(16000)
    >>> segsnr(s, s + 0.1 * s).mean().round().item()  # 20 dB everywhere
    20.0
    """
    signal = frames(target, n_fft, hop).pow(2).sum(-1)
    residual = frames(target - estimate, n_fft, hop).pow(2).sum(-1)
    return 10 * torch.log10((signal + eps) / (residual + eps))


#: the range (dB) the SNR predictor is trained to regress, see
#: :func:`snr_target`
TARGET_RANGE = (-30.0, 50.0)


def snr_target(clean, mixture, target_range=TARGET_RANGE):
    """The SNR predictor's target ``alpha = SegSNR(s, x)`` (Eq. 9), made
    learnable from the mixture alone (our choices; the official code
    regresses the raw dB of the signals as they are):

    * both signals are divided by the mixture's standard deviation, the
      normalization the predictor applies to its input, so that the target
      does not depend on the recording level through ``eps`` (a digitally
      silent speech frame is -60 dB at one level and -100 dB at another);
    * the target is clipped to ``target_range``: below -30 dB the weight
      ``sigmoid(alpha)`` is 0 and above 50 dB 1 to 13 digits, while the raw
      values there measure how silent a recording's pauses are, which the
      predictor cannot see and which would dominate its squared error.

    Example
    -------
    >>> s = torch.zeros(16000)
    >>> s[8000:] = torch.randn(8000)
    >>> x = s + 0.01 * torch.randn(16000)
    >>> a, b = snr_target(s, x), snr_target(10 * s, 10 * x)
    >>> torch.allclose(a, b, atol=1e-4), a.min().item(), a.max() > 35
    (True, -30.0, tensor(True))
    """
    scale = mixture.std(-1, keepdim=True) + 1e-8
    return segsnr(clean / scale, mixture / scale).clamp(*target_range)


def frame_weights(predicted_snr):
    """Frame weights ``p = sigmoid(alpha_hat)`` (Eq. 11), detached: the
    weights steer the loss and carry no gradient (to the SNR predictor or
    anything upstream).

    Example
    -------
    >>> frame_weights(torch.tensor([0.0, 40.0, -40.0])).round(decimals=3)
    tensor([0.5000, 1.0000, 0.0000])
    """
    return torch.sigmoid(predicted_snr).detach()


def seg_mse(estimate, target, weights=None, n_fft=N_FFT, hop=HOP):
    """Weighted segmental MSE, Eq. 12 of Sivaraman et al.

    ``L = 1/J sum_j p_j [1/N sum_{i in frame j} (w_i s~_i - w_i y~_i)^2]``:
    the squared error of the Hann-windowed frames, divided by ``N``,
    weighted by ``p_j`` and averaged over the ``J`` frames (divided by
    ``J``, not by the sum of the weights, as the official code).  As the
    official code, each signal's mean is removed first.

    Arguments
    ---------
    estimate : torch.Tensor
        ``y~``, ``[B, L]``.
    target : torch.Tensor
        The pseudo-source ``s~``, ``[B, L]``.
    weights : torch.Tensor, optional
        ``p``, ``[B, J]`` (default: all ones).

    Returns
    -------
    torch.Tensor
        Loss per item, ``[B]``.

    Example
    -------
    >>> y = torch.randn(2, 16000)
    >>> seg_mse(y, y).tolist()
    [0.0, 0.0]
    """
    estimate = estimate - estimate.mean(-1, keepdim=True)
    target = target - target.mean(-1, keepdim=True)
    error = frames(target - estimate, n_fft, hop).pow(2).sum(-1) / n_fft
    if weights is not None:
        if weights.shape != error.shape:
            raise ValueError(f"weights {tuple(weights.shape)} do not match "
                             f"the {tuple(error.shape)} frames of the loss")
        error = error * weights
    return error.mean(-1)


def weighted_si_sdr(estimate, target, weights, eps=1e-8, n_fft=N_FFT,
                    hop=HOP):
    """SI-SDR (Eq. 16 of RemixIT) in a frame-weighted inner product.

    With the Hann-windowed frames of Eq. 7 and the frame weights ``p``,
    ``<a, b>_p = sum_j p_j sum_i w_i^2 a_ji b_ji``; the target is scaled by
    ``alpha = <y_hat, y>_p / <y, y>_p`` and
    ``SDR_p = 10 log10(<alpha y, alpha y>_p / <e, e>_p)``,
    ``e = y_hat - alpha y``.  Frames with a small weight (an unreliable
    pseudo-target) count less in both the projection and the ratio.  With
    all weights equal it is the SI-SDR of the windowed frames (the plain
    SI-SDR up to the edges, since the squared Hann window at 75 % overlap
    sums to a constant); it does not change when all weights are scaled.

    Arguments
    ---------
    estimate, target : torch.Tensor
        ``[B, L]``.
    weights : torch.Tensor
        ``[B, J]``, non-negative.

    Returns
    -------
    torch.Tensor
        ``[B]`` in dB.

    Example
    -------
    >>> y = torch.randn(1, 16000)
    >>> p = torch.rand(1, 63)
    >>> bool(weighted_si_sdr(2 * y + 0.1 * torch.randn(1, 16000), y, p) > 20)
    True
    """
    estimate = estimate - estimate.mean(-1, keepdim=True)
    target = target - target.mean(-1, keepdim=True)
    est, tgt = frames(estimate, n_fft, hop), frames(target, n_fft, hop)
    if weights.shape != est.shape[:-1]:
        raise ValueError(f"weights {tuple(weights.shape)} do not match the "
                         f"{tuple(est.shape[:-1])} frames")
    # relative weights (the value does not depend on their scale): a crop
    # predicted noisy throughout is still weighted, not zeroed by ``eps``
    p = weights / weights.amax(-1, keepdim=True).clamp(min=1e-12)
    p = p.unsqueeze(-1)

    def inner(a, b):
        return (p * a * b).sum((-1, -2))

    alpha = inner(est, tgt) / (inner(tgt, tgt) + eps)
    scaled = alpha[:, None, None] * tgt
    error = est - scaled
    ratio = inner(scaled, scaled) / (inner(error, error) + eps)
    return 10 * torch.log10(ratio + eps)
