"""VCTK + DEMAND (Valentini-Botinhao et al., 2016), the noisy test set used
for zero-shot adaptation (Fig. 4 of RemixIT).

Expected layout (the dataset's zip files unpacked in ``data_folder``)::

    clean_testset_wav/*.wav    48 kHz clean speech
    noisy_testset_wav/*.wav    48 kHz noisy speech, same names

Files are resampled to ``sample_rate`` into ``save_folder/resampled``.
Manifests: ``test.csv`` (mixture + clean, for evaluation) and
``mixtures.csv`` (the same mixtures without references: what zero-shot
adaptation trains on).  Note: the paper counts 586 test mixtures for its
reference [55]; the public test set has 824, all of which are listed
(less any pair with a silent file: such files are left out and listed in
``save_folder/skipped_silent.txt``; NaN or inf samples are an error).
"""

import logging
import os

from speechbrain_remix.data import DataError
from speechbrain_remix.prepare.common import Preparation, list_audio

logger = logging.getLogger(__name__)


def prepare_vctk(data_folder, save_folder, sample_rate=16000,
                 skip_prep=False):
    """Writes ``test.csv`` and ``mixtures.csv`` (see the module docstring).

    Arguments
    ---------
    data_folder : str
        Folder holding ``clean_testset_wav`` and ``noisy_testset_wav``.
    save_folder : str
        Where manifests and resampled files go.
    sample_rate : int
        Target rate.
    skip_prep : bool
        Do nothing.
    """
    if skip_prep:
        return
    options = dict(data_folder=os.path.abspath(data_folder),
                   sample_rate=sample_rate)
    prep = Preparation(save_folder, options)
    if prep.done():
        return
    folders = {k: os.path.join(data_folder, f"{k}_testset_wav")
               for k in ("clean", "noisy")}
    missing = [f for f in folders.values() if not os.path.isdir(f)]
    if missing:
        raise DataError(
            f"{data_folder}: not the VCTK-DEMAND (Valentini) data; missing "
            f"{', '.join(missing)}. Unpack clean_testset_wav.zip and "
            "noisy_testset_wav.zip there"
        )
    prep.start()
    resampled = os.path.join(save_folder, "resampled")
    clean = {uid: path for uid, path, _ in list_audio(
        folders["clean"], sample_rate, os.path.join(resampled, "clean"))}
    rows = []
    for uid, path, seconds in list_audio(folders["noisy"], sample_rate,
                                         os.path.join(resampled, "noisy")):
        if uid not in clean:
            raise DataError(f"{path}: no clean file of the same name in "
                            f"{folders['clean']}")
        rows.append({"ID": uid, "duration": f"{seconds:.3f}",
                     "mix_wav": path, "clean_wav": clean[uid]})
    rows = prep.write("test.csv", rows,
                      ["ID", "duration", "mix_wav", "clean_wav"])
    prep.write("mixtures.csv", rows, ["ID", "duration", "mix_wav"])
    prep.finish()
