"""DNS-Challenge 2020 (Interspeech 2020 release) manifests for RemixIT.

Expected layout (the ``datasets`` folder of the challenge repository; the
repository root is accepted too)::

    datasets/clean/*.wav                 clean read speech
    datasets/noise/*.wav                 noise recordings
    datasets/test_set/synthetic/no_reverb/{clean,noisy}/*.wav
    datasets/test_set/synthetic/with_reverb/{clean,noisy}/*.wav

Test pairs are matched by their ``fileid_<N>`` suffix (``clean_fileid_3.wav``
and ``..._fileid_3.wav``).

Training pairs are drawn deterministically from ``seed``: every clean file
gets a noise file and a random noise offset, and the pair is mixed
*without altering their power ratio* (Section III-D of RemixIT), as a
virtual mixture (``clean + noise``, synthesised when read; see
:func:`speechbrain_remix.data.make_dataset`), so nothing is written but
manifests.  Written to ``save_folder``:

================================  =========================================
``train.csv`` / ``valid.csv``     clean + noise pairs (supervised; their
                                  sum is the mixture for unlabeled use)
``train_mix80.csv``               80 % of the training pairs, as mixtures
``train_noise20.csv``             the noise of the other 20 % (MixIT with
                                  in-domain noise, Table I; Eq. 17)
``noise.csv``                     every noise file (out-of-domain noise for
                                  other datasets' MixIT)
``test.csv``                      150 synthetic test pairs, no reverb
``test_reverb.csv``               150 synthetic test pairs with reverb
================================  =========================================

Every file is checked: NaN or inf samples are an error naming it; silent
files are left out (a silent noise file is never paired) and listed in
``save_folder/skipped_silent.txt``.
"""

import logging
import os
import re

import numpy as np

from speechbrain_remix.data import DataError
from speechbrain_remix.prepare.common import (
    NOISE_FIELDS,
    Preparation,
    list_audio,
)

logger = logging.getLogger(__name__)
PAIR_FIELDS = ["ID", "duration", "clean_wav", "noise_wav", "noise_gain",
               "noise_start"]
TEST_FIELDS = ["ID", "duration", "mix_wav", "clean_wav"]
FILEID = re.compile(r"fileid_(\d+)$")


def dns_root(data_folder):
    """The ``datasets`` folder, or a :class:`DataError` naming what is
    missing when ``data_folder`` is not the DNS-Challenge 2020 data."""
    for root in (os.path.join(data_folder, "datasets"), data_folder):
        if os.path.isdir(os.path.join(root, "clean")):
            break
    needed = ["clean", "noise", "test_set/synthetic/no_reverb/clean",
              "test_set/synthetic/no_reverb/noisy",
              "test_set/synthetic/with_reverb/clean",
              "test_set/synthetic/with_reverb/noisy"]
    missing = [d for d in needed if not os.path.isdir(os.path.join(root, d))]
    if missing:
        raise DataError(
            f"{data_folder}: not the DNS-Challenge 2020 (Interspeech) data; "
            f"missing {', '.join(missing)} under {root}. Point data_folder "
            "to the challenge repository (interspeech2020/master branch)."
        )
    return root


def prepare_dns(
    data_folder,
    save_folder,
    sample_rate=16000,
    n_valid=500,
    noise_fraction=0.2,
    seed=1234,
    skip_prep=False,
):
    """Writes the DNS manifests described in the module docstring.

    Arguments
    ---------
    data_folder : str
        The challenge repository or its ``datasets`` folder.
    save_folder : str
        Where manifests (and resampled files, if any) go.
    sample_rate : int
        Target rate; files at another rate are resampled into
        ``save_folder/resampled``.
    n_valid : int
        Training pairs held out for validation.
    noise_fraction : float
        Share of the training pairs whose noise forms ``train_noise20.csv``
        (the rest are the mixtures of ``train_mix80.csv``).
    seed : int
        Seed of the pairing and the splits.
    skip_prep : bool
        Do nothing.
    """
    if skip_prep:
        return
    options = dict(data_folder=os.path.abspath(data_folder),
                   sample_rate=sample_rate, n_valid=n_valid,
                   noise_fraction=noise_fraction, seed=seed)
    prep = Preparation(save_folder, options)
    if prep.done():
        return
    root = dns_root(data_folder)
    prep.start()
    resampled = os.path.join(save_folder, "resampled")
    clean, noise = (
        prep.keep(list_audio(os.path.join(root, part), sample_rate,
                             os.path.join(resampled, part)),
                  os.path.join(root, part))
        for part in ("clean", "noise"))
    rng = np.random.default_rng(seed)

    rows = []
    for k in rng.permutation(len(clean)):
        uid, path, seconds = clean[k]
        n_uid, n_path, n_seconds = noise[rng.integers(len(noise))]
        start = int(rng.integers(max(1, int(n_seconds * sample_rate))))
        rows.append({"ID": uid, "duration": f"{seconds:.3f}",
                     "clean_wav": path, "noise_wav": n_path,
                     "noise_gain": 1.0, "noise_start": start})
    if len(rows) <= n_valid + 1:
        raise DataError(f"{root}/clean: {len(rows)} files, too few to hold "
                        f"out n_valid={n_valid}; lower n_valid")
    prep.write_splits(rows[n_valid:], rows[:n_valid], PAIR_FIELDS,
                      noise_fraction)
    prep.write("noise.csv", [{"ID": u, "duration": f"{s:.3f}",
                              "noise_wav": p} for u, p, s in noise],
               NOISE_FIELDS)
    for name, sub in (("test.csv", "no_reverb"),
                      ("test_reverb.csv", "with_reverb")):
        folder = os.path.join(root, "test_set", "synthetic", sub)
        prep.write(name, synthetic_test_pairs(
            folder, sample_rate, os.path.join(resampled, sub)), TEST_FIELDS)
    prep.finish()


def synthetic_test_pairs(folder, sample_rate, resampled):
    """Noisy/clean test files matched by ``fileid``."""
    clean = {}
    for uid, path, seconds in list_audio(os.path.join(folder, "clean"),
                                         sample_rate, resampled + "/clean"):
        match = FILEID.search(uid)
        if match:
            clean[match.group(1)] = (path, seconds)
    rows = []
    for uid, path, seconds in list_audio(os.path.join(folder, "noisy"),
                                         sample_rate, resampled + "/noisy"):
        match = FILEID.search(uid)
        if not match or match.group(1) not in clean:
            raise DataError(f"{path}: no clean_fileid_<N>.wav partner in "
                            f"{os.path.join(folder, 'clean')}")
        rows.append({"ID": f"fileid_{match.group(1)}",
                     "duration": f"{seconds:.3f}", "mix_wav": path,
                     "clean_wav": clean[match.group(1)][0]})
    return sorted(rows, key=lambda r: int(r["ID"].split("_")[1]))
