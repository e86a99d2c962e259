"""FUSS (Free Universal Sound Separation), anechoic version, for the
universal sound separation experiments of Saijo & Ogawa (2023, Table 2).

Expected layout (the released ``fuss_dev`` folder)::

    ssdata/{train,validation,eval}/example00000.wav
    ssdata/{train,validation,eval}/example00000_sources/*.wav

Every mixture (10 s, 16 kHz) holds one to four sources (``background0``,
``foreground0-2``).  Manifests (``train.csv``, ``valid.csv``,
``test.csv``) list ``mix_wav`` and the references as ``source_wavs``
(``;``-separated): training from scratch reads only the mixtures; the
supervised counterparts and the FUSS metrics read the references.
Every file is checked: NaN or inf samples are an error naming it; a
silent reference source is left out of ``source_wavs`` (what an absent
source means in FUSS: the slots are zero-padded), a silent mixture's row
is left out, and the silent files are listed in
``save_folder/skipped_silent.txt``.
"""

import glob
import logging
import os

from speechbrain_remix.data import DataError
from speechbrain_remix.prepare.common import Preparation, list_audio

logger = logging.getLogger(__name__)
SPLITS = {"train": "train", "valid": "validation", "test": "eval"}
FIELDS = ["ID", "duration", "mix_wav", "source_wavs"]


def prepare_fuss(data_folder, save_folder, sample_rate=16000,
                 subset="ssdata", skip_prep=False):
    """Writes the FUSS manifests described in the module docstring.

    Arguments
    ---------
    data_folder : str
        The ``fuss_dev`` folder (holding ``ssdata``).
    save_folder : str
        Where manifests go.
    sample_rate : int
        FUSS' rate (16 kHz).
    subset : str
        ``ssdata`` (anechoic, the paper's) or ``ssdata_reverb``.
    skip_prep : bool
        Do nothing.
    """
    if skip_prep:
        return
    options = dict(data_folder=os.path.abspath(data_folder),
                   sample_rate=sample_rate, subset=subset)
    prep = Preparation(save_folder, options)
    if prep.done():
        return
    folders = {name: os.path.join(data_folder, subset, split)
               for name, split in SPLITS.items()}
    for folder in folders.values():
        if not os.path.isdir(folder):
            raise DataError(f"{data_folder}: not FUSS; {folder} is missing "
                            "(point data_folder to fuss_dev)")
    prep.start()
    for name, folder in folders.items():
        rows = []
        for uid, path, seconds in list_audio_top(folder, sample_rate):
            sources = sorted(glob.glob(os.path.join(folder, f"{uid}_sources",
                                                    "*.wav")))
            if not sources:
                raise DataError(f"{path}: no {uid}_sources/*.wav beside it")
            rows.append({"ID": uid, "duration": f"{seconds:.3f}",
                         "mix_wav": path, "source_wavs": ";".join(sources)})
        prep.write(f"{name}.csv", rows, FIELDS, sparse_sources=True)
    prep.finish()


def list_audio_top(folder, sample_rate):
    """The mixtures of a split: its top-level wav files only."""
    return [item for item in list_audio(folder, sample_rate)
            if "_sources" not in item[0]]
