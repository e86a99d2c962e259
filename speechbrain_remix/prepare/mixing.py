"""Synthesising noisy mixtures for manifests: shared by every preparation
that starts from isolated speech and noise."""

import os

import numpy as np
import soundfile as sf


def add_noise(clean, noise, snr_range, rng):
    """Mixes ``clean`` with a random excerpt of ``noise`` at a random SNR.

    The noise is tiled when shorter than the speech, cut at a random offset
    and scaled; the speech is never rescaled (``AddNoise`` of SpeechBrain
    scales the speech down, which would make ``clean`` a wrong reference).

    Arguments
    ---------
    clean : numpy.ndarray
        Speech, 1-D.
    noise : numpy.ndarray
        Noise recording, 1-D, any length.
    snr_range : tuple of float
        The speech-to-noise energy ratio (dB) is uniform in this range.
    rng : numpy.random.Generator
        Picks the offset, then the SNR.

    Returns
    -------
    mix, noise : numpy.ndarray
        The mixture and the scaled noise excerpt (``mix = clean + noise``).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> s, n = rng.standard_normal(1000), rng.standard_normal(300)
    >>> mix, noise = add_noise(s, n, (5.0, 5.0), rng)
    >>> float(round(10 * np.log10(np.sum(s**2) / np.sum(noise**2)), 6))
    5.0
    """
    if len(noise) < len(clean):
        noise = np.tile(noise, len(clean) // len(noise) + 1)
    start = rng.integers(len(noise) - len(clean) + 1)
    noise = noise[start : start + len(clean)]
    snr_db = rng.uniform(*snr_range)
    gain = np.sqrt(np.sum(clean**2) / (np.sum(noise**2) + 1e-12)
                   / 10 ** (snr_db / 10))
    noise = noise * gain
    return clean + noise, noise


def write_mixture(data_folder, split, uid, clean, noise, mix, sample_rate):
    """Writes ``split/{mix,clean,noise}/uid.wav`` under ``data_folder``.

    All three are divided by the same factor when the mixture would clip,
    so ``mix = clean + noise`` still holds in the files (float wavs).

    Returns
    -------
    dict
        ``mix_wav``, ``clean_wav``, ``noise_wav`` as ``$data_root`` paths.
    """
    peak = max(1.0, float(np.abs(mix).max()) / 0.99)
    paths = {}
    for name, wav in (("mix", mix), ("clean", clean), ("noise", noise)):
        rel = f"{split}/{name}/{uid}.wav"
        os.makedirs(os.path.join(data_folder, split, name), exist_ok=True)
        sf.write(os.path.join(data_folder, rel),
                 (wav / peak).astype(np.float32), sample_rate,
                 subtype="FLOAT")
        paths[f"{name}_wav"] = f"$data_root/{rel}"
    return paths
