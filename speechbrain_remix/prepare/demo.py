"""Mixtures and manifests for the shipped demo corpus (``data/demo``).

Two noise domains: ``music`` (domain A, where the supervised teacher is
trained) and ``env`` (domain B, where RemixIT adapts a student using its
noisy mixtures only).  Speech of the ``train`` speakers is split in halves
between the two domains; the test set uses the disjoint ``test`` speakers
and held-out noise recordings.  Everything is drawn from ``seed``, so the
same options always give the same files.

Manifests written to ``data_folder`` (paths as ``$data_root/...``):

========================  ==========================================
``A_train.csv``/``A_valid.csv``  mix, clean, noise (teacher, domain A)
``B_train.csv``/``B_valid.csv``  mix only (unlabeled, domain B)
``B_test.csv``                   mix, clean, noise (evaluation)
``A_noise.csv``/``B_noise.csv``  noise only (MixIT, Eq. 17)
========================  ==========================================

Every source file is checked (NaN/inf: an error; silent: left out and
listed in ``skipped_silent.txt``), and so is every file written.
"""

import glob
import logging
import os

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speechbrain_remix.data import DataError, read_audio
from speechbrain_remix.prepare.common import Preparation
from speechbrain_remix.prepare.mixing import add_noise, write_mixture

logger = logging.getLogger(__name__)
MIX_FIELDS = ["ID", "duration", "mix_wav", "clean_wav", "noise_wav"]
NOISE_FIELDS = ["ID", "duration", "noise_wav"]
DOMAINS = {"A": "music", "B": "env"}


def prepare_demo(
    source_folder,
    data_folder,
    sample_rate=16000,
    n_train=120,
    n_valid=16,
    n_test=40,
    snr_range=(-5.0, 5.0),
    seed=1234,
    skip_prep=False,
):
    """Builds the demo mixtures and writes the manifests.

    Arguments
    ---------
    source_folder : str
        The shipped corpus (``data/demo``), with ``speech/{train,test}`` and
        ``noise/{music,env}/{train,test}``.
    data_folder : str
        Where mixtures and manifests go.
    sample_rate : int
        Must be the corpus' rate (16 kHz).
    n_train, n_valid, n_test : int
        Mixtures per domain for training, validation and (domain B) test.
    snr_range : tuple of float
        Speech-to-noise ratios are drawn uniformly from this range (dB).
    seed : int
        Seed of every random choice.
    skip_prep : bool
        Do nothing (manifests already exist).
    """
    if skip_prep:
        return
    options = dict(n_train=n_train, n_valid=n_valid, n_test=n_test,
                   snr_range=list(snr_range), seed=seed,
                   sample_rate=sample_rate,
                   source=os.path.abspath(source_folder))
    prep = Preparation(data_folder, options)
    if prep.done():
        return
    speech = {s: _list(source_folder, f"speech/{s}") for s in ("train", "test")}
    prep.start()
    speech = {s: prep.keep(files, os.path.join(source_folder, "speech", s))
              for s, files in speech.items()}
    rng = np.random.default_rng(seed)
    pools = dict(zip("AB", speech_halves(speech["train"], rng)))
    need = n_train + n_valid
    if len(pools["A"]) < need or len(speech["test"]) < n_test:
        raise DataError(
            f"{source_folder}: not enough speech for n_train={n_train}, "
            f"n_valid={n_valid}, n_test={n_test}; lower them"
        )
    for key, domain in DOMAINS.items():
        sub = f"noise/{domain}/train"
        noise_train = prep.keep(_list(source_folder, sub),
                                os.path.join(source_folder, sub))
        mixes = prep.screen(_mix(pools[key][:need], noise_train, data_folder,
                                 f"{key}_train", sample_rate, snr_range, rng),
                            f"{key} mixtures")
        labelled = key == "A"
        fields = MIX_FIELDS if labelled else MIX_FIELDS[:3]
        prep.write(f"{key}_train.csv", mixes[:n_train], fields)
        prep.write(f"{key}_valid.csv", mixes[n_train:], fields)
        prep.write(f"{key}_noise.csv", _copy_noise(
            noise_train, data_folder, key, sample_rate), NOISE_FIELDS)
    sub = f"noise/{DOMAINS['B']}/test"
    noise_test = prep.keep(_list(source_folder, sub),
                           os.path.join(source_folder, sub))
    test = _mix(speech["test"][:n_test], noise_test, data_folder, "B_test",
                sample_rate, snr_range, rng)
    prep.write("B_test.csv", test, MIX_FIELDS)
    prep.finish()


def speech_halves(files, seed):
    """The ``speech/train`` files of domain A and of domain B: a random
    permutation cut in halves (B gets the odd one out).

    Shared with ``prepare_personal_demo`` (``prepare/personal.py``), whose
    speaker-agnostic speech must be exactly domain A's: the SNR predictor
    and generalist trained there see the same speech as the teacher here.

    Arguments
    ---------
    files : list
        The usable ``speech/train`` files, sorted.
    seed : int or numpy.random.Generator
        A generator is used (and advanced) as is, so that
        :func:`prepare_demo` draws everything else from the same stream.

    Returns
    -------
    list, list
        Domain A's files and domain B's.

    Example
    -------
    >>> a, b = speech_halves(["w", "x", "y", "z", "zz"], 1234)
    >>> len(a), len(b), sorted(a + b) == ["w", "x", "y", "z", "zz"]
    (2, 3, True)
    """
    rng = np.random.default_rng(seed)  # a Generator is returned unchanged
    shuffled = [files[i] for i in rng.permutation(len(files))]
    half = len(shuffled) // 2
    return shuffled[:half], shuffled[half:]


def _list(root, sub):
    files = sorted(glob.glob(os.path.join(root, sub, "*.ogg")))
    if not files:
        raise DataError(
            f"{os.path.join(root, sub)}: no audio found; source_folder must "
            "be the shipped demo corpus (data/demo in the repository)"
        )
    return files


def _mix(speech_files, noise_files, data_folder, split, sample_rate,
         snr_range, rng):
    """One mixture per speech file with a random noise excerpt at a random
    SNR."""
    rows = []
    for speech_file in tqdm(speech_files, desc=f"mixing {split}"):
        clean = read_audio(speech_file, sample_rate).numpy()
        noise = read_audio(noise_files[rng.integers(len(noise_files))],
                           sample_rate).numpy()
        mix, noise = add_noise(clean, noise, snr_range, rng)
        uid = os.path.splitext(os.path.basename(speech_file))[0]
        rows.append({
            "ID": uid, "duration": f"{len(clean) / sample_rate:.3f}",
            **write_mixture(data_folder, split, uid, clean, noise, mix,
                            sample_rate),
        })
    return rows


def _copy_noise(noise_files, data_folder, key, sample_rate):
    folder = os.path.join(data_folder, f"{key}_noise")
    os.makedirs(folder, exist_ok=True)
    rows = []
    for path in noise_files:
        wav = read_audio(path, sample_rate).numpy()
        uid = os.path.splitext(os.path.basename(path))[0]
        sf.write(os.path.join(folder, f"{uid}.wav"), wav, sample_rate,
                 subtype="FLOAT")
        rows.append({"ID": uid, "duration": f"{len(wav) / sample_rate:.3f}",
                     "noise_wav": f"$data_root/{key}_noise/{uid}.wav"})
    return rows
