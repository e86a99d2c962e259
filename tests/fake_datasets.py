"""Tiny fake copies of the papers' datasets, with their real folder layout
and file naming, built inside the tests (white noise as audio)."""

import os

import numpy as np
import soundfile as sf


def write_wav(path, seconds, rate=16000, seed=0, channels=1):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (int(seconds * rate), channels) if channels > 1 else (
        int(seconds * rate),)
    sf.write(path, (0.1 * rng.standard_normal(shape)).astype(np.float32),
             rate)
    return path


def make_dns(root, n_clean=12, n_noise=4, n_test=3):
    """DNS-Challenge (Interspeech 2020) ``datasets`` tree."""
    ds = os.path.join(root, "datasets")
    for i in range(n_clean):
        write_wav(os.path.join(
            ds, "clean", f"book_{i:05d}_chp_0001_reader_{i % 3:05d}_0.wav"),
            2.0, seed=i)
    for i in range(n_noise):
        write_wav(os.path.join(ds, "noise", f"noise_class_{i}.wav"), 1.2,
                  seed=100 + i)
    for sub in ("no_reverb", "with_reverb"):
        base = os.path.join(ds, "test_set", "synthetic", sub)
        for i in range(n_test):
            write_wav(os.path.join(base, "clean", f"clean_fileid_{i}.wav"),
                      1.5, seed=200 + i)
            write_wav(os.path.join(
                base, "noisy",
                f"clnsp{i}_train_{i}_snr5_tl-21_fileid_{i}.wav"), 1.5,
                seed=300 + i)
    return root
