"""WHAM! (WSJ0 speech + WHAM! noise), single-speaker enhancement version.

The WHAM! generation scripts write, for each split ``tr``, ``cv``, ``tt``::

    wav16k/min/<split>/mix_single/*.wav   s1 + noise (about -1.3 dB SNR)
    wav16k/min/<split>/s1/*.wav           the speaker (clean reference)
    wav16k/min/<split>/noise/*.wav        the noise

``data_folder`` is the folder holding ``wav16k`` (or ``wav8k``, which is
resampled).  Manifests written to ``save_folder``: ``train.csv`` (``tr``),
``valid.csv`` (``cv``), ``test.csv`` (``tt``), ``train_mix80.csv`` /
``train_noise20.csv`` (mixtures and in-domain noise, Table II) and
``noise.csv`` (every training noise, out-of-domain noise for others).
Every file is checked: NaN or inf samples are an error naming it; a row
with a silent file is left out and the file listed in
``save_folder/skipped_silent.txt``.
"""

import logging
import os

from speechbrain_remix.data import DataError
from speechbrain_remix.prepare.common import (
    NOISE_FIELDS,
    Preparation,
    list_audio,
)

logger = logging.getLogger(__name__)
FIELDS = ["ID", "duration", "mix_wav", "clean_wav", "noise_wav"]
SPLITS = {"train": "tr", "valid": "cv", "test": "tt"}
PARTS = {"mix_wav": "mix_single", "clean_wav": "s1", "noise_wav": "noise"}


def wham_split_folder(data_folder, split, mode="min"):
    """``wav16k/<mode>/<split>`` (else ``wav8k``), or a :class:`DataError`
    naming what is missing when ``data_folder`` is not WHAM!."""
    for rate in ("wav16k", "wav8k"):
        folder = os.path.join(data_folder, rate, mode, split)
        if all(os.path.isdir(os.path.join(folder, p))
               for p in PARTS.values()):
            return folder
    raise DataError(
        f"{data_folder}: not the generated WHAM! data; expected "
        f"wav16k/{mode}/{split}/{{mix_single,s1,noise}}. Generate it with "
        "the WHAM! scripts (create_wham_from_scratch.py) and point "
        "data_folder to their output"
    )


def prepare_wham(data_folder, save_folder, sample_rate=16000, mode="min",
                 noise_fraction=0.2, seed=1234, skip_prep=False):
    """Writes the WHAM! manifests described in the module docstring.

    Arguments
    ---------
    data_folder : str
        Output folder of the WHAM! generation scripts.
    save_folder : str
        Where manifests (and resampled files) go.
    sample_rate : int
        Target rate (8 kHz data is resampled).
    mode : str
        ``min`` (the mixtures end with the shorter source) or ``max``.
    noise_fraction : float
        Share of training rows whose noise forms ``train_noise20.csv``.
    seed : int
        Recorded for the split (rows keep WHAM!'s order).
    skip_prep : bool
        Do nothing.
    """
    if skip_prep:
        return
    options = dict(data_folder=os.path.abspath(data_folder),
                   sample_rate=sample_rate, mode=mode,
                   noise_fraction=noise_fraction, seed=seed)
    prep = Preparation(save_folder, options)
    if prep.done():
        return
    folders = {name: wham_split_folder(data_folder, split, mode)
               for name, split in SPLITS.items()}
    prep.start()
    rows = {name: split_rows(folders[name], sample_rate,
                             os.path.join(save_folder, "resampled", split))
            for name, split in SPLITS.items()}
    train = prep.write_splits(rows["train"], rows["valid"], FIELDS,
                              noise_fraction)
    prep.write("test.csv", rows["test"], FIELDS)
    prep.write("noise.csv", [{"ID": r["ID"], "duration": r["duration"],
                              "noise_wav": r["noise_wav"]} for r in train],
               NOISE_FIELDS)
    prep.finish()


def split_rows(folder, sample_rate, resampled):
    """One row per ``mix_single`` file with its ``s1`` and ``noise``."""
    parts = {
        key: {uid: (path, sec) for uid, path, sec in list_audio(
            os.path.join(folder, sub), sample_rate,
            os.path.join(resampled, sub))}
        for key, sub in PARTS.items()
    }
    rows = []
    for uid, (path, seconds) in sorted(parts["mix_wav"].items()):
        row = {"ID": uid, "duration": f"{seconds:.3f}", "mix_wav": path}
        for key in ("clean_wav", "noise_wav"):
            if uid not in parts[key]:
                raise DataError(f"{path}: no {PARTS[key]}/{uid} file beside"
                                " it; the WHAM! generation is incomplete")
            row[key] = parts[key][uid][0]
        rows.append(row)
    return rows
