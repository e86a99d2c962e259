"""LibriFSD50K: LibriSpeech speech mixed with FSD50K non-human sounds
(RemixIT Section III-A, generated as in its reference [30]).

Expected inputs::

    librispeech_folder/{train-clean-360,dev-clean,test-clean}/<spk>/<ch>/*.flac
    fsd50k_folder/FSD50K.dev_audio/*.wav
    fsd50k_folder/FSD50K.eval_audio/*.wav
    fsd50k_folder/FSD50K.ground_truth/{dev.csv,eval.csv}

Clips carrying any label of AudioSet's *Human sounds* branch (speech,
singing, laughter, footsteps, applause, ...; ``HUMAN_LABELS``) are
excluded.  Training mixtures use FSD50K dev clips of its ``train`` split,
validation its ``val`` split, test the eval set.  Every mixture is drawn
deterministically from ``seed``: an utterance, a clip, a clip offset and
an SNR uniform in ``snr_range`` (the paper gives no SNR; the default
[0, 12.5] dB matches its reported mean input SI-SDR of 6.3 dB).  Mixtures
are virtual (synthesised when read), only the chosen FSD50K clips are
resampled to 16 kHz into ``save_folder/resampled``.  Manifests:
``train.csv``, ``valid.csv``, ``test.csv``, ``train_mix80.csv``,
``train_noise20.csv``, ``noise.csv`` (the training clips).  Every
utterance and clip a mixture uses is checked: NaN or inf samples are an
error naming the file; a mixture with a silent one is left out (so a set
can have fewer than ``n_mixtures``) and the file listed in
``save_folder/skipped_silent.txt``.
"""

import csv
import logging
import os

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speechbrain_remix.data import DataError
from speechbrain_remix.prepare.common import (
    NOISE_FIELDS,
    Preparation,
    find_audio,
    resample,
)

logger = logging.getLogger(__name__)
FIELDS = ["ID", "duration", "clean_wav", "noise_wav", "noise_start", "snr"]
HUMAN_LABELS = {
    "Human_voice", "Speech", "Male_speech_and_man_speaking",
    "Female_speech_and_woman_speaking", "Child_speech_and_kid_speaking",
    "Conversation", "Speech_synthesizer", "Whispering", "Screaming",
    "Shout", "Yell", "Laughter", "Giggle", "Chuckle_and_chortle",
    "Crying_and_sobbing", "Sigh", "Singing", "Male_singing",
    "Female_singing", "Respiratory_sounds", "Breathing", "Gasp", "Cough",
    "Sneeze", "Burping_and_eructation", "Fart", "Chewing_and_mastication",
    "Human_group_actions", "Applause", "Cheering", "Chatter", "Crowd",
    "Clapping", "Hands", "Finger_snapping", "Walk_and_footsteps", "Run",
}


def fsd50k_clips(fsd50k_folder):
    """``{split: [(fname, path)]}`` of the non-human clips, ``split`` in
    ``train``, ``val`` (dev set) and ``eval``."""
    gt = os.path.join(fsd50k_folder, "FSD50K.ground_truth")
    needed = [os.path.join(gt, "dev.csv"), os.path.join(gt, "eval.csv"),
              os.path.join(fsd50k_folder, "FSD50K.dev_audio"),
              os.path.join(fsd50k_folder, "FSD50K.eval_audio")]
    missing = [p for p in needed if not os.path.exists(p)]
    if missing:
        raise DataError(f"{fsd50k_folder}: not FSD50K; missing "
                        f"{', '.join(missing)}")
    clips = {"train": [], "val": [], "eval": []}
    for part in ("dev", "eval"):
        with open(os.path.join(gt, f"{part}.csv"), newline="") as f:
            for row in csv.DictReader(f):
                if HUMAN_LABELS & set(row["labels"].split(",")):
                    continue
                split = row.get("split", "eval") if part == "dev" else "eval"
                path = os.path.join(fsd50k_folder, f"FSD50K.{part}_audio",
                                    f"{row['fname']}.wav")
                clips[split].append((row["fname"], path))
    return clips


def librispeech_utterances(folder, subset):
    """``[(ID, path, seconds)]`` of a LibriSpeech subset."""
    root = os.path.join(folder, subset)
    if not os.path.isdir(root):
        raise DataError(f"{folder}: not LibriSpeech or {subset} missing "
                        f"({root} not found)")
    out = []
    for path in find_audio(root):
        info = sf.info(path)
        out.append((os.path.splitext(os.path.basename(path))[0], path,
                    info.frames / info.samplerate))
    return out


def prepare_librifsd50k(
    librispeech_folder,
    fsd50k_folder,
    save_folder,
    sample_rate=16000,
    subsets=("train-clean-360", "dev-clean", "test-clean"),
    n_mixtures=(45602, 3000, 3081),
    snr_range=(0.0, 12.5),
    noise_fraction=0.2,
    seed=1234,
    skip_prep=False,
):
    """Generates the LibriFSD50K manifests described in the module
    docstring.

    Arguments
    ---------
    librispeech_folder, fsd50k_folder : str
        Dataset roots.
    save_folder : str
        Manifests and resampled clips.
    sample_rate : int
        LibriSpeech's rate (16 kHz); FSD50K clips are resampled to it.
    subsets : sequence of str
        LibriSpeech subsets for train, valid and test.
    n_mixtures : sequence of int
        Mixtures for train, valid and test (45,602 and 3,081 in the paper;
        utterances are reused when a subset has fewer).
    snr_range : sequence of float
        SNR range in dB.
    noise_fraction : float
        Share of training mixtures whose noise forms ``train_noise20.csv``.
    seed : int
        Seed of every draw.
    skip_prep : bool
        Do nothing.
    """
    if skip_prep:
        return
    options = dict(librispeech=os.path.abspath(librispeech_folder),
                   fsd50k=os.path.abspath(fsd50k_folder),
                   sample_rate=sample_rate, subsets=list(subsets),
                   n_mixtures=list(n_mixtures), snr_range=list(snr_range),
                   noise_fraction=noise_fraction, seed=seed)
    prep = Preparation(save_folder, options)
    if prep.done():
        return
    clips = fsd50k_clips(fsd50k_folder)
    prep.start()
    rng = np.random.default_rng(seed)
    rows = {}
    for name, subset, clip_split, count in zip(
        ("train", "valid", "test"), subsets, ("train", "val", "eval"),
        n_mixtures,
    ):
        utterances = librispeech_utterances(librispeech_folder, subset)
        if not clips[clip_split]:
            raise DataError(f"{fsd50k_folder}: no non-human clip in the "
                            f"FSD50K {clip_split} split")
        rows[name] = _mixtures(utterances, clips[clip_split], count,
                               snr_range, sample_rate, rng,
                               os.path.join(save_folder, "resampled"), name)
    train = prep.write_splits(rows["train"], rows["valid"], FIELDS,
                              noise_fraction)
    prep.write("test.csv", rows["test"], FIELDS)
    used = {r["noise_wav"] for r in train}
    prep.write("noise.csv",
               [{"ID": os.path.basename(p)[:-4], "duration": "%.3f" %
                 (sf.info(p).frames / sample_rate), "noise_wav": p}
                for p in sorted(used)], NOISE_FIELDS)
    prep.finish()


def _mixtures(utterances, clips, count, snr_range, sample_rate, rng,
              resampled, name):
    order = np.concatenate([rng.permutation(len(utterances))
                            for _ in range(count // len(utterances) + 1)])
    rows = []
    for k in tqdm(order[:count], desc=f"LibriFSD50K {name}", disable=None):
        uid, path, seconds = utterances[k]
        fname, clip = clips[rng.integers(len(clips))]
        if not os.path.isfile(clip):
            raise DataError(f"{clip}: listed in the FSD50K ground truth but "
                            "missing; re-download FSD50K")
        clip, frames = resample(clip, os.path.join(resampled, f"{fname}.wav"),
                                sample_rate)
        rows.append({
            "ID": f"{uid}_{fname}_{len(rows)}",
            "duration": f"{seconds:.3f}", "clean_wav": path,
            "noise_wav": clip, "noise_start": int(rng.integers(frames)),
            "snr": f"{rng.uniform(*snr_range):.3f}",
        })
    return rows
