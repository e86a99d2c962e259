"""Manifests for your own recordings.

* ``noisy_folder``: noisy recordings without references, the unlabeled
  in-domain mixtures RemixIT adapts to (``noisy_train.csv``,
  ``noisy_valid.csv``: ``ID, duration, mix_wav``).  With ``test_fraction``
  and no ``test_folder``, a share of them is held out for evaluation with
  reference-free metrics (``noisy_test.csv``; ``eval_metrics: dnsmos``).
* ``noise_folder`` (optional): isolated noise, listed in ``noise.csv``
  (``ID, duration, noise_wav``) for MixIT, Eq. 17 of RemixIT, or as the
  training noise of pseudo speech enhancement (your own speaker needs only
  noisy recordings and this noise; no clean speech).
* ``clean_folder`` (optional, with ``noise_folder``): isolated speech to
  pre-train a supervised teacher.  Mixtures of it with the noise are
  synthesised once, deterministically from ``seed``, at SNRs drawn from
  ``snr_range`` (``supervised_train.csv``, ``supervised_valid.csv``; with
  ``test_fraction`` and no ``test_folder``, ``supervised_test.csv`` too:
  held-out mixtures with their references).
* ``test_folder`` (optional): ``noisy/`` and ``clean/`` subfolders with
  files of the same names, for evaluation (``test.csv``).

All audio must be mono at ``sample_rate``.  Every file is checked before
any training starts: a bad header, or NaN/inf samples, is an error naming
the file; a silent file is left out, counted, and listed in
``data_folder/skipped_silent.txt``.

Command line::

    python -m speechbrain_remix.prepare.folders --data_folder out \\
        --noisy_folder my_noisy_recordings
"""

import argparse
import logging
import os

import numpy as np
from tqdm import tqdm

from speechbrain_remix.data import DataError, read_audio
from speechbrain_remix.prepare.common import (
    NOISE_FIELDS,
    Preparation,
    list_audio,
    run_command,
)
from speechbrain_remix.prepare.mixing import add_noise, write_mixture

logger = logging.getLogger(__name__)
FIELDS = ["ID", "duration", "mix_wav"]
# RemixIT remixes the mixtures of a batch with each other: a validation
# set of one file gives a batch of one, so hold out at least two, and
# keep at least two for training.
MIN_SPLIT = 2
MIN_RECORDINGS = 3


def hold_out(rows, test_fraction, rng, what):
    """Rows held out for testing before the training/validation split:
    ``test_fraction`` of them, at least one, and never so many that fewer
    than five remain (two to train, two to validate and remix, one test).

    Arguments
    ---------
    rows : list
        What to split.
    test_fraction : float
        Share held out for testing (0: none, and no draw is made, so the
        other splits are those of a run without a test share).
    rng : numpy.random.Generator
        Draws the held-out rows.
    what : str
        Names the rows in messages (e.g. their folder).

    Returns
    -------
    rest, test : list

    Example
    -------
    >>> rest, test = hold_out(list(range(20)), 0.1,
    ...                       np.random.default_rng(0), "x")
    >>> len(rest), len(test), sorted(rest + test) == list(range(20))
    (18, 2, True)
    """
    if not test_fraction:
        return list(rows), []
    n = len(rows)
    n_test = max(1, int(round(test_fraction * n)))
    need = 2 * MIN_SPLIT  # left for training and validation
    if n - n_test < need:
        raise DataError(
            f"{what}: holding out {test_fraction:.0%} of {n} usable "
            f"recording(s) for testing leaves {n - n_test}, fewer than "
            f"{need} (two to train, two to validate); add recordings, lower "
            "test_fraction, or set test_fraction: 0 and test_csv: null (the "
            "run is then not evaluated)")
    order = rng.permutation(n)
    held = set(order[:n_test].tolist())
    # both lists keep the folder's (sorted) order
    return ([r for i, r in enumerate(rows) if i not in held],
            [r for i, r in enumerate(rows) if i in held])


def split(rows, valid_fraction, rng, what, skipped=0):
    """Random training and validation rows, ``valid_fraction`` of them
    held out, but at least two whenever there are four rows or more.

    Arguments
    ---------
    rows : list
        What to split (at least three).
    valid_fraction : float
        Share held out for validation.
    rng : numpy.random.Generator
        Draws the split.
    what : str
        Names the rows in messages (e.g. their folder).
    skipped : int
        Rows already left out as silent, for the message when too few
        remain.

    Returns
    -------
    train, valid : list

    Example
    -------
    >>> train, valid = split(list(range(12)), 0.1,
    ...                      np.random.default_rng(0), "x")
    >>> len(train), len(valid)
    (10, 2)
    """
    n = len(rows)
    if n < MIN_RECORDINGS:
        silent = f" ({skipped} silent one(s) left out)" if skipped else ""
        raise DataError(
            f"{what}: {n} usable recording(s){silent}, need at least "
            f"{MIN_RECORDINGS} (remixing needs two mixtures per batch, and "
            "one more is held out for validation); add recordings"
        )
    n_valid = max(1, int(round(valid_fraction * n)))
    if n_valid < MIN_SPLIT <= n - MIN_SPLIT:
        logger.info("%s: %d files held out for validation instead of %d "
                    "(%.0f%%): a validation batch needs two mixtures to "
                    "remix", what, MIN_SPLIT, n_valid, 100 * valid_fraction)
        n_valid = MIN_SPLIT
    if n - n_valid < MIN_SPLIT:
        raise DataError(f"{what}: holding out {valid_fraction:.0%} of {n} "
                        f"for validation leaves fewer than {MIN_SPLIT} for "
                        "training; lower valid_fraction")
    order = rng.permutation(n)
    return ([rows[i] for i in order[n_valid:]],
            [rows[i] for i in order[:n_valid]])


def prepare_folders(
    data_folder,
    noisy_folder=None,
    clean_folder=None,
    noise_folder=None,
    test_folder=None,
    sample_rate=16000,
    valid_fraction=0.1,
    test_fraction=0.0,
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
        Input folders (see the module docstring); ``noise_folder`` alone
        gives ``noise.csv``, with ``clean_folder`` supervised mixtures too.
    sample_rate : int
        Rate every file must have.
    valid_fraction : float
        Share of files held out for validation (at least two files when
        there are four or more: RemixIT remixes within a batch).
    test_fraction : float
        Without ``test_folder``: share of the noisy recordings (and of the
        synthesised mixtures) held out for testing first, at least one
        (``noisy_test.csv``, ``supervised_test.csv``); 0: none.  A folder
        too small to keep five others is an error.
    n_mixtures : int
        Supervised mixtures to synthesise from clean speech and noise
        (fewer when a noise excerpt is silent: such mixtures are skipped).
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
    prep = Preparation(data_folder, options)
    if prep.done():
        return
    if not (noisy_folder or noise_folder or clean_folder or test_folder):
        raise DataError("give at least one of noisy_folder, noise_folder, "
                        "clean_folder (with noise_folder) or test_folder")
    if clean_folder and not noise_folder:
        raise DataError("clean_folder needs noise_folder to synthesise "
                        "mixtures for a supervised teacher")
    prep.start()
    rng = np.random.default_rng(seed)
    # references, when given, are the test set; else a held-out share
    held_out = 0.0 if test_folder else test_fraction
    if noisy_folder:
        listed = _rows(noisy_folder, sample_rate, "mix_wav")
        noisy = prep.screen(listed, noisy_folder)
        noisy, test = hold_out(noisy, held_out, rng, noisy_folder)
        train, valid = split(noisy, valid_fraction, rng, noisy_folder,
                             skipped=len(listed) - len(noisy) - len(test))
        prep.write("noisy_train.csv", train, FIELDS)
        prep.write("noisy_valid.csv", valid, FIELDS)
        if test:
            prep.write("noisy_test.csv", test, FIELDS)
    if noise_folder:
        noise = prep.write("noise.csv", _rows(noise_folder, sample_rate,
                                              "noise_wav"), NOISE_FIELDS)
    if clean_folder:
        clean = prep.screen(_rows(clean_folder, sample_rate, "clean_wav"),
                            clean_folder)
        mixtures = prep.screen(
            _synthesise(clean, noise, data_folder, n_mixtures, snr_range,
                        sample_rate, rng), "synthesised mixtures")
        what = f"{data_folder}/mixtures"
        mixtures, test = hold_out(mixtures, held_out, rng, what)
        train, valid = split(mixtures, valid_fraction, rng, what)
        sup = FIELDS + ["clean_wav", "noise_wav"]
        prep.write("supervised_train.csv", train, sup)
        prep.write("supervised_valid.csv", valid, sup)
        if test:
            prep.write("supervised_test.csv", test, sup)
    if test_folder:
        prep.write("test.csv", _pairs(test_folder, sample_rate),
                   FIELDS + ["clean_wav"])
    prep.finish()


def _row(uid, seconds, **paths):
    return {"ID": uid, "duration": f"{seconds:.3f}", **paths}


def _rows(folder, sample_rate, key):
    return [_row(uid, sec, **{key: path})
            for uid, path, sec in list_audio(folder, sample_rate)]


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
    times (``clean``, ``noise``: screened manifest rows)."""
    rows = []
    for k in tqdm(range(n_mixtures), desc="synthesising mixtures",
                  disable=None):
        speech_row = clean[rng.integers(len(clean))]
        noise_row = noise[rng.integers(len(noise))]
        speech = read_audio(speech_row["clean_wav"], sample_rate).numpy()
        wav = read_audio(noise_row["noise_wav"], sample_rate).numpy()
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
    parser.add_argument("--test_fraction", type=float, default=0.0)
    parser.add_argument("--n_mixtures", type=int, default=1000)
    parser.add_argument("--snr_range", type=float, nargs=2,
                        default=(-2.0, 20.0))
    parser.add_argument("--seed", type=int, default=1234)
    run_command(parser, prepare_folders, argv)


if __name__ == "__main__":
    main()
