"""Data for personalized speech enhancement with data purification
(Sivaraman et al., 2021, Sections 2.2 and 3.2).

Four collections of audio, kept apart:

* G, speaker-agnostic clean speech (many speakers): trains the generalist
  SE model and, mixed with N, the segmental-SNR predictor;
* N, training noise, added to G (Eq. 1, 8) and to the premixtures (Eq. 5);
* M, premixture noise: a test speaker's "recordings" are premixtures
  s~ = s + m (Eq. 4), the only data of that speaker the personalized model
  sees; it never sees s or m apart;
* test noise, unseen in training, mixed with *other* utterances of each
  test speaker for the evaluation (SI-SDRi against the clean utterance).

One writer (:func:`write_personal`) builds every manifest from listed
files; two front-ends list them: :func:`prepare_personal_librispeech`
(the paper's LibriSpeech ``train-clean-100`` + MUSAN + FSD50K) and
:func:`prepare_personal_demo` (the shipped demo corpus, in seconds).

Manifests written to ``data_folder`` (paths absolute, or ``$data_root/...``
for files written there):

==================================  ========================================
``general_train.csv``,              G: ``ID, duration, clean_wav, speaker``
``general_valid.csv``
``noise_train.csv``                 N: ``ID, duration, noise_wav``
``noise_test.csv``                  test noise, same columns
``premix_noise.csv``                the M clips premixtures use, same columns
``speaker_<spk>_train.csv``,        premixtures of speaker ``<spk>``:
``speaker_<spk>_valid.csv``         ``ID, duration, clean_wav, noise_wav,
                                    noise_start, snr, speaker``
``speaker_<spk>_test.csv``          unseen utterances + test noise, same
                                    columns (``clean_wav``: the reference)
``test.csv``                        every speaker's test rows
``speakers.csv``                    ``speaker, n_train, n_valid, n_test``,
                                    one row per test speaker, in order
==================================  ========================================

Premixture and test rows are *virtual* mixtures (no file is written):
``data.make_dataset`` synthesises ``mix = clean + gain * noise`` from
``noise_start`` (samples, noise tiled when shorter) with the gain that
gives ``snr`` dB; for a premixture row, ``mix`` is the premixture s~, the
pseudo-target of PSE.  A speaker's train, valid and test utterances are
disjoint; test speakers never appear in G.  Everything is drawn from
``seed``: the same options always give the same manifests.  Every file
used is checked (NaN/inf: an error naming it; silent: left out, or
another noise clip drawn, and listed in ``skipped_silent.txt``).
"""

import csv
import glob
import logging
import os

import numpy as np

from speechbrain_remix.data import DataError, write_manifest
from speechbrain_remix.prepare.common import (
    NOISE_FIELDS,
    Preparation,
    audio_info,
    list_audio,
    resample,
)
from speechbrain_remix.prepare.demo import _list as demo_files
from speechbrain_remix.prepare.demo import speech_halves
from speechbrain_remix.prepare.librifsd50k import fsd50k_clips

logger = logging.getLogger(__name__)
GENERAL_FIELDS = ["ID", "duration", "clean_wav", "speaker"]
FIELDS = ["ID", "duration", "clean_wav", "noise_wav", "noise_start", "snr",
          "speaker"]
SPEAKER_FIELDS = ["speaker", "n_train", "n_valid", "n_test"]
# A validation set of one utterance gives a validation loss too noisy to
# select a checkpoint on; so do training sets of one.
MIN_SPLIT = 2
DEMO_SPEAKER = "fillets_v"  # the only demo test speaker with enough clips


def held_out(n, fraction, what):
    """How many of ``n`` items to hold out for validation: ``fraction`` of
    them, but at least ``MIN_SPLIT``, leaving at least ``MIN_SPLIT``.

    Example
    -------
    >>> held_out(100, 0.1, "x"), held_out(10, 0.02, "x")
    (10, 2)
    """
    n_valid = max(MIN_SPLIT, int(round(fraction * n)))
    if n - n_valid < MIN_SPLIT:
        raise DataError(f"{what}: {n} usable utterance(s); holding out "
                        f"{n_valid} for validation leaves fewer than "
                        f"{MIN_SPLIT} for training; add speech or lower the "
                        "validation fraction")
    return n_valid


class NoiseClips:
    """Random noise clips for virtual mixtures, each checked when first
    drawn: a silent one is recorded by ``prep`` and another drawn, so that
    no utterance of a speaker is lost to its noise.

    Arguments
    ---------
    items : list
        ``(ID, path, ...)`` of the clips.
    prep : Preparation
        Checks the clips' samples.
    load : callable, optional
        ``load(ID, path)`` gives the clip's path at the working rate and
        its length in samples (e.g. after resampling it); by default
        :func:`as_is` at ``sample_rate``.
    sample_rate : int
        Rate of the default ``load``.
    what : str
        Names the collection in messages.
    """

    def __init__(self, items, prep, load=None, sample_rate=16000,
                 what="noise"):
        if not items:
            raise DataError(f"{what}: no noise clip")
        self.items = items
        self.prep = prep
        self.load = load or (lambda uid, path: as_is(path, sample_rate))
        self.what = what
        self.loaded = {}  # index: (ID, path, frames)
        self.silent = set()
        self.used = set()

    def draw(self, rng):
        """A usable clip ``(ID, path, frames)`` drawn from ``rng``."""
        while True:
            k = int(rng.integers(len(self.items)))
            if k in self.silent:
                continue
            if k not in self.loaded:
                uid, path = self.items[k][:2]
                local, frames = self.load(uid, path)
                if self.prep.silent(local):
                    self.silent.add(k)
                    if len(self.silent) == len(self.items):
                        raise DataError(f"{self.what}: every clip is silent;"
                                        " check the recordings")
                    continue
                self.loaded[k] = (uid, local, frames)
            self.used.add(k)
            return self.loaded[k]

    def rows(self, data_folder, sample_rate):
        """Noise-manifest rows of the clips drawn so far, by ID."""
        return sorted(
            ({"ID": uid, "duration": f"{frames / sample_rate:.3f}",
              "noise_wav": portable(path, data_folder)}
             for uid, path, frames in (self.loaded[k] for k in self.used)),
            key=lambda row: row["ID"])


def as_is(path, sample_rate):
    """``path`` (absolute) and its length in samples; a :class:`DataError`
    when it is not mono at ``sample_rate``."""
    info = audio_info(path)
    if info.samplerate != sample_rate:
        raise DataError(f"{path}: {info.samplerate} Hz, expected "
                        f"{sample_rate} Hz; resample it (sox in.wav -r "
                        f"{sample_rate} out.wav)")
    return os.path.abspath(path), info.frames


def portable(path, data_folder):
    """``$data_root/...`` for a file inside ``data_folder`` (the manifests
    then survive moving the folder), the absolute path otherwise.

    Example
    -------
    >>> portable("/d/resampled/a.wav", "/d"), portable("/x/a.wav", "/d")
    ('$data_root/resampled/a.wav', '/x/a.wav')
    """
    path, root = os.path.abspath(path), os.path.abspath(data_folder)
    if path.startswith(root + os.sep):
        return "$data_root/" + os.path.relpath(path, root).replace(os.sep, "/")
    return path


def write_personal(
    prep,
    general,
    speakers,
    noise_train,
    noise_test,
    premix_noise,
    rng,
    sample_rate=16000,
    n_test_utterances=20,
    valid_fraction=0.1,
    general_valid_fraction=0.02,
    premix_snr_range=(0.0, 15.0),
    test_snr_range=(-5.0, 5.0),
    premix_load=None,
):
    """Writes every manifest of the module docstring from listed files.

    The caller owns ``prep``: it calls :meth:`Preparation.start` before
    and :meth:`Preparation.finish` after, so the done-marker comes only
    once every manifest is written.

    Arguments
    ---------
    prep : Preparation
        The run (its ``save_folder`` is the data folder).
    general : list of tuple
        G: ``(ID, path, seconds, speaker)``.
    speakers : dict
        ``{speaker: [(ID, path, seconds)]}`` of the test speakers, in the
        order of ``speakers.csv``.
    noise_train, noise_test : list of tuple
        N and the test noise: ``(ID, path, seconds)`` at ``sample_rate``.
    premix_noise : list of tuple
        M: ``(ID, path, ...)``; only the clips drawn are loaded (with
        ``premix_load``) and listed in ``premix_noise.csv``.
    rng : numpy.random.Generator
        Every draw (splits, clips, offsets, SNRs), in a fixed order.
    sample_rate : int
        The working rate.
    n_test_utterances : int
        Test utterances per speaker; of the rest, ``valid_fraction`` (at
        least two) are validation premixtures, the others training ones.
    valid_fraction, general_valid_fraction : float
        Validation shares of a speaker's premixtures and of G.
    premix_snr_range, test_snr_range : tuple of float
        Uniform SNR ranges (dB) of premixtures (s vs m) and test mixtures.
    premix_load : callable, optional
        ``premix_load(ID, path)`` gives a clip's path at ``sample_rate``
        and its length in samples (default: the file as it is).

    Returns
    -------
    dict
        ``{speaker: (n_train, n_valid, n_test)}``, as in ``speakers.csv``.
    """
    folder = prep.save_folder
    # A run with other options may have had other test speakers: their
    # manifests would otherwise stay, looking current.
    for name in ("train", "valid", "test"):
        for path in glob.glob(os.path.join(folder, f"speaker_*_{name}.csv")):
            os.remove(path)
    test_clips = NoiseClips(prep.keep(noise_test, "test noise"), prep,
                            sample_rate=sample_rate, what="test noise")
    premix_clips = NoiseClips(premix_noise, prep, premix_load, sample_rate,
                              "premixture noise")
    splits = {}
    for spk, utterances in speakers.items():
        utterances = prep.keep(utterances, f"speaker {spk}")
        need = n_test_utterances + 2 * MIN_SPLIT
        if len(utterances) < need:
            raise DataError(
                f"speaker {spk}: {len(utterances)} usable utterance(s), need "
                f"at least {need} ({n_test_utterances} test, "
                f"{MIN_SPLIT} validation, {MIN_SPLIT} training); lower "
                "n_test_utterances")
        order = [utterances[i] for i in rng.permutation(len(utterances))]
        test, rest = order[:n_test_utterances], order[n_test_utterances:]
        n_valid = held_out(len(rest), valid_fraction, f"speaker {spk}")
        splits[spk] = {"train": rest[n_valid:], "valid": rest[:n_valid],
                       "test": test}
    general = [general[i] for i in rng.permutation(len(general))]
    n_valid = held_out(len(general), general_valid_fraction, "G")
    for name, part in (("train", general[n_valid:]),
                       ("valid", general[:n_valid])):
        prep.write(f"general_{name}.csv", [
            {"ID": uid, "duration": f"{sec:.3f}", "clean_wav": path,
             "speaker": spk}
            for uid, path, sec, spk in sorted(part)], GENERAL_FIELDS)
    prep.write("noise_train.csv", [
        {"ID": uid, "duration": f"{sec:.3f}", "noise_wav": path}
        for uid, path, sec in noise_train], NOISE_FIELDS)
    counts, test_rows = {}, []
    for spk, parts in splits.items():
        for name in ("train", "valid", "test"):
            clips, snr_range = (test_clips, test_snr_range) if (
                name == "test") else (premix_clips, premix_snr_range)
            rows = []
            for uid, path, sec in sorted(parts[name]):
                noise_id, noise, frames = clips.draw(rng)
                rows.append({
                    "ID": uid, "duration": f"{sec:.3f}", "clean_wav": path,
                    "noise_wav": portable(noise, folder),
                    "noise_start": int(rng.integers(frames)),
                    "snr": f"{rng.uniform(*snr_range):.3f}", "speaker": spk,
                })
            parts[name] = prep.write(f"speaker_{spk}_{name}.csv", rows,
                                     FIELDS)
        test_rows += parts["test"]
        counts[spk] = tuple(len(parts[n]) for n in ("train", "valid", "test"))
    prep.write("test.csv", test_rows, FIELDS)
    prep.write("noise_test.csv", [  # all of it: the unseen-noise pool
        {"ID": uid, "duration": f"{sec:.3f}", "noise_wav": path}
        for uid, path, sec in test_clips.items], NOISE_FIELDS)
    prep.write("premix_noise.csv", premix_clips.rows(folder, sample_rate),
               NOISE_FIELDS)
    # Not through prep.write: it has no audio column to check, and the
    # done-marker's manifest check expects ID and duration.
    write_manifest(os.path.join(folder, "speakers.csv"), [
        dict(zip(SPEAKER_FIELDS, (spk, *n))) for spk, n in counts.items()],
        SPEAKER_FIELDS)
    return counts


def prepare_personal_librispeech(
    librispeech_folder,
    musan_folder,
    fsd50k_folder,
    data_folder,
    sample_rate=16000,
    n_test_speakers=20,
    n_test_utterances=20,
    valid_fraction=0.1,
    general_valid_fraction=0.02,
    premix_snr_range=(0.0, 15.0),
    test_snr_range=(-5.0, 5.0),
    seed=1234,
    skip_prep=False,
):
    """The paper's data (Section 3.2): LibriSpeech ``train-clean-100``,
    MUSAN and FSD50K.

    Expected inputs (each folder may also be the parent of the dataset's
    own top folder, ``LibriSpeech/`` or ``musan/``)::

        librispeech_folder/train-clean-100/<spk>/<ch>/<spk>-<ch>-<utt>.flac
        musan_folder/noise/free-sound/*.wav      N (16 kHz)
        musan_folder/noise/sound-bible/*.wav     test noise (16 kHz)
        fsd50k_folder/FSD50K.dev_audio/*.wav     M (44.1 kHz)
        fsd50k_folder/FSD50K.ground_truth/{dev,eval}.csv
        fsd50k_folder/FSD50K.eval_audio/         (checked, not used)

    ``n_test_speakers`` speakers of ``train-clean-100`` are drawn from
    ``seed`` as test speakers (the paper's 20 "folded-out" speakers); all
    utterances of the others form G.  The paper says 211 remaining
    speakers, but ``train-clean-100`` has 251, so 231 remain here.  M is
    the non-human FSD50K dev clips (its ``train`` and ``val`` splits; the
    human-sound exclusion of LibriFSD50K); only the clips a premixture
    uses are resampled to ``sample_rate``, into ``data_folder/resampled``.

    Arguments
    ---------
    librispeech_folder, musan_folder, fsd50k_folder : str
        Dataset roots.
    data_folder : str
        Manifests and resampled clips.
    sample_rate : int
        LibriSpeech's and MUSAN's rate (16 kHz).
    n_test_speakers : int
        Held-out test speakers.
    n_test_utterances : int
        Test utterances per test speaker.
    valid_fraction : float
        Share of a test speaker's other utterances held out (at least 2).
    general_valid_fraction : float
        Share of G held out for validation (at least 2).
    premix_snr_range, test_snr_range : tuple of float
        Uniform SNR ranges in dB (paper: 0 to 15, and -5 to 5).
    seed : int
        Seed of every draw.
    skip_prep : bool
        Do nothing.
    """
    if skip_prep:
        return
    options = dict(librispeech=os.path.abspath(librispeech_folder),
                   musan=os.path.abspath(musan_folder),
                   fsd50k=os.path.abspath(fsd50k_folder),
                   sample_rate=sample_rate, n_test_speakers=n_test_speakers,
                   n_test_utterances=n_test_utterances,
                   valid_fraction=valid_fraction,
                   general_valid_fraction=general_valid_fraction,
                   premix_snr_range=list(premix_snr_range),
                   test_snr_range=list(test_snr_range), seed=seed)
    prep = Preparation(data_folder, options)
    if prep.done():
        return
    libri = _dataset_folder(librispeech_folder, "LibriSpeech",
                            ["train-clean-100"])[0]
    free_sound, sound_bible = _dataset_folder(
        musan_folder, "MUSAN", ["noise/free-sound", "noise/sound-bible"])
    clips = fsd50k_clips(fsd50k_folder)
    premix = clips["train"] + clips["val"]
    if not premix:
        raise DataError(f"{fsd50k_folder}: no non-human clip in the FSD50K "
                        "dev set")
    prep.start()
    by_speaker = {}
    for _, path, sec in list_audio(libri, sample_rate):
        spk = os.path.relpath(path, libri).split(os.sep)[0]
        uid = os.path.splitext(os.path.basename(path))[0]
        by_speaker.setdefault(spk, []).append((uid, path, sec))
    names = sorted(by_speaker, key=_natural)
    if not 0 < n_test_speakers < len(names):
        raise DataError(f"{libri}: {len(names)} speakers; n_test_speakers "
                        f"must be between 1 and {len(names) - 1}")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(names), n_test_speakers, replace=False))
    test_speakers = {names[i]: by_speaker[names[i]] for i in chosen}
    general = [(uid, path, sec, spk) for spk in names
               if spk not in test_speakers
               for uid, path, sec in by_speaker[spk]]
    resampled = os.path.join(data_folder, "resampled")

    def load_premix(fname, path):
        if not os.path.isfile(path):
            raise DataError(f"{path}: listed in the FSD50K ground truth but "
                            "missing; re-download FSD50K")
        return resample(path, os.path.join(resampled, f"{fname}.wav"),
                        sample_rate)

    write_personal(
        prep, general, test_speakers, list_audio(free_sound, sample_rate),
        list_audio(sound_bible, sample_rate), premix, rng,
        sample_rate=sample_rate, n_test_utterances=n_test_utterances,
        valid_fraction=valid_fraction,
        general_valid_fraction=general_valid_fraction,
        premix_snr_range=premix_snr_range, test_snr_range=test_snr_range,
        premix_load=load_premix)
    prep.finish()


def prepare_personal_demo(
    source_folder,
    data_folder,
    sample_rate=16000,
    n_test_utterances=12,
    valid_fraction=0.1,
    premix_snr_range=(0.0, 15.0),
    test_snr_range=(-5.0, 5.0),
    seed=1234,
    speaker=DEMO_SPEAKER,
    skip_prep=False,
):
    """The same manifests from the shipped demo corpus (``data/demo``), or
    from a corpus in its layout (``tools/build_offline_corpus.py``).

    * G: domain A's half of ``speech/train``, exactly as
      :func:`~speechbrain_remix.prepare.demo.prepare_demo` splits it for
      the same ``seed`` (mostly one speaker, ``fillets_m``, so "speaker
      agnostic" only in name); ``valid_fraction`` of it held out;
    * test speaker: ``fillets_v`` of ``speech/test`` (40 clips of about
      2.5 s); the other test speakers have 4 or 5 clips and are left out;
    * M = ``noise/env/train``; N = ``noise/music/train``; test noise =
      ``noise/music/test``.  The SNR predictor (trained on G + N) thus
      sees the same speech and music as the demo's supervised teacher,
      and never the environmental noise of the premixtures.

    Rows point at the corpus' ogg files (absolute paths); nothing is
    written but manifests.  Takes seconds.

    Arguments
    ---------
    source_folder : str
        The shipped demo corpus.
    data_folder : str
        Where the manifests go.
    sample_rate : int
        The corpus' rate (16 kHz).
    n_test_utterances : int
        Test utterances of ``fillets_v``.
    valid_fraction : float
        Share held out for validation, of G and of the speaker's other
        utterances (at least 2 each).
    premix_snr_range, test_snr_range : tuple of float
        Uniform SNR ranges in dB.
    seed : int
        Seed of every draw (and of the domain split).
    speaker : str
        The test speaker: the prefix of its ``speech/test`` file names
        (``fillets_v`` on the demo corpus, which has no other with enough
        clips; e.g. ``asterisk_fr`` on the replication corpus).
    skip_prep : bool
        Do nothing.

    Example
    -------
    >>> import tempfile
    >>> root = os.path.join(os.path.dirname(__file__), "..", "..", "data",
    ...                     "demo")
    >>> out = tempfile.mkdtemp()
    >>> prepare_personal_demo(root, out)
    >>> open(os.path.join(out, "speakers.csv")).read().split()
    ['speaker,n_train,n_valid,n_test', 'fillets_v,25,3,12']
    """
    if skip_prep:
        return
    options = dict(source=os.path.abspath(source_folder),
                   sample_rate=sample_rate,
                   n_test_utterances=n_test_utterances,
                   valid_fraction=valid_fraction,
                   premix_snr_range=list(premix_snr_range),
                   test_snr_range=list(test_snr_range), seed=seed)
    if speaker != DEMO_SPEAKER:  # the demo's manifests stay valid as they are
        options["speaker"] = speaker
    prep = Preparation(data_folder, options)
    if prep.done():
        return
    source = os.path.abspath(source_folder)
    speaker_of = _demo_speakers(source)
    train = demo_files(source, "speech/train")
    test = [p for p in demo_files(source, "speech/test")
            if speaker_of.get(os.path.basename(p)) == speaker]
    if not test:
        raise DataError(
            f"{source_folder}: no speech/test files of speaker {speaker!r}; "
            f"choose one of {sorted(set(speaker_of.values()))}"
        )
    noise = {sub: os.path.join(source, "noise", sub) for sub in
             ("env/train", "music/train", "music/test")}
    prep.start()
    # Checked and split as prepare_demo does, from the same stream: the
    # same files in the same order give the same halves.
    rng = np.random.default_rng(seed)
    general, _ = speech_halves(
        prep.keep(train, os.path.join(source, "speech", "train")), rng)
    general = [(*_describe(p, sample_rate), speaker_of.get(
        os.path.basename(p), "unknown")) for p in general]
    write_personal(
        prep, general,
        {speaker: [_describe(p, sample_rate) for p in test]},
        list_audio(noise["music/train"], sample_rate),
        list_audio(noise["music/test"], sample_rate),
        list_audio(noise["env/train"], sample_rate), rng,
        sample_rate=sample_rate, n_test_utterances=n_test_utterances,
        valid_fraction=valid_fraction, general_valid_fraction=valid_fraction,
        premix_snr_range=premix_snr_range, test_snr_range=test_snr_range)
    prep.finish()


def _dataset_folder(folder, name, subs):
    """The folders ``subs`` under ``folder`` (or under its subfolder
    ``name`` or its lower-case spelling, how the archives unpack); a
    :class:`DataError` naming the missing ones otherwise."""
    for root in (folder, os.path.join(folder, name),
                 os.path.join(folder, name.lower())):
        paths = [os.path.join(root, *s.split("/")) for s in subs]
        if all(os.path.isdir(p) for p in paths):
            return paths
    missing = [os.path.join(folder, *s.split("/")) for s in subs
               if not os.path.isdir(os.path.join(folder, *s.split("/")))]
    raise DataError(f"{folder}: not {name}; missing {', '.join(missing)}")


def _natural(speaker):
    """LibriSpeech speaker IDs in numeric order."""
    return (0, int(speaker), "") if speaker.isdigit() else (1, 0, speaker)


def _describe(path, sample_rate):
    """``(ID, absolute path, seconds)`` of a file at ``sample_rate``."""
    path, frames = as_is(path, sample_rate)
    return (os.path.splitext(os.path.basename(path))[0], path,
            frames / sample_rate)


def _demo_speakers(source):
    """``{file name: speaker}`` from the demo corpus' ``sources.csv``."""
    listing = os.path.join(source, "sources.csv")
    if not os.path.isfile(listing):
        raise DataError(f"{listing}: not found; source_folder must be the "
                        "shipped demo corpus (data/demo in the repository)")
    with open(listing, newline="") as f:
        return {os.path.basename(row["file"]): row["speaker_or_domain"]
                for row in csv.DictReader(f)}
