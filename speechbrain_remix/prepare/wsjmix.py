"""WSJ-mix: reverberant, noisy two-speaker mixtures simulated from WSJ0/WSJ1
speech and CHiME-3 noise (Sec. 3.1 of Saijo & Ogawa, 2023).

Expected inputs (WSJ converted from SPHERE to wav beforehand, e.g. with
``sph2pipe -f wav``, keeping the corpus folders)::

    wsj_folder/**/si_tr_s/<spk>/*.wav    training speakers (WSJ0 and WSJ1)
    wsj_folder/**/si_dt_05/<spk>/*.wav   validation speakers
    wsj_folder/**/si_et_05/<spk>/*.wav   test speakers
    chime3_folder/**/backgrounds/*.wav   CHiME-3 background noise

Every mixture is drawn deterministically from ``seed``: two utterances of
different speakers of the split, a shoebox room (sides 5-10 m, height
2.5-4 m) whose reverberation time is uniform in ``rt60_range``, random
positions of the two speakers and the microphone, image sources jittered
by up to ``jitter`` metres (against sweeping echoes), the two reverberant
images at equal power, and a noise excerpt at an SNR uniform in
``snr_range`` relative to the speech.  Simulation with pyroomacoustics
(``pip install pyroomacoustics``), at ``sample_rate`` (8 kHz).

Written to ``save_folder``: ``<split>/{mix,s1,s2,noise}/<ID>.wav`` and the
manifests ``train.csv``, ``valid.csv``, ``test.csv`` with ``mix_wav`` and
``source_wavs`` (``s1;s2;noise``: the reverberant speech images, then the
noise).  The paper's sizes are 33,561 / 982 / 1,332 mixtures.  Every
utterance and noise drawn is checked: NaN or inf samples are an error
naming the file; a draw with a silent one is skipped (so a set can have
fewer mixtures) and the file listed in ``save_folder/skipped_silent.txt``.
"""

import glob
import logging
import os

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from tqdm import tqdm

from speechbrain_remix.data import DataError
from speechbrain_remix.prepare.common import Preparation

logger = logging.getLogger(__name__)
SPLITS = {"train": "si_tr_s", "valid": "si_dt_05", "test": "si_et_05"}
FIELDS = ["ID", "duration", "mix_wav", "source_wavs"]


def speakers(wsj_folder, split_dir):
    """``{speaker: [wav paths]}`` of a WSJ split (all corpora merged)."""
    out = {}
    pattern = os.path.join(wsj_folder, "**", split_dir, "*", "*.wav")
    for path in sorted(glob.glob(pattern, recursive=True)):
        out.setdefault(os.path.basename(os.path.dirname(path)), []).append(
            path)
    if len(out) < 2:
        raise DataError(
            f"{wsj_folder}: fewer than two speakers under **/{split_dir}/; "
            "this must be WSJ0/WSJ1 converted to wav (sph2pipe -f wav)"
        )
    return out


def load(path, sample_rate, prep):
    """The first channel of ``path`` at ``sample_rate``, or None when
    ``prep`` finds the file silent."""
    wav, rate = sf.read(path, dtype="float64", always_2d=True)
    if prep.silent(path, wav):
        return None
    wav = wav[:, 0]
    if rate != sample_rate:
        g = np.gcd(rate, sample_rate)
        wav = resample_poly(wav, sample_rate // g, rate // g)
    return wav


def simulate(utterances, noise, rng, sample_rate, rt60_range, snr_range,
             jitter):
    """One reverberant noisy two-speaker mixture; returns the mixture, the
    two reverberant speech images and the scaled noise."""
    import pyroomacoustics as pra

    room_dim = np.array([rng.uniform(5, 10), rng.uniform(5, 10),
                         rng.uniform(2.5, 4.0)])
    rt60 = rng.uniform(*rt60_range)
    absorption, max_order = pra.inverse_sabine(rt60, room_dim)
    room = pra.ShoeBox(room_dim, fs=sample_rate,
                       materials=pra.Material(absorption),
                       max_order=max_order, use_rand_ism=jitter > 0,
                       max_rand_disp=jitter)
    margin = 0.5
    def position():
        return [rng.uniform(margin, d - margin) for d in room_dim]
    room.add_microphone(position())
    for utt in utterances:
        room.add_source(position(), signal=utt)
    room.compute_rir()
    length = max(len(u) for u in utterances)
    images = []
    for k, utt in enumerate(utterances):
        image = np.convolve(utt, room.rir[0][k])[:length]
        images.append(np.pad(image, (0, length - len(image))))
    images[1] *= np.sqrt(np.sum(images[0] ** 2)
                         / (np.sum(images[1] ** 2) + 1e-12))
    speech = images[0] + images[1]
    if len(noise) < length:
        noise = np.tile(noise, length // len(noise) + 1)
    start = rng.integers(len(noise) - length + 1)
    noise = noise[start : start + length]
    snr = rng.uniform(*snr_range)
    noise = noise * np.sqrt(np.sum(speech ** 2) / (np.sum(noise ** 2) + 1e-12)
                            / 10 ** (snr / 10))
    return speech + noise, images, noise


def prepare_wsjmix(
    wsj_folder,
    chime3_folder,
    save_folder,
    sample_rate=8000,
    n_mixtures=(33561, 982, 1332),
    rt60_range=(0.2, 1.0),
    snr_range=(10.0, 20.0),
    jitter=0.08,
    seed=1234,
    skip_prep=False,
):
    """Simulates WSJ-mix (see the module docstring).

    Arguments
    ---------
    wsj_folder : str
        WSJ0 and WSJ1 as wav files.
    chime3_folder : str
        CHiME-3 data holding ``backgrounds/*.wav``.
    save_folder : str
        Output folder.
    sample_rate : int
        Simulation rate (8 kHz in the paper).
    n_mixtures : sequence of int
        Mixtures for train, valid, test.
    rt60_range, snr_range : sequence of float
        Ranges of the reverberation time (s) and the SNR (dB).
    jitter : float
        Maximal random displacement of image sources (m).
    seed : int
        Seed of every draw.
    skip_prep : bool
        Do nothing.
    """
    if skip_prep:
        return
    options = dict(wsj=os.path.abspath(wsj_folder),
                   chime3=os.path.abspath(chime3_folder),
                   sample_rate=sample_rate, n_mixtures=list(n_mixtures),
                   rt60_range=list(rt60_range), snr_range=list(snr_range),
                   jitter=jitter, seed=seed)
    prep = Preparation(save_folder, options)
    if prep.done():
        return
    noises = sorted(glob.glob(os.path.join(chime3_folder, "**", "backgrounds",
                                           "*.wav"), recursive=True))
    if not noises:
        raise DataError(f"{chime3_folder}: no backgrounds/*.wav; point "
                        "chime3_folder to the CHiME-3 data")
    prep.start()
    rng = np.random.default_rng(seed)
    for (name, split_dir), count in zip(SPLITS.items(), n_mixtures):
        pool = speakers(wsj_folder, split_dir)
        names = sorted(pool)
        rows = []
        for k in tqdm(range(count), desc=f"WSJ-mix {name}", disable=None):
            a, b = rng.choice(len(names), 2, replace=False)
            paths = [pool[names[i]][rng.integers(len(pool[names[i]]))]
                     for i in (a, b)]
            utts = [load(p, sample_rate, prep) for p in paths]
            noise = load(noises[rng.integers(len(noises))], sample_rate,
                         prep)
            if noise is None or any(u is None for u in utts):
                continue  # a silent file: prep lists it, left_out counts
            mix, images, noise = simulate(utts, noise, rng, sample_rate,
                                          rt60_range, snr_range, jitter)
            peak = max(1.0, np.abs(mix).max() / 0.99)
            uid = f"{name}{k:06d}_" + "_".join(
                os.path.splitext(os.path.basename(p))[0] for p in paths)
            files = {}
            for part, wav in (("mix", mix), ("s1", images[0]),
                              ("s2", images[1]), ("noise", noise)):
                rel = os.path.join(name, part, f"{uid}.wav")
                os.makedirs(os.path.join(save_folder, name, part),
                            exist_ok=True)
                sf.write(os.path.join(save_folder, rel),
                         (wav / peak).astype(np.float32), sample_rate,
                         subtype="FLOAT")
                files[part] = os.path.abspath(os.path.join(save_folder, rel))
            rows.append({
                "ID": uid, "duration": f"{len(mix) / sample_rate:.3f}",
                "mix_wav": files["mix"],
                "source_wavs": ";".join(files[p] for p in ("s1", "s2",
                                                           "noise")),
            })
        prep.left_out(f"WSJ-mix {name}", count - len(rows), count)
        prep.write(f"{name}.csv", rows, FIELDS)
    prep.finish()
