"""What every data preparation shares: listing and checking audio files
(resampling them where asked), and skipping work that is already done."""

import glob
import json
import os

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from tqdm import tqdm

from speechbrain_remix.data import DataError, check_manifest, write_manifest

EXTENSIONS = (".wav", ".flac", ".ogg")
DONE_FILE = "prepare_done.json"
NOISE_FIELDS = ["ID", "duration", "noise_wav"]


def find_audio(folder):
    """Sorted audio files under ``folder`` (recursive); a clear error when
    the folder is missing or holds none."""
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: folder not found")
    files = sorted(
        p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
        if p.lower().endswith(EXTENSIONS)
    )
    if not files:
        raise DataError(f"{folder}: no .wav/.flac/.ogg files found; point "
                        "the option to the folder holding the recordings")
    return files


def list_audio(folder, sample_rate, resample_folder=None):
    """Audio files under ``folder`` as ``(ID, path, seconds)``.

    Each file is checked to be mono, not empty and at ``sample_rate``.
    With ``resample_folder``, files at another rate are resampled into it
    (once: an existing resampled file is reused); without, they are an
    error naming the file.  IDs are the paths relative to ``folder``
    without extension, ``/`` replaced by ``_``.

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> sf.write(os.path.join(root, "a.wav"), np.zeros(480), 48000)
    >>> uid, path, sec = list_audio(root, 16000, os.path.join(root, "r"))[0]
    >>> uid, sf.info(path).samplerate, sec
    ('a', 16000, 0.01)
    """
    items = []
    for path in tqdm(find_audio(folder), desc=f"checking {folder}",
                     disable=None):
        try:
            info = sf.info(path)
        except Exception as err:
            raise DataError(f"{path}: cannot read audio ({err})") from err
        if info.channels != 1:
            raise DataError(f"{path}: {info.channels} channels, expected "
                            "mono; downmix it (sox in.wav out.wav remix -)")
        if info.frames == 0:
            raise DataError(f"{path}: empty audio file; remove it")
        uid = os.path.splitext(os.path.relpath(path, folder))[0]
        uid = uid.replace(os.sep, "_")
        frames = info.frames
        if info.samplerate != sample_rate:
            if resample_folder is None:
                raise DataError(f"{path}: {info.samplerate} Hz, expected "
                                f"{sample_rate} Hz; resample it (sox in.wav "
                                f"-r {sample_rate} out.wav)")
            path, frames = resample(path, os.path.join(
                resample_folder, f"{uid}.wav"), sample_rate)
        items.append((uid, os.path.abspath(path), frames / sample_rate))
    return items


def resample(path, out_path, sample_rate):
    """Writes ``path`` resampled to ``sample_rate`` (float wav) unless
    already there; returns the new path and its length in samples."""
    if os.path.isfile(out_path):
        return out_path, sf.info(out_path).frames
    wav, rate = sf.read(path, dtype="float64")
    g = np.gcd(rate, sample_rate)
    wav = resample_poly(wav, sample_rate // g, rate // g)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tmp = out_path + ".tmp.wav"
    sf.write(tmp, wav.astype(np.float32), sample_rate, subtype="FLOAT")
    os.replace(tmp, out_path)
    return out_path, len(wav)


def already_prepared(save_folder, options, manifests):
    """True when a run with the same ``options`` completed in
    ``save_folder`` and its ``manifests`` (``{csv name: required audio
    columns}``) still check out: preparation is then skipped."""
    done = os.path.join(save_folder, DONE_FILE)
    if not os.path.isfile(done):
        return False
    with open(done) as f:
        if json.load(f) != json.loads(json.dumps(options)):
            return False
    try:
        for name, required in manifests.items():
            check_manifest(os.path.join(save_folder, name), save_folder,
                           required)
    except DataError:
        return False
    return True


def mark_prepared(save_folder, options):
    """Records that preparation with ``options`` completed."""
    with open(os.path.join(save_folder, DONE_FILE), "w") as f:
        json.dump(options, f, indent=1)


def write_split_manifests(save_folder, train, valid, fields,
                          noise_fraction=0.2):
    """The training manifests every dataset offers: ``train.csv``,
    ``valid.csv``, and the split of Table I of RemixIT for in-domain noise:
    ``train_mix80.csv`` (the mixtures of ``1 - noise_fraction`` of the
    training rows) and ``train_noise20.csv`` (the noise of the others)."""
    n_noise = int(round(noise_fraction * len(train)))
    write_manifest(os.path.join(save_folder, "train.csv"), train, fields)
    write_manifest(os.path.join(save_folder, "valid.csv"), valid, fields)
    write_manifest(os.path.join(save_folder, "train_mix80.csv"),
                   train[n_noise:], fields)
    write_manifest(
        os.path.join(save_folder, "train_noise20.csv"),
        [{"ID": r["ID"] + "_noise", "duration": r["duration"],
          "noise_wav": r["noise_wav"]} for r in train[:n_noise]],
        NOISE_FIELDS,
    )
