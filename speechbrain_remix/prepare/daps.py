"""DAPS (Device And Produced Speech, Mysore 2015) for the latent-space
self-supervised enhancement of Wang et al. (2020): the device recordings of
Table 1 and the street-noise mixtures of Table 2.

Expected layout (``daps.tar.gz`` of Zenodo record 4660670 unpacked;
``data_folder`` is the ``daps`` folder or its parent)::

    clean/<speaker>_<script>_clean.wav                  studio speech
    <device>_<room>/<speaker>_<script>_<device>_<room>.wav  re-recordings

with speakers ``f1``..``f10`` and ``m1``..``m10``, scripts ``script1``..
``script5``, 44.1 kHz (``cleanraw/`` and ``produced/`` are not used).  The
dataset's own alignment script cuts every device recording to its clean
version's length at the offset of the best FFT cross-correlation, so the
two are aligned sample for sample; a residual offset is measured here
again (:func:`estimate_lag`, on the first seconds of speech) and applied.

The split (Sec. 3.2.1: speakers and scripts in disjoint *clean*, *mix*
and *test* segments, males and females evenly distributed, chosen at
random) takes its proportions from the official code (``get_files``:
8 / 8 / 4 of the 20 speakers, 2 / 2 / 1 of the 5 scripts): clean = 4 f +
4 m speakers x 2 scripts (CAE), mix = 4 f + 4 m x 2 other scripts (MAE),
test = 2 f + 2 m x the fifth script.  The official code draws the
speakers without regard to sex; here each sex is drawn separately, as the
paper says.  Everything is deterministic from ``seed``.

Recordings are resampled to ``sample_rate`` and cut into non-overlapping
segments of ``segment_seconds`` (2 s: the official ``LEN``).  A segment is
speech when at least ``min_speech_fraction`` of it is active in the clean
reference; a stretch is noise-only when the clean reference is silent
throughout it (the energy rule of Sec. 2.2: frame energy more than
``-silence_db`` dB below the clean file's loud frames; ``guard_seconds``
kept clear of speech for reverberation).  The official code takes its
noise-only clips from the first 5 s of every recording, the silence
before the reader starts; the energy rule finds that stretch, and any
other long pause, without assuming its length.

Where each number comes from: the split proportions, the 2 s segments
and the 10 street noise files from the official code and Sec. 3.2.2; 16
kHz from the YAMLs (the official code resamples too); 5 and 10 dB from
Table 2; 0 / 30 / 50 % from Tables 1-2.  Our choices, where both are
silent: the validation sets (``valid_fraction`` of the segments, drawn at
random; their noise-only rows come from the same stretches as the
training rows: there are few), the energy rule's -40 dB, 50 % activity,
32 ms frames and 0.25 s guard, and the alignment check.

Manifests in ``save_folder`` (paths absolute; ``<env>`` is each of
``environments``, a name without ``_<env>`` pools them all):

=============================  ============================================
``clean_train/valid.csv``      clean speech of the clean segment (CAE):
                               ``ID, duration, mix_wav, clean_wav,
                               speaker`` (``mix_wav`` = ``clean_wav``)
``noisy_train/valid[_<env>]``  speech segments of the device recordings of
                               the mix segment: ``ID, duration, mix_wav,
                               environment, speaker``
``noise_only[_<env>].csv``     noise-only stretches of those recordings
                               (``ID, duration, noise_wav``; each at least
                               one segment long)
``mix_train/valid[_<env>]``    MAE training data: ``ID, duration, mix_wav,
                               noise_only``, the noisy segments and
                               ``noise_only_share`` of noise-only rows
                               (see :mod:`.noise_only`)
``test[_<env>].csv``           test segment, device recording and aligned
                               clean reference: ``ID, duration, mix_wav,
                               clean_wav, environment, speaker``
=============================  ============================================

With ``street_noise_folder`` (Table 2: the BBC library is not free, any
folder of ambient recordings will do), ``street_n_noise`` of its files
(drawn from ``seed``, listed in ``street_noise_files.txt``; multichannel
files are averaged, as the official code does) are mixed with the clean
speech of the mix and test segments at each SNR of ``street_snrs``, the
noise scaled and the speech untouched; the official code trains one
model per SNR, so every SNR has its own manifests:
``street_noisy_train/valid_<snr>db.csv``, ``street_noise_only_<snr>db.csv``
(the noise files cut into segments, at the level they have in the
mixtures), ``street_mix_train/valid_<snr>db.csv`` (with the noise-only
share) and ``street_test_<snr>db.csv`` (``ID, duration, mix_wav,
clean_wav, noise_wav, speaker``).

Also written: ``split.json`` (speakers and scripts of each segment) and
``alignment.csv`` (the offset applied to each device recording).  Every
file is checked (:class:`~.common.Preparation`): NaN or inf samples are
an error naming the file, silent files are left out and listed in
``skipped_silent.txt``.  The ``*mix_*`` manifests depend only on
``noise_only_share`` and are rewritten on every call, so that one
preparation serves the 0, 30 and 50 % configurations.
"""

import json
import logging
import os
import re
import zlib

import numpy as np
import soundfile as sf
from scipy.signal import correlate, resample_poly
from tqdm import tqdm

from speechbrain_remix.data import DataError, write_manifest
from speechbrain_remix.prepare.common import (
    NOISE_FIELDS,
    Preparation,
    audio_info,
    find_audio,
    resample,
)
from speechbrain_remix.prepare.folders import split
from speechbrain_remix.prepare.mixing import add_noise, write_mixture
from speechbrain_remix.prepare.noise_only import noise_only_manifest

logger = logging.getLogger(__name__)
# Table 1's nine device x room recordings (DAPS has three more:
# ipad_confroom2, ipad_balcony1 and iphone_balcony1)
TABLE1_ENVIRONMENTS = (
    "ipad_livingroom1", "ipad_bedroom1", "ipad_confroom1", "ipad_office1",
    "ipad_office2", "ipadflat_confroom1", "ipadflat_office1",
    "iphone_livingroom1", "iphone_bedroom1",
)
CLEAN_NAME = re.compile(r"^([fm])(\d+)_(script\d+)_clean\.wav$")
SEGMENTS = ("clean", "mix", "test")
FRAME_SECONDS = 0.032  # frames of the energy rule (512 samples at 16 kHz)
LOUD_PERCENTILE = 99  # the clean file's "loud frames" (robust maximum)
ALIGN_SECONDS = 5.0  # speech correlated to measure a device offset
NOISY_FIELDS = ["ID", "duration", "mix_wav", "environment", "speaker"]
TEST_FIELDS = ["ID", "duration", "mix_wav", "clean_wav", "environment",
               "speaker"]
CLEAN_FIELDS = ["ID", "duration", "mix_wav", "clean_wav", "speaker"]
STREET_TEST_FIELDS = ["ID", "duration", "mix_wav", "clean_wav", "noise_wav",
                      "speaker"]


def daps_root(data_folder, environments):
    """The DAPS folder (``data_folder`` or its ``daps``), or a
    :class:`DataError` naming what is missing."""
    for root in (data_folder, os.path.join(data_folder, "daps")):
        if os.path.isdir(os.path.join(root, "clean")):
            break
    missing = [v for v in ("clean", *environments)
               if not os.path.isdir(os.path.join(root, v))]
    if missing:
        found = sorted(d for d in os.listdir(root) if os.path.isdir(
            os.path.join(root, d))) if os.path.isdir(root) else []
        raise DataError(
            f"{data_folder}: not DAPS, or not all of it; missing folder(s) "
            f"{', '.join(missing)} (found: {', '.join(found) or 'none'}). "
            "Download daps.tar.gz (Zenodo record 4660670), unpack it and "
            "point data_folder to its 'daps' folder, or choose "
            "environments among the folders present"
        )
    return root


def split_daps(speakers, scripts, seed, speaker_split=(8, 8, 4),
               script_split=(2, 2, 1)):
    """Speakers and scripts drawn into disjoint clean / mix / test sets.

    Arguments
    ---------
    speakers : list of str
        ``f<N>`` and ``m<N>`` names.
    scripts : list of str
        ``script<N>`` names.
    seed : int
        Seed of the draw.
    speaker_split : tuple of int
        Speakers per set, each even: half of them female, half male.
    script_split : tuple of int
        Scripts per set.

    Returns
    -------
    dict
        ``{set: {"speakers": [...], "scripts": [...]}}`` for ``clean``,
        ``mix`` and ``test``.

    Example
    -------
    >>> spk = [f"{s}{i}" for s in "fm" for i in range(1, 11)]
    >>> sets = split_daps(spk, [f"script{i}" for i in range(1, 6)], 1)
    >>> [len(sets[s]["speakers"]) for s in SEGMENTS]
    [8, 8, 4]
    >>> sum(p[0] == "f" for p in sets["test"]["speakers"])
    2
    """
    if any(n % 2 for n in speaker_split):
        raise DataError(f"speaker_split {list(speaker_split)}: each count "
                        "must be even, half female and half male")
    by_sex = {s: sorted((p for p in speakers if p[0] == s),
                        key=lambda p: int(p[1:])) for s in "fm"}
    need = sum(speaker_split) // 2
    if min(len(v) for v in by_sex.values()) < need or len(scripts) < sum(
            script_split):
        raise DataError(
            f"DAPS has {len(by_sex['f'])} female and {len(by_sex['m'])} "
            f"male speakers and {len(scripts)} scripts in clean/; the split "
            f"needs {need} of each sex and {sum(script_split)} scripts "
            f"(speaker_split={list(speaker_split)}, "
            f"script_split={list(script_split)})")
    rng = np.random.default_rng(seed)
    drawn = {s: [v[i] for i in rng.permutation(len(v))]
             for s, v in by_sex.items()}
    order = [scripts[i] for i in rng.permutation(len(scripts))]
    sets, first, first_script = {}, 0, 0
    for name, n_spk, n_scr in zip(SEGMENTS, speaker_split, script_split):
        half = n_spk // 2
        sets[name] = {
            "speakers": sorted(drawn["f"][first : first + half]) + sorted(
                drawn["m"][first : first + half]),
            "scripts": sorted(order[first_script : first_script + n_scr]),
        }
        first, first_script = first + half, first_script + n_scr
    return sets


def speech_activity(clean, sample_rate, silence_db=-40.0):
    """Per-sample speech activity of a clean recording (Sec. 2.2's energy
    rule): a frame is active when its energy is within ``-silence_db`` dB
    of the file's loud frames (99th percentile of the frame energies).

    Example
    -------
    >>> x = np.r_[np.zeros(1600), np.ones(1600)]
    >>> mask = speech_activity(x, 16000)
    >>> bool(mask[:1536].any()), bool(mask[1600:].all())
    (False, True)
    """
    frame = max(1, int(round(FRAME_SECONDS * sample_rate)))
    n = -(-len(clean) // frame)
    padded = np.zeros(n * frame, dtype=np.float64)
    padded[: len(clean)] = clean
    energy = np.mean(padded.reshape(n, frame) ** 2, axis=1)
    loud = np.percentile(energy, LOUD_PERCENTILE)
    active = energy > loud * 10 ** (silence_db / 10) if loud > 0 else (
        np.zeros(n, dtype=bool))
    return np.repeat(active, frame)[: len(clean)]


def speech_starts(active, length, min_fraction=0.5):
    """Starts of the non-overlapping ``length``-sample segments of which at
    least ``min_fraction`` is active.

    Example
    -------
    >>> speech_starts(np.r_[np.zeros(10, bool), np.ones(10, bool)], 5)
    [10, 15]
    """
    starts = range(0, len(active) - length + 1, length)
    return [s for s in starts if active[s : s + length].mean() >= min_fraction]


def silent_stretches(active, min_length, guard=0):
    """``(start, stop)`` of the inactive stretches at least ``min_length``
    samples long once ``guard`` samples next to speech are left out (a
    stretch at the file's start or end keeps that end).

    Example
    -------
    >>> act = np.r_[np.zeros(30, bool), np.ones(10, bool), np.zeros(8, bool)]
    >>> silent_stretches(act, 5, guard=2)
    [(0, 28), (42, 48)]
    >>> silent_stretches(act, 7, guard=2)
    [(0, 28)]
    """
    edges = np.flatnonzero(np.diff(np.r_[1, active.astype(np.int8), 1]))
    out = []
    for a, b in zip(edges[::2], edges[1::2]):  # runs of inactive samples
        a = a + guard if a > 0 else a
        b = b - guard if b < len(active) else b
        if b - a >= min_length:
            out.append((int(a), int(b)))
    return out


def estimate_lag(reference, recording, onset, max_lag, window):
    """Offset (samples) of ``reference[onset : onset + window]`` in
    ``recording``, searched within ``max_lag``: the peak of their
    cross-correlation (FFT).  Positive: the recording is late.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(4000)
    >>> y = np.r_[np.zeros(7), x[:-7]] + 0.1 * rng.standard_normal(4000)
    >>> estimate_lag(x, y, onset=500, max_lag=50, window=2000)
    7
    """
    # a window with room for every lag on both sides
    first = max(onset, max_lag)
    last = min(first + window, len(reference), len(recording) - max_lag)
    if max_lag <= 0 or last <= first:
        return 0
    score = correlate(recording[first - max_lag : last + max_lag],
                      reference[first:last], mode="valid", method="fft")
    return int(np.argmax(score)) - max_lag


def rng_for(seed, *names):
    """A generator for one purpose: ``seed`` and stable hashes of
    ``names``, so that adding an environment or an SNR leaves the draws of
    the others unchanged."""
    return np.random.default_rng(
        [seed, *(zlib.crc32(str(n).encode()) for n in names)])


def prepare_daps(
    data_folder,
    save_folder,
    sample_rate=16000,
    environments=TABLE1_ENVIRONMENTS,
    segment_seconds=2.0,
    noise_only_share=0.0,
    valid_fraction=0.1,
    speaker_split=(8, 8, 4),
    script_split=(2, 2, 1),
    silence_db=-40.0,
    min_speech_fraction=0.5,
    guard_seconds=0.25,
    max_lag_seconds=0.1,
    street_noise_folder=None,
    street_snrs=(5.0, 10.0),
    street_n_noise=10,
    seed=1234,
    skip_prep=False,
):
    """Writes the DAPS manifests described in the module docstring.

    Arguments
    ---------
    data_folder : str
        The ``daps`` folder (or its parent).
    save_folder : str
        Where manifests, resampled files and segments go.
    sample_rate : int
        Target rate (DAPS is 44.1 kHz).
    environments : tuple of str
        Device x room folders for the mix and test data (Table 1's nine).
    segment_seconds : float
        Length of every segment written (official code: 2 s clips); a
        training crop must not be longer.
    noise_only_share : float
        Share of noise-only rows in the ``*mix_train/valid*`` manifests,
        in ``[0, 1)`` (Tables 1-2: 0, 0.3 or 0.5).
    valid_fraction : float
        Share of the clean and of the noisy segments held out (at
        random, at least two) for validation (our choice: the paper has
        no validation set).
    speaker_split, script_split : tuple of int
        Speakers (even counts, half of each sex) and scripts in the
        clean, mix and test sets (official code: 8/8/4 and 2/2/1).
    silence_db : float
        Energy rule: frames more than ``-silence_db`` dB below the clean
        reference's loud frames are silent.
    min_speech_fraction : float
        Share of a segment that must be active to count as speech.
    guard_seconds : float
        Margin kept between speech and a noise-only stretch.
    max_lag_seconds : float
        Largest device offset searched (0: no alignment).
    street_noise_folder : str, optional
        Ambient recordings for the street-noise experiment (Table 2).
    street_snrs : tuple of float
        SNRs (dB) of the street mixtures.
    street_n_noise : int
        Noise files drawn from ``street_noise_folder`` (paper: 10).
    seed : int
        Seed of the split, the validation sets and the street mixtures.
    skip_prep : bool
        Do nothing.
    """
    if skip_prep:
        return
    if not 0.0 <= noise_only_share < 1.0:
        raise DataError(f"noise_only_share must lie in [0, 1), got "
                        f"{noise_only_share}")
    environments = list(environments)
    options = dict(
        data_folder=os.path.abspath(data_folder),
        sample_rate=sample_rate, environments=environments,
        segment_seconds=segment_seconds, valid_fraction=valid_fraction,
        speaker_split=list(speaker_split), script_split=list(script_split),
        silence_db=silence_db, min_speech_fraction=min_speech_fraction,
        guard_seconds=guard_seconds, max_lag_seconds=max_lag_seconds,
        street_noise_folder=street_noise_folder and os.path.abspath(
            street_noise_folder),
        street_snrs=list(street_snrs), street_n_noise=street_n_noise,
        seed=seed)  # noise_only_share: only the *mix_* manifests, rewritten
    prep = Preparation(save_folder, options)
    if not prep.done():
        root = daps_root(data_folder, environments)
        run = _Run(prep, root, options)
        run.check_files()
        prep.start()
        run.write_clean()
        for env in environments:
            run.write_environment(env)
        run.write_pooled()
        if street_noise_folder:
            run.write_street(street_noise_folder)
        run.write_records()
        prep.finish()
    write_shares(save_folder, noise_only_share, environments,
                 street_snrs if street_noise_folder else (), seed)


def write_shares(save_folder, share, environments=(), street_snrs=(),
                 seed=1234):
    """(Re)writes every ``*mix_train/valid*`` manifest with ``share`` of
    noise-only rows from the prepared noisy and noise-only manifests."""
    names = [("", "")] + [("", f"_{e}") for e in environments] + [
        ("street_", f"_{snr:g}db") for snr in street_snrs]
    for prefix, suffix in names:
        pool = os.path.join(save_folder, f"{prefix}noise_only{suffix}.csv")
        if share > 0 and not os.path.isfile(pool):
            raise DataError(
                f"{pool}: not written, no noise-only clip of a segment's "
                "length was found (silent stretches of the mix recordings, "
                "or street noise files), so noise_only_share must be 0; "
                "lower segment_seconds (or raise silence_db)")
        for k, part in enumerate(("train", "valid")):
            noise_only_manifest(
                os.path.join(save_folder, f"{prefix}noisy_{part}{suffix}.csv"),
                pool, share,
                os.path.join(save_folder, f"{prefix}mix_{part}{suffix}.csv"),
                seed + k)


class _Run:
    """One preparation's state: the split, the takes and what was
    written."""

    def __init__(self, prep, root, options):
        self.prep, self.root, self.opt = prep, root, options
        self.save = os.path.abspath(prep.save_folder)
        self.rate = options["sample_rate"]
        self.length = int(round(options["segment_seconds"] * self.rate))
        speakers, scripts = set(), set()
        for name in os.listdir(os.path.join(root, "clean")):
            match = CLEAN_NAME.match(name)
            if match:
                speakers.add(match.group(1) + match.group(2))
                scripts.add(match.group(3))
        self.sets = split_daps(sorted(speakers),
                               sorted(scripts, key=lambda s: int(s[6:])),
                               options["seed"], options["speaker_split"],
                               options["script_split"])
        self.takes = {s: [f"{p}_{c}" for p in v["speakers"]
                          for c in v["scripts"]]
                      for s, v in self.sets.items()}
        self.rows = {}  # manifest name: rows (pooled later)
        self.lags = []
        self.references = set()  # test references written by this run
        self._activity = {}

    def source(self, take, version):
        return os.path.join(self.root, version, f"{take}_{version}.wav")

    def check_files(self):
        """Every file the split needs exists (before any work)."""
        needed = [self.source(t, "clean") for s in SEGMENTS
                  for t in self.takes[s]]
        needed += [self.source(t, env) for env in self.opt["environments"]
                   for s in ("mix", "test") for t in self.takes[s]]
        missing = [p for p in needed if not os.path.isfile(p)]
        if missing:
            raise DataError(
                f"{len(missing)} DAPS file(s) missing, e.g. {missing[0]}; "
                "the download is incomplete: unpack daps.tar.gz again")

    def load(self, take, version):
        """A DAPS file at the target rate (resampled once into
        ``save_folder/resampled``), or None when it is silent."""
        path = self.source(take, version)
        info = audio_info(path, "unpack daps.tar.gz again")
        out = path
        if info.samplerate != self.rate:
            out, _ = resample(path, os.path.join(
                self.save, "resampled", version, os.path.basename(path)),
                self.rate)
        wav = sf.read(out, dtype="float32")[0]
        return None if self._silent(path, out, wav) else wav

    def _silent(self, original, path, wav):
        try:
            return self.prep.silent(path, wav)
        except DataError:
            raise DataError(f"{original}: contains NaN or inf samples; "
                            "unpack daps.tar.gz again (or delete the file)"
                            " and run the preparation again") from None

    def activity(self, take, clean):
        if take not in self._activity:
            self._activity[take] = speech_activity(
                clean, self.rate, self.opt["silence_db"])
        return self._activity[take]

    def starts(self, take, clean):
        return speech_starts(self.activity(take, clean), self.length,
                             self.opt["min_speech_fraction"])

    def write(self, rel, wav):
        path = os.path.join(self.save, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sf.write(path, np.asarray(wav, dtype=np.float32), self.rate,
                 subtype="FLOAT")
        return path

    def row(self, uid, samples, **columns):
        return {"ID": uid, "duration": f"{samples / self.rate:.3f}",
                **columns}

    def split(self, rows, name, what):
        rng = rng_for(self.opt["seed"], "valid", name)
        return split(rows, self.opt["valid_fraction"], rng, what)

    def write_clean(self):
        """Clean speech segments of the clean set (CAE)."""
        rows = []
        for take in tqdm(self.takes["clean"], desc="DAPS clean set",
                         disable=None):
            clean = self.load(take, "clean")
            if clean is None:
                continue
            speaker = take.split("_")[0]
            for s in self.starts(take, clean):
                uid = f"{take}_clean_s{s // self.length:04d}"
                path = self.write(f"clean/{uid}.wav",
                                  clean[s : s + self.length])
                rows.append(self.row(uid, self.length, mix_wav=path,
                                     clean_wav=path, speaker=speaker))
        train, valid = self.split(rows, "clean", "DAPS clean set")
        self.prep.write("clean_train.csv", train, CLEAN_FIELDS)
        self.prep.write("clean_valid.csv", valid, CLEAN_FIELDS)

    def aligned(self, take, env):
        """Clean reference, device recording and offset, or None."""
        clean = self.load(take, "clean")
        device = self.load(take, env)
        if clean is None or device is None:
            return None
        active = self.activity(take, clean)
        onset = int(np.argmax(active)) if active.any() else 0
        lag = estimate_lag(
            clean, device, onset,
            int(round(self.opt["max_lag_seconds"] * self.rate)),
            int(round(ALIGN_SECONDS * self.rate)))
        self.lags.append({"recording": f"{take}_{env}", "environment": env,
                          "lag_samples": lag,
                          "lag_ms": f"{1000 * lag / self.rate:.2f}"})
        return clean, device, lag

    def write_environment(self, env):
        """Noisy segments, noise-only stretches and test pairs of one
        device x room recording set."""
        n, noisy, pool, test = self.length, [], [], []
        guard = int(round(self.opt["guard_seconds"] * self.rate))
        for take in tqdm(self.takes["mix"], desc=f"DAPS mix set, {env}",
                         disable=None):
            got = self.aligned(take, env)
            if got is None:
                continue
            clean, device, lag = got
            speaker = take.split("_")[0]
            for s in self.starts(take, clean):
                if 0 <= s + lag and s + lag + n <= len(device):
                    uid = f"{take}_{env}_s{s // n:04d}"
                    path = self.write(f"mix/{env}/{uid}.wav",
                                      device[s + lag : s + lag + n])
                    noisy.append(self.row(uid, n, mix_wav=path,
                                          environment=env, speaker=speaker))
            for k, (a, b) in enumerate(silent_stretches(
                    self.activity(take, clean), n, guard)):
                a, b = max(0, a + lag), min(len(device), b + lag)
                if b - a >= n:
                    uid = f"{take}_{env}_n{k}"
                    path = self.write(f"noise_only/{env}/{uid}.wav",
                                      device[a:b])
                    pool.append(self.row(uid, b - a, noise_wav=path))
        for take in self.takes["test"]:
            got = self.aligned(take, env)
            if got is None:
                continue
            clean, device, lag = got
            for s in self.starts(take, clean):
                if 0 <= s + lag and s + lag + n <= len(device):
                    k = s // n
                    ref = f"test/clean/{take}_s{k:04d}.wav"
                    if ref not in self.references:  # once for all rooms
                        self.write(ref, clean[s : s + n])
                        self.references.add(ref)
                    uid = f"{take}_{env}_s{k:04d}"
                    test.append(self.row(
                        uid, n, mix_wav=self.write(
                            f"test/{env}/{uid}.wav",
                            device[s + lag : s + lag + n]),
                        clean_wav=os.path.join(self.save, ref),
                        environment=env,
                        speaker=take.split("_")[0]))
        if not noisy or not test:
            raise DataError(
                f"{os.path.join(self.root, env)}: no usable speech segment "
                f"in the {'mix' if not noisy else 'test'} recordings; "
                "check the files, or lower min_speech_fraction")
        train, valid = self.split(noisy, env, f"DAPS {env} mix recordings")
        for base, rows, fields in (
                ("noisy_train", train, NOISY_FIELDS),
                ("noisy_valid", valid, NOISY_FIELDS),
                ("noise_only", pool, NOISE_FIELDS),
                ("test", test, TEST_FIELDS)):
            self.write_manifest(f"{base}_{env}.csv", rows, fields,
                                pooled=f"{base}.csv")

    def write_manifest(self, name, rows, fields, pooled=None):
        """Writes ``name`` (none when ``rows`` is empty: a noise-only pool
        may be) and keeps its rows for the manifest ``pooled``."""
        path = os.path.join(self.save, name)
        if not rows:
            if os.path.exists(path):
                os.remove(path)  # left by an earlier run
            return
        rows = self.prep.write(name, rows, fields)
        if pooled:
            self.rows.setdefault(pooled, ([], fields))[0].extend(rows)

    def write_pooled(self):
        """Every environment together: ``noisy_train.csv``, ...,
        ``test.csv``."""
        for name in ("noisy_train.csv", "noisy_valid.csv", "noise_only.csv",
                     "test.csv"):
            rows, fields = self.rows.get(name, ([], None))
            if rows:
                self.prep.write(name, rows, fields)
            elif os.path.exists(os.path.join(self.save, name)):
                os.remove(os.path.join(self.save, name))

    def write_street(self, folder):
        """Table 2: clean speech of the mix and test sets + ambient noise
        at each SNR."""
        noises = self.street_noises(folder)
        n = self.length
        segments = {}
        for part in ("mix", "test"):
            segments[part] = []
            for take in self.takes[part]:
                clean = self.load(take, "clean")
                if clean is None:
                    continue
                for s in self.starts(take, clean):
                    segments[part].append((f"{take}_s{s // n:04d}",
                                           take.split("_")[0],
                                           clean[s : s + n]))
        train, valid = self.split(segments["mix"], "street",
                                  "DAPS street mix set")
        level = float(np.median([np.sqrt(np.mean(seg ** 2))
                                 for _, _, seg in train]))
        for snr in self.opt["street_snrs"]:
            tag = f"{snr:g}db"
            rng = rng_for(self.opt["seed"], "street", tag)
            for part, chosen in (("train", train), ("valid", valid)):
                rows = []
                for uid, speaker, seg in chosen:
                    mix, _ = add_noise(seg, noises[rng.integers(
                        len(noises))], (snr, snr), rng)
                    mix = mix / max(1.0, float(np.abs(mix).max()) / 0.99)
                    rows.append(self.row(uid, n, mix_wav=self.write(
                        f"street/{tag}/{part}/{uid}.wav", mix),
                        speaker=speaker))
                self.prep.write(f"street_noisy_{part}_{tag}.csv", rows,
                                ["ID", "duration", "mix_wav", "speaker"])
            pool = []
            for j, noise in enumerate(noises):
                # at the level the noise has in a mixture of this SNR
                gain = level / 10 ** (snr / 20) / np.sqrt(np.mean(noise**2))
                for k in range(len(noise) // n):
                    uid = f"street{j:02d}_n{k:04d}"
                    pool.append(self.row(uid, n, noise_wav=self.write(
                        f"street/{tag}/noise_only/{uid}.wav",
                        gain * noise[k * n : (k + 1) * n])))
            self.write_manifest(f"street_noise_only_{tag}.csv", pool,
                                NOISE_FIELDS)
            rows = []
            for uid, speaker, seg in segments["test"]:
                mix, noise = add_noise(seg, noises[rng.integers(
                    len(noises))], (snr, snr), rng)
                paths = write_mixture(os.path.join(self.save, "street", tag),
                                      "test", uid, seg, noise, mix, self.rate)
                root = os.path.join(self.save, "street", tag)
                rows.append(self.row(uid, n, speaker=speaker, **{
                    k: v.replace("$data_root", root)
                    for k, v in paths.items()}))
            self.prep.write(f"street_test_{tag}.csv", rows,
                            STREET_TEST_FIELDS)

    def street_noises(self, folder):
        """``street_n_noise`` non-silent files of ``folder`` (seeded
        draw), mono at the target rate; their list is written."""
        files = find_audio(folder)
        order = rng_for(self.opt["seed"], "street files").permutation(
            len(files))
        used, noises = [], []
        for i in order:
            if len(used) == self.opt["street_n_noise"]:
                break
            path = files[i]
            try:
                wav, rate = sf.read(path, dtype="float64", always_2d=True)
            except Exception as err:
                raise DataError(f"{path}: cannot read audio ({err})") from err
            wav = wav.mean(axis=1)  # ambient stereo: averaged (official)
            if rate != self.rate:
                g = np.gcd(rate, self.rate)
                wav = resample_poly(wav, self.rate // g, rate // g)
            rel = os.path.relpath(path, folder).replace(os.sep, "_")
            out = self.write(f"resampled/street/{os.path.splitext(rel)[0]}"
                             ".wav", wav)
            if not self._silent(path, out, wav) and len(wav) > 0:
                used.append(os.path.abspath(path))
                noises.append(wav.astype(np.float32))
        if not noises:
            raise DataError(f"{folder}: every audio file is silent; give a "
                            "folder of ambient noise recordings")
        if len(noises) < self.opt["street_n_noise"]:
            logger.warning("%s: %d usable noise file(s), fewer than "
                           "street_n_noise=%d", folder, len(noises),
                           self.opt["street_n_noise"])
        with open(os.path.join(self.save, "street_noise_files.txt"),
                  "w") as f:
            f.write("".join(p + "\n" for p in used))
        return noises

    def write_records(self):
        """``split.json`` and ``alignment.csv``."""
        with open(os.path.join(self.save, "split.json"), "w") as f:
            json.dump(self.sets, f, indent=1)
        write_manifest(os.path.join(self.save, "alignment.csv"), self.lags,
                       ["recording", "environment", "lag_samples", "lag_ms"])
