"""What every data preparation shares: listing audio files (resampling
them where asked), checking the content of every file that goes into a
manifest, and a done-marker that is only there when a run completed.

A preparation runs as::

    prep = Preparation(save_folder, options)
    if prep.done():          # same options completed before: skip
        return
    prep.start()             # done-marker removed before any work
    pool = prep.keep(list_audio(folder, sample_rate))
    prep.write("train.csv", rows, fields)   # rows checked, then written
    prep.finish()            # silent files reported, marker written last
"""

import glob
import json
import logging
import math
import os

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from tqdm import tqdm

from speechbrain_remix.data import (
    AUDIO_KEYS,
    DataError,
    check_manifest,
    write_manifest,
)

logger = logging.getLogger(__name__)
EXTENSIONS = (".wav", ".flac", ".ogg")
DONE_FILE = "prepare_done.json"
SKIPPED_FILE = "skipped_silent.txt"
NOISE_FIELDS = ["ID", "duration", "noise_wav"]
# Silence: RMS below 1e-6 of full scale (-120 dBFS).  That is 19 dB under
# the quantisation noise of 16-bit audio (about -101 dBFS), so no
# recording with any content falls below it, while digital silence (all
# zeros, or zeros with a few stray least-significant bits) does.  Such a
# file breaks every scale-invariant loss and metric (SI-SDR of a zero
# reference) and, used as noise, gives mixtures without noise.
SILENT_RMS = 1e-6
BLOCK_FRAMES = 1 << 20  # read in blocks: bounded memory for long files
SHOWN = 20  # skipped files named in the log (all are in SKIPPED_FILE)


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


def audio_info(path, fix="downmix it (sox in.wav out.wav remix -)"):
    """``soundfile.info`` of a mono audio file; a :class:`DataError` naming
    the file (and ``fix`` for a multi-channel one) otherwise."""
    try:
        info = sf.info(path)
    except Exception as err:
        raise DataError(f"{path}: cannot read audio ({err})") from err
    if info.channels != 1:
        raise DataError(f"{path}: {info.channels} channels, expected mono; "
                        f"{fix}")
    return info


def list_audio(folder, sample_rate, resample_folder=None):
    """Audio files under ``folder`` as ``(ID, path, seconds)``.

    Each file's header is checked: mono, not empty and at ``sample_rate``
    (its samples are checked by :class:`Preparation`).  With
    ``resample_folder``, files at another rate are resampled into it (once:
    an existing resampled file is reused); without, they are an error
    naming the file.  IDs are the paths relative to ``folder`` without
    extension, ``/`` replaced by ``_``.

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
    for path in tqdm(find_audio(folder), desc=f"listing {folder}",
                     disable=None):
        info = audio_info(path)
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
    already there at that rate; returns the new path and its length in
    samples."""
    if os.path.isfile(out_path):
        info = sf.info(out_path)
        if info.samplerate == sample_rate:  # else: left by another rate
            return out_path, info.frames
    wav, rate = sf.read(path, dtype="float64")
    g = np.gcd(rate, sample_rate)
    wav = resample_poly(wav, sample_rate // g, rate // g)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tmp = out_path + ".tmp.wav"
    sf.write(tmp, wav.astype(np.float32), sample_rate, subtype="FLOAT")
    os.replace(tmp, out_path)
    return out_path, len(wav)


def rms_level(path, wav=None):
    """RMS of an audio file's samples (full scale 1), all channels.

    Arguments
    ---------
    path : str
        The file; read in blocks unless ``wav`` is given.
    wav : numpy.ndarray, optional
        Its samples, already read (``path`` then only names it).

    Returns
    -------
    float
        The level; compare with ``SILENT_RMS``.

    Raises
    ------
    DataError
        Unreadable file, or NaN/inf samples (named with the fix).

    Example
    -------
    >>> rms_level("x.wav", np.full(100, 0.5))
    0.5
    >>> rms_level("x.wav", np.array([0.0, np.nan]))
    Traceback (most recent call last):
    ...
    speechbrain_remix.data.DataError: x.wav: contains NaN or inf samples; ...
    """
    if wav is not None:
        return _rms(path, [np.asarray(wav)])
    try:
        with sf.SoundFile(path) as f:
            return _rms(path, f.blocks(blocksize=BLOCK_FRAMES,
                                       dtype="float32", always_2d=True))
    except DataError:
        raise
    except Exception as err:  # libsndfile gives many error types
        raise DataError(f"{path}: cannot read audio ({err})") from err


def _rms(path, blocks):
    total, count = 0.0, 0
    for block in blocks:
        if not np.isfinite(block).all():
            raise DataError(
                f"{path}: contains NaN or inf samples; re-export the file "
                "from its source (or delete it) and run the preparation again"
            )
        # float32 BLAS: 6x faster than float64 and precise enough (1e-4)
        # for comparing with a threshold
        flat = np.ravel(block).astype(np.float32, copy=False)
        total += float(np.dot(flat, flat))
        count += flat.size
    return math.sqrt(total / count) if count else 0.0


def already_prepared(save_folder, options):
    """True when a run with the same ``options`` completed in
    ``save_folder`` and every manifest it wrote still checks out:
    preparation is then skipped."""
    done = os.path.join(save_folder, DONE_FILE)
    try:
        with open(done) as f:
            marker = json.load(f)
    except (OSError, ValueError):  # none, or not this version's marker
        return False
    if not isinstance(marker, dict) or marker.get("options") != json.loads(
            json.dumps(options)):
        return False
    try:
        for name, required in marker.get("manifests", {}).items():
            check_manifest(os.path.join(save_folder, name), save_folder,
                           required)
    except DataError:
        return False
    return True


def mark_prepared(save_folder, options, manifests):
    """Records (atomically) that preparation with ``options`` completed,
    with the ``manifests`` it wrote (``{csv name: audio columns}``)."""
    path = os.path.join(save_folder, DONE_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump({"options": options, "manifests": manifests}, f, indent=1)
    os.replace(path + ".tmp", path)


def unmark_prepared(save_folder):
    """Removes the done-marker: from now until :func:`mark_prepared`, the
    folder's manifests and audio may be of two different runs."""
    for name in (DONE_FILE, DONE_FILE + ".tmp"):
        if os.path.exists(os.path.join(save_folder, name)):
            os.remove(os.path.join(save_folder, name))


class Preparation:
    """One preparation run writing manifests into ``save_folder``.

    It owns the two things every preparation must get right:

    * the done-marker: :meth:`done` is true only when a run with the same
      ``options`` completed; :meth:`start` removes the marker before any
      work and :meth:`finish` writes it after every manifest, so that an
      interrupted run is never taken as done, whatever ran before it;
    * the content of every audio file a manifest lists (:meth:`write`,
      :meth:`screen`) or a mixture is made of (:meth:`keep`): NaN or inf
      samples are an error naming the file; a silent file (RMS below
      ``SILENT_RMS``, -120 dBFS) is skipped, counted, logged and listed in
      ``save_folder/skipped_silent.txt``.  Each file is read once.

    Arguments
    ---------
    save_folder : str
        Where manifests (and the marker) go.
    options : dict
        Everything the outputs depend on (JSON-serialisable).

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> sf.write(os.path.join(root, "a.wav"), np.full(160, 0.1), 16000)
    >>> sf.write(os.path.join(root, "b.wav"), np.zeros(160), 16000)
    >>> prep = Preparation(root, {"seed": 1})
    >>> prep.done()
    False
    >>> prep.start()
    >>> rows = [{"ID": u, "duration": 0.01, "mix_wav": f"$data_root/{u}.wav"}
    ...         for u in "ab"]
    >>> [r["ID"] for r in prep.write("m.csv", rows, ["ID", "duration",
    ...                                               "mix_wav"])]
    ['a']
    >>> prep.finish()
    >>> open(os.path.join(root, SKIPPED_FILE)).read() == (
    ...     os.path.join(root, "b.wav") + "\\n")
    True
    >>> Preparation(root, {"seed": 1}).done(), Preparation(root, {}).done()
    (True, False)
    """

    def __init__(self, save_folder, options):
        self.save_folder = save_folder
        self.options = options
        self.manifests = {}
        self.silent_files = []  # in the order found
        self.dropped = {}  # manifest or pool name: rows left out
        self._silent = {}  # path: verdict, so that each file is read once

    def done(self):
        """True (and logged) when this preparation already completed."""
        if already_prepared(self.save_folder, self.options):
            logger.info("%s: already prepared with these options, skipping",
                        self.save_folder)
            return True
        return False

    def start(self):
        """Removes the done-marker and the last run's list of skipped
        files, before any work."""
        os.makedirs(self.save_folder, exist_ok=True)
        unmark_prepared(self.save_folder)
        skipped = os.path.join(self.save_folder, SKIPPED_FILE)
        if os.path.exists(skipped):
            os.remove(skipped)

    def silent(self, path, wav=None):
        """Whether ``path`` is silent (recorded if so); a
        :class:`DataError` when it holds NaN or inf.  ``wav``: its
        samples, when already read."""
        if path not in self._silent:
            self._silent[path] = rms_level(path, wav) < SILENT_RMS
            if self._silent[path]:
                self.silent_files.append(path)
        return self._silent[path]

    def keep(self, items, what):
        """The non-silent ones of ``items``: paths, or ``(ID, path,
        seconds)`` as :func:`list_audio` gives.  ``what`` names the
        collection in messages (e.g. its folder)."""
        def usable(item):
            path = item if isinstance(item, str) else item[1]
            return None if self.silent(path) else item

        return self._filter(items, what, usable)

    def screen(self, rows, what, sparse_sources=False):
        """The rows of a manifest whose audio files are all usable.

        Every path in ``mix_wav``, ``clean_wav``, ``noise_wav`` and
        ``source_wavs`` is checked; a row with a silent file is left out.
        With ``sparse_sources`` (FUSS: fewer active sources than slots), a
        silent reference source is left out of ``source_wavs`` instead,
        which is what an absent source means there (zero-padded); the row
        goes only when no source remains.  Returns the rows kept (new
        dicts where ``source_wavs`` changed).
        """
        def usable(row):
            paths = [row[key] for key in AUDIO_KEYS if row.get(key)]
            if any(self.silent(self._resolve(p)) for p in paths):
                return None
            if not row.get("source_wavs"):
                return row
            sources = row["source_wavs"].split(";")
            active = [p for p in sources if not self.silent(self._resolve(p))]
            if len(active) < len(sources) and not (sparse_sources and active):
                return None
            return {**row, "source_wavs": ";".join(active)}

        return self._filter(rows, what, usable)

    def write(self, name, rows, fields, sparse_sources=False):
        """Screens ``rows`` (see :meth:`screen`), writes them as the
        manifest ``name`` and returns them."""
        rows = self.screen(rows, name, sparse_sources)
        write_manifest(os.path.join(self.save_folder, name), rows, fields)
        self.manifests[name] = [f for f in fields
                                if f in AUDIO_KEYS or f == "source_wavs"]
        return rows

    def write_splits(self, train, valid, fields, noise_fraction=0.2):
        """The training manifests every dataset offers: ``train.csv``,
        ``valid.csv``, and the split of Table I of RemixIT for in-domain
        noise: ``train_mix80.csv`` (the mixtures of ``1 - noise_fraction``
        of the training rows) and ``train_noise20.csv`` (the noise of the
        others)."""
        train = self.write("train.csv", train, fields)
        self.write("valid.csv", valid, fields)
        n_noise = int(round(noise_fraction * len(train)))
        self.write("train_mix80.csv", train[n_noise:], fields)
        self.write(
            "train_noise20.csv",
            [{"ID": r["ID"] + "_noise", "duration": r["duration"],
              "noise_wav": r["noise_wav"]} for r in train[:n_noise]],
            NOISE_FIELDS,
        )
        return train

    def finish(self):
        """Reports the silent files skipped, then writes the done-marker:
        the last thing a preparation does."""
        if self.silent_files:
            listing = os.path.join(self.save_folder, SKIPPED_FILE)
            with open(listing, "w") as f:
                f.write("".join(p + "\n" for p in self.silent_files))
            shown = self.silent_files[:SHOWN]
            more = len(self.silent_files) - len(shown)
            left_out = ", ".join(f"{n} of {name}"
                                 for name, n in self.dropped.items())
            logger.warning(
                "%d silent file(s) skipped (RMS below %g of full scale; "
                "left out: %s), all listed in %s: %s%s",
                len(self.silent_files), SILENT_RMS, left_out or "none",
                listing, ", ".join(shown), f" and {more} more" if more
                else "")
        mark_prepared(self.save_folder, self.options, self.manifests)

    def left_out(self, what, count, total):
        """Counts and logs ``count`` of ``total`` items of ``what`` left
        out because of silent audio."""
        if count:
            self.dropped[what] = self.dropped.get(what, 0) + count
            logger.warning("%s: %d of %d left out (silent audio)", what,
                           count, total)

    def _resolve(self, path):
        return path.replace("$data_root", self.save_folder)

    def _filter(self, items, what, usable):
        """``usable(item)`` (an item, possibly changed, or a falsy value)
        over ``items`` with a progress bar.  Unusable files are collected
        so that one error names all of them, not only the first."""
        kept, bad = [], []
        for item in tqdm(items, desc=f"checking {what}", disable=None):
            try:
                item = usable(item)
            except DataError as err:
                bad.append(str(err))
                continue
            if item:
                kept.append(item)
        if bad:
            more = f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
            raise DataError(bad[0] if len(bad) == 1 else
                            f"{len(bad)} unusable files: "
                            + "; ".join(bad[:SHOWN]) + more)
        self.left_out(what, len(items) - len(kept), len(items))
        if items and not kept:
            raise DataError(f"{what}: every file is silent (RMS below "
                            f"{SILENT_RMS:g} of full scale); check the "
                            "recordings")
        return kept


def run_command(parser, function, argv=None):
    """Runs ``function`` with the options ``parser`` reads from ``argv``.

    A :class:`DataError` ends the program with its message on one line
    and exit status 1, not a traceback: it names the file and the fix,
    which is all a user needs.
    """
    options = vars(parser.parse_args(argv))
    try:
        function(**options)
    except DataError as err:
        message = " ".join(str(err).split("\n"))
        parser.exit(1, f"{parser.prog}: error: {message}\n")
