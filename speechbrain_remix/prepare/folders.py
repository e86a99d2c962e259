"""Manifests for your own recordings.

* ``noisy_folder``: noisy recordings without references, the unlabeled
  in-domain mixtures RemixIT adapts to (``noisy_train.csv``,
  ``noisy_valid.csv``: ``ID, duration, mix_wav``).
* ``clean_folder`` and ``noise_folder`` (optional): isolated speech and
  noise to pre-train a supervised teacher.  Mixtures are synthesised once,
  deterministically from ``seed``, at SNRs drawn from ``snr_range``
  (``supervised_train.csv``, ``supervised_valid.csv``), and the noise gets a
  manifest of its own (``noise.csv``) for MixIT or Eq. 17 of RemixIT.
* ``test_folder`` (optional): ``noisy/`` and ``clean/`` subfolders with
  files of the same names, for evaluation (``test.csv``).

All audio must be mono at ``sample_rate``; files are checked as they are
listed, so a bad file is named before any training starts.

Command line::

    python -m speechbrain_remix.prepare.folders --data_folder out \\
        --noisy_folder my_noisy_recordings
"""

import argparse
import logging
import os

import numpy as np
from tqdm import tqdm

from speechbrain_remix.data import DataError, read_audio, write_manifest
from speechbrain_remix.prepare.common import (
    already_prepared,
    list_audio,
    mark_prepared,
)
from speechbrain_remix.prepare.mixing import add_noise, write_mixture

logger = logging.getLogger(__name__)


def _split(items, valid_fraction, rng):
    order = rng.permutation(len(items))
    n_valid = max(1, int(round(valid_fraction * len(items))))
    if len(items) <= n_valid:
        raise DataError(f"need more than {n_valid} files to hold out "
                        f"{valid_fraction:.0%} for validation")
    return ([items[i] for i in order[n_valid:]],
            [items[i] for i in order[:n_valid]])


def prepare_folders(
    data_folder,
    noisy_folder=None,
    clean_folder=None,
    noise_folder=None,
    test_folder=None,
    sample_rate=16000,
    valid_fraction=0.1,
    n_mixtures=1000,
    snr_range=(-2.0, 20.0),
    seed=1234,
    skip_prep=False,
):
    """Writes the manifests described in the module docstring.

    Arguments
    ---------
    data_folder : str
        Output folder for manifests and synthesised mixtures.
    noisy_folder, clean_folder, noise_folder, test_folder : str, optional
        Input folders (see the module docstring).
    sample_rate : int
        Rate every file must have.
    valid_fraction : float
        Share of files held out for validation.
    n_mixtures : int
        Supervised mixtures to synthesise from clean speech and noise.
    snr_range : tuple of float
        SNR range (dB) of the synthesised mixtures.
    seed : int
        Seed of the splits and the synthesis.
    skip_prep : bool
        Do nothing.
    """
    if skip_prep:
        return
    options = {k: v for k, v in locals().items() if k != "skip_prep"}
    options["snr_range"] = list(snr_range)
    if already_prepared(data_folder, options, {}):
        logger.info("%s already prepared, skipping", data_folder)
        return
    if not (noisy_folder or clean_folder or test_folder):
        raise DataError("give at least one of noisy_folder, clean_folder "
                        "(with noise_folder) or test_folder")
    os.makedirs(data_folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    fields = ["ID", "duration", "mix_wav"]
    if noisy_folder:
        train, valid = _split(list_audio(noisy_folder, sample_rate),
                              valid_fraction, rng)
        for name, items in (("noisy_train", train), ("noisy_valid", valid)):
            write_manifest(os.path.join(data_folder, f"{name}.csv"),
                           [_row(uid, sec, mix_wav=p)
                            for uid, p, sec in items], fields)
    if clean_folder:
        if not noise_folder:
            raise DataError("clean_folder needs noise_folder to synthesise "
                            "mixtures for a supervised teacher")
        noise = list_audio(noise_folder, sample_rate)
        write_manifest(os.path.join(data_folder, "noise.csv"),
                       [_row(uid, sec, noise_wav=p) for uid, p, sec in noise],
                       ["ID", "duration", "noise_wav"])
        clean = list_audio(clean_folder, sample_rate)
        rows = _synthesise(clean, noise, data_folder, n_mixtures, snr_range,
                           sample_rate, rng)
        n_valid = max(1, int(round(valid_fraction * len(rows))))
        sup = fields + ["clean_wav", "noise_wav"]
        write_manifest(os.path.join(data_folder, "supervised_train.csv"),
                       rows[n_valid:], sup)
        write_manifest(os.path.join(data_folder, "supervised_valid.csv"),
                       rows[:n_valid], sup)
    if test_folder:
        write_manifest(os.path.join(data_folder, "test.csv"),
                       _pairs(test_folder, sample_rate),
                       fields + ["clean_wav"])
    mark_prepared(data_folder, options)


def _row(uid, seconds, **paths):
    return {"ID": uid, "duration": f"{seconds:.3f}", **paths}


def _pairs(test_folder, sample_rate):
    noisy = list_audio(os.path.join(test_folder, "noisy"), sample_rate)
    clean = {uid: (p, s) for uid, p, s in
             list_audio(os.path.join(test_folder, "clean"), sample_rate)}
    rows = []
    for uid, path, seconds in noisy:
        if uid not in clean:
            raise DataError(f"{path}: no clean reference of the same name in"
                            f" {os.path.join(test_folder, 'clean')}")
        if abs(clean[uid][1] - seconds) > 1e-3:
            raise DataError(f"{path}: length differs from its clean "
                            "reference; the pair must be aligned")
        rows.append(_row(uid, seconds, mix_wav=path, clean_wav=clean[uid][0]))
    return rows


def _synthesise(clean, noise, data_folder, n_mixtures, snr_range,
                sample_rate, rng):
    """Random speech + random noise excerpt at a random SNR, ``n_mixtures``
    times."""
    rows = []
    for k in tqdm(range(n_mixtures), desc="synthesising mixtures"):
        _, speech_path, _ = clean[rng.integers(len(clean))]
        _, noise_path, _ = noise[rng.integers(len(noise))]
        speech = read_audio(speech_path, sample_rate).numpy()
        wav = read_audio(noise_path, sample_rate).numpy()
        mix, wav = add_noise(speech, wav, snr_range, rng)
        uid = f"mix{k:06d}"
        rows.append(_row(uid, len(speech) / sample_rate, **write_mixture(
            data_folder, "mixtures", uid, speech, wav, mix, sample_rate)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_folder", required=True)
    for name in ("noisy_folder", "clean_folder", "noise_folder",
                 "test_folder"):
        parser.add_argument(f"--{name}")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--valid_fraction", type=float, default=0.1)
    parser.add_argument("--n_mixtures", type=int, default=1000)
    parser.add_argument("--snr_range", type=float, nargs=2,
                        default=(-2.0, 20.0))
    parser.add_argument("--seed", type=int, default=1234)
    prepare_folders(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
