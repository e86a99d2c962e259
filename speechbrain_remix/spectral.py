"""Magnitude-spectrogram processing: the STFT of the latent-autoencoder
scheme (1024-point DFT, hop 256, Hann window: Sec. 3.1 of Wang et al.,
2020; SpeechBrain's STFT would default to a Hamming window), resynthesis
with the mixture's phase, and the spectral-subtraction baseline (Table 1).
"""

import torch

N_FFT, HOP = 1024, 256


def stft(wav, n_fft=N_FFT, hop=HOP):
    """``[B, T]`` -> complex ``[B, n_fft // 2 + 1, frames]``.

    Example
    -------
    >>> stft(torch.randn(2, 16000)).shape
    torch.Size([2, 513, 63])
    """
    return torch.stft(wav, n_fft, hop, window=torch.hann_window(
        n_fft, device=wav.device), return_complex=True)


def istft(spec, length, n_fft=N_FFT, hop=HOP):
    """Inverse of :func:`stft`, ``length`` samples.

    Example
    -------
    >>> x = torch.randn(1, 8000)
    >>> torch.allclose(istft(stft(x), 8000), x, atol=1e-5)
    True
    """
    return torch.istft(spec, n_fft, hop, window=torch.hann_window(
        n_fft, device=spec.device), length=length)


def compress(magnitude, power):
    """``|X| ** power``: the official code feeds ``|X| ** 0.5`` to the
    autoencoders (``power = 1``: plain magnitudes)."""
    return magnitude.clamp(min=0) ** power


def expand(features, power):
    """Inverse of :func:`compress` (negative values clipped to 0)."""
    return features.clamp(min=0) ** (1.0 / power)


def with_phase(magnitude, like, length):
    """Resynthesis of ``magnitude`` with the phase of the complex STFT
    ``like`` (the mixture's: Sec. 2.1 uses the noisy phase)."""
    phase = like / (like.abs() + 1e-8)
    return istft(magnitude * phase, length)


def spectral_subtraction(wav, noise_quantile=0.1, over=2.0, floor=0.02):
    """Power spectral subtraction (Boll, 1979; the baseline of Table 1).

    The noise power of each bin is the mean power of the quietest
    ``noise_quantile`` of the frames (test recordings need not start with
    silence); ``over`` times it is subtracted from each frame's power, with
    a spectral floor of ``floor`` times the noise power against musical
    noise; the mixture's phase is kept.

    Arguments
    ---------
    wav : torch.Tensor
        ``[B, T]`` noisy recordings.
    noise_quantile : float
        Share of the lowest-energy frames taken as noise only.
    over : float
        Over-subtraction factor.
    floor : float
        Spectral floor, relative to the noise power.

    Returns
    -------
    torch.Tensor
        ``[B, T]`` enhanced.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> t = torch.arange(16000) / 16000
    >>> tone = torch.sin(2 * torch.pi * 440 * t) * (t > 0.5)
    >>> noise = 0.1 * torch.randn(16000, generator=g)
    >>> out = spectral_subtraction((tone + noise).unsqueeze(0))[0]
    >>> err = lambda y: float(((y - tone)[8000:] ** 2).mean())
    >>> err(out) < err(tone + noise)
    True
    """
    spec = stft(wav)
    power = spec.abs() ** 2  # [B, F, frames]
    energy = power.sum(1)  # [B, frames]
    k = max(1, int(noise_quantile * energy.shape[-1]))
    quiet = energy.topk(k, dim=-1, largest=False).indices  # [B, k]
    noise = torch.gather(power, 2, quiet.unsqueeze(1).expand(
        -1, power.shape[1], -1)).mean(-1, keepdim=True)
    clean_power = torch.maximum(power - over * noise, floor * noise)
    return with_phase(clean_power.sqrt(), spec, wav.shape[-1])
