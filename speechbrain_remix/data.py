"""Checked audio I/O, CSV manifests and dataset pipelines.

Manifests are CSV files with the columns ``ID, duration, mix_wav`` and,
where known, ``clean_wav, noise_wav`` (``noise_wav`` alone for noise sets).
Paths may start with ``$data_root``.  Everything that reads them fails
early with a message naming the file and the fix, rather than training on
something wrong.
"""

import csv
import functools
import logging
import math
import os

import numpy as np
import soundfile as sf
import speechbrain as sb
import torch

logger = logging.getLogger(__name__)

AUDIO_KEYS = ("mix_wav", "clean_wav", "noise_wav")


class DataError(ValueError):
    """Bad input data: the message names the file and the fix."""


def read_audio(path, sample_rate):
    """Reads a mono file at ``sample_rate`` as a float32 tensor ``[T]``.

    Arguments
    ---------
    path : str
        Audio file (any format libsndfile reads: wav, flac, ogg, ...).
    sample_rate : int
        Expected sampling rate; files are never resampled silently.

    Returns
    -------
    torch.Tensor
        The waveform, shape ``[T]``.

    Raises
    ------
    DataError
        Missing, unreadable, empty, multi-channel or non-finite audio, or
        a different sampling rate.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> sf.write(path, np.zeros(800, dtype="float32"), 8000)
    >>> read_audio(path, 8000).shape
    torch.Size([800])
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: audio file not found; check the manifest "
                        "paths and the data_root/data_folder setting")
    try:
        wav, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile gives many error types
        raise DataError(f"{path}: cannot read audio ({err}); re-create or "
                        "convert the file to wav/flac") from err
    if wav.shape[1] != 1:
        raise DataError(f"{path}: {wav.shape[1]} channels, expected mono; "
                        "downmix it (e.g. sox in.wav out.wav remix -)")
    if sr != sample_rate:
        raise DataError(f"{path}: sampled at {sr} Hz, expected {sample_rate}"
                        f" Hz; resample it (e.g. sox in.wav -r {sample_rate}"
                        " out.wav) or run the data preparation again")
    if wav.shape[0] == 0:
        raise DataError(f"{path}: empty audio file; remove it from the "
                        "manifest")
    if not np.isfinite(wav).all():
        raise DataError(f"{path}: contains NaN or inf samples; fix or remove"
                        " the file")
    return torch.from_numpy(wav[:, 0].copy())


def write_manifest(path, rows, fields):
    """Writes ``rows`` (dicts) as a CSV manifest, atomically.

    The file appears only once complete, so an interrupted preparation
    never leaves a truncated manifest that would be taken as done.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row[k] for k in fields})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_manifest(path, data_root, required=("mix_wav",), min_duration=None,
                   short_clips="error"):
    """Validates a manifest and returns its rows (dicts, paths resolved).

    Arguments
    ---------
    path : str
        CSV manifest.
    data_root : str
        Replaces ``$data_root`` in the paths.
    required : sequence of str
        Audio columns that must be present and non-empty.
    min_duration : float, optional
        Every row must be at least this long (seconds), e.g. the crop.
    short_clips : str
        ``error``: a shorter row is an error naming it; ``drop``: shorter
        rows are left out, and their number logged (for corpora whose
        clip lengths vary, e.g. WHAM!, LibriSpeech, VCTK).

    Returns
    -------
    list of dict
        The rows.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: manifest not found; run the data "
                        "preparation (drop --skip_prep) or fix the path")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        rows = list(reader)
    virtual = "clean_wav" in fields and "noise_wav" in fields
    missing = [c for c in ("ID", "duration", *required) if c not in fields
               and not (c == "mix_wav" and virtual)]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; a manifest "
                        "needs ID, duration and " + ", ".join(required))
    if not rows:
        raise DataError(f"{path}: manifest has no rows; check the data "
                        "folder given to the preparation")
    ids = set()
    for line, row in enumerate(rows, start=2):
        where = f"{path}, line {line}"
        if row["ID"] in ids:
            raise DataError(f"{where}: duplicate ID {row['ID']!r}")
        ids.add(row["ID"])
        try:
            duration = float(row["duration"])
        except (TypeError, ValueError):
            raise DataError(f"{where}: duration {row['duration']!r} is not a"
                            " number") from None
        if not math.isfinite(duration) or duration <= 0:
            raise DataError(f"{where}: duration must be positive")
        if min_duration is not None and duration < min_duration:
            if short_clips == "drop":
                row["_drop"] = True
                continue
            raise DataError(
                f"{where}: {row['ID']} lasts {duration:.2f} s, shorter than "
                f"the {min_duration:.2f} s training crop; lower the crop "
                "(crop_seconds), drop short clips from the manifest, or set "
                "short_clips: drop"
            )
        for key in required:
            if key == "mix_wav" and is_virtual(row):
                continue  # synthesised from clean_wav + noise_wav
            if not row.get(key):
                raise DataError(f"{where}: empty {key}")
        for key in AUDIO_KEYS:
            if row.get(key):
                row[key] = row[key].replace("$data_root", data_root)
                if not os.path.isfile(row[key]):
                    raise DataError(
                        f"{where}: {key} {row[key]} does not exist; check "
                        "data_root/data_folder or re-run the preparation"
                    )
        if row.get("source_wavs"):  # reference sources, ";"-separated
            paths = [p.replace("$data_root", data_root)
                     for p in row["source_wavs"].split(";")]
            for p in paths:
                if not os.path.isfile(p):
                    raise DataError(f"{where}: source {p} does not exist")
            row["source_wavs"] = ";".join(paths)
    kept = [row for row in rows if not row.pop("_drop", False)]
    if len(kept) < len(rows):
        logger.warning("%s: %d of %d clips shorter than %.2f s left out",
                       path, len(rows) - len(kept), len(rows), min_duration)
    if not kept:
        raise DataError(f"{path}: every clip is shorter than the "
                        f"{min_duration:.2f} s crop; lower crop_seconds")
    return kept


def is_virtual(row):
    """A row whose mixture is ``clean + noise_gain * noise`` (no file)."""
    return not row.get("mix_wav") and bool(row.get("clean_wav")) and bool(
        row.get("noise_wav"))


def noise_excerpt(noise, length, start=0):
    """``length`` samples of ``noise`` from ``start``, tiled if too short.

    Example
    -------
    >>> noise_excerpt(torch.arange(3.0), 5, start=1).tolist()
    [1.0, 2.0, 0.0, 1.0, 2.0]
    """
    reps = (start + length) // noise.numel() + 1
    return noise.repeat(reps)[start : start + length]


def make_dataset(path, data_root, sample_rate, required=("mix_wav",),
                 min_duration=None, short_clips="error", max_sources=None):
    """A ``DynamicItemDataset`` over a checked manifest.

    It provides ``id`` and one waveform key per audio column present
    (``mix``, ``clean``, ``noise``), each read with :func:`read_audio`, and
    ``noise_only`` (0 or 1) from a column of that name.
    A manifest without ``mix_wav`` but with ``clean_wav`` and ``noise_wav``
    describes *virtual* mixtures, synthesised when read:
    ``mix = clean + noise_gain * noise[noise_start:]`` (columns
    ``noise_gain``, default 1, and ``noise_start`` in samples, default 0;
    a column ``snr`` in dB sets the gain from the two signals' energies
    instead), so that large generated corpora need no mixture files.

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> sf.write(os.path.join(root, "m.wav"), np.ones(160, "float32"), 16000)
    >>> write_manifest(os.path.join(root, "d.csv"),
    ...                [{"ID": "a", "duration": 0.01,
    ...                  "mix_wav": "$data_root/m.wav"}],
    ...                ["ID", "duration", "mix_wav"])
    >>> ds = make_dataset(os.path.join(root, "d.csv"), root, 16000)
    >>> ds[0]["mix"].shape
    torch.Size([160])
    """
    rows = check_manifest(path, data_root, required, min_duration,
                          short_clips)
    data = {}
    for row in rows:
        data[row["ID"]] = dict(
            row, duration=float(row["duration"]),
            noise_gain=float(row.get("noise_gain") or 1.0),
            noise_start=int(row.get("noise_start") or 0),
            snr=float(row["snr"]) if row.get("snr") else None,
        )
    keys = [k for k in AUDIO_KEYS if all(row.get(k) for row in rows)]
    dataset = sb.dataio.dataset.DynamicItemDataset(data)
    if "mix_wav" not in keys and all(is_virtual(row) for row in rows):

        @sb.utils.data_pipeline.takes(
            "clean_wav", "noise_wav", "noise_gain", "noise_start", "snr")
        @sb.utils.data_pipeline.provides("clean", "noise", "mix")
        def synthesise(clean_wav, noise_wav, gain, start, snr,
                       _sr=sample_rate):
            clean = read_audio(clean_wav, _sr)
            noise = noise_excerpt(read_audio(noise_wav, _sr), clean.numel(),
                                  start)
            if snr is not None:  # gain from the energies, at this SNR
                gain = torch.sqrt(clean.pow(2).sum() / (
                    noise.pow(2).sum() + 1e-12) / 10 ** (snr / 10))
            noise = gain * noise
            yield clean
            yield noise
            yield clean + noise

        dataset.add_dynamic_item(synthesise)
        dataset.set_output_keys(["id", "mix", "clean", "noise"])
        return dataset

    for key in keys:
        name = key[: -len("_wav")]

        @sb.utils.data_pipeline.takes(key)
        @sb.utils.data_pipeline.provides(name)
        def pipeline(file, _sr=sample_rate):
            return read_audio(file, _sr)

        dataset.add_dynamic_item(pipeline)
    outputs = ["id"] + [k[: -len("_wav")] for k in keys]
    if all(row.get("source_wavs") for row in rows):

        @sb.utils.data_pipeline.takes("source_wavs")
        @sb.utils.data_pipeline.provides("sources")
        def sources(paths, _sr=sample_rate, _n=max_sources):
            wavs = [read_audio(p, _sr) for p in paths.split(";")]
            n = _n or len(wavs)
            if len(wavs) > n:
                raise DataError(f"{paths}: {len(wavs)} sources, more than "
                                f"max_sources={n}")
            length = max(w.numel() for w in wavs)
            out = torch.zeros(n, length)
            for k, w in enumerate(wavs):
                out[k, : w.numel()] = w
            return out

        dataset.add_dynamic_item(sources)
        outputs.append("sources")
    if all(row.get("noise_only") not in (None, "") for row in rows):

        @sb.utils.data_pipeline.takes("noise_only")
        @sb.utils.data_pipeline.provides("noise_only")
        def noise_only(flag):  # a recording without speech (1) or not (0)
            return torch.tensor(float(flag))

        dataset.add_dynamic_item(noise_only)
        outputs.append("noise_only")
    dataset.set_output_keys(outputs)
    return dataset


def random_crop(wavs, lengths, crop, generator, ids=None):
    """Crops every item of a padded batch to ``crop`` samples at random.

    Arguments
    ---------
    wavs : torch.Tensor
        Padded batch ``[B, T]`` or a list of such tensors cropped alike
        (e.g. mixture, clean and noise of the same items).
    lengths : torch.Tensor
        True lengths in samples, ``[B]``.
    crop : int
        Crop length in samples.
    generator : torch.Generator
        Source of the offsets.
    ids : list of str, optional
        Item names for the error message.

    Returns
    -------
    torch.Tensor or list of torch.Tensor
        Cropped batch(es) ``[B, crop]``.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.arange(10.0).repeat(2, 1)
    >>> random_crop(x, torch.tensor([10, 8]), 4, g).shape
    torch.Size([2, 4])
    """
    single = torch.is_tensor(wavs)
    batch = [wavs] if single else list(wavs)
    lengths = lengths.long().tolist()
    for b, n in enumerate(lengths):
        if n < crop:
            name = ids[b] if ids else f"item {b}"
            raise DataError(
                f"{name}: {n} samples, shorter than the {crop}-sample crop; "
                "lower crop_seconds or remove short clips"
            )
    starts = [
        int(torch.randint(0, n - crop + 1, (1,), generator=generator))
        for n in lengths
    ]
    out = [  # the last axis is time (``[B, T]`` or ``[B, K, T]``)
        torch.stack([w[b, ..., s : s + crop] for b, s in enumerate(starts)])
        for w in batch
    ]
    return out[0] if single else out


def scale_noise(reference, noise, snr_db, eps=1e-9):
    """``noise`` scaled so that ``reference`` is ``snr_db`` above it.

    Only the noise is scaled, never the reference: it is the training
    target (speech, or a pseudo-source in PSE), and SpeechBrain's
    ``AddNoise`` would scale it down as it adds the noise.

    Arguments
    ---------
    reference, noise : torch.Tensor
        ``[B, T]``.
    snr_db : torch.Tensor
        ``[B]``: ``10 log10(||reference||^2 / ||scaled noise||^2)``.

    Example
    -------
    >>> s, n = torch.randn(2, 800), torch.randn(2, 800)
    >>> out = scale_noise(s, n, torch.tensor([0.0, 10.0]))
    >>> snr = 10 * torch.log10(s.pow(2).sum(-1) / out.pow(2).sum(-1))
    >>> torch.allclose(snr, torch.tensor([0.0, 10.0]), atol=1e-4)
    True
    """
    energy = lambda x: x.pow(2).sum(-1, keepdim=True)  # noqa: E731
    snr = torch.as_tensor(snr_db, dtype=reference.dtype,
                          device=reference.device).reshape(-1, 1)
    return noise * torch.sqrt(energy(reference) / (energy(noise) + eps)
                              / 10 ** (snr / 10))


class NoisePool:
    """Random fixed-length excerpts of isolated noise recordings.

    Used for MixIT's extra noise (Section II-B of RemixIT) and for
    in-domain noise remixing (Eq. 17).  Recordings shorter than the
    excerpt are tiled.

    Arguments
    ---------
    manifest : str
        CSV with ``ID, duration, noise_wav``.
    data_root : str
        Replaces ``$data_root``.
    sample_rate : int
        Expected sampling rate.
    """

    def __init__(self, manifest, data_root, sample_rate):
        rows = check_manifest(manifest, data_root, required=("noise_wav",))
        self.files = [row["noise_wav"] for row in rows]
        # A bounded cache: small noise sets stay in memory, large ones
        # (DNS has 65k clips) do not exhaust it.
        self._load = functools.lru_cache(maxsize=512)(
            functools.partial(read_audio, sample_rate=sample_rate)
        )

    def __len__(self):
        return len(self.files)

    def add_to(self, signals, snr_range, generator):
        """``signals`` plus random excerpts at SNRs uniform in
        ``snr_range`` (dB, relative to each signal); returns the noisy
        signals and the SNRs drawn.  Files and offsets are drawn first,
        then the SNRs, all from ``generator``."""
        noise = self.draw(len(signals), signals.shape[-1], generator)
        low, high = snr_range
        snr = low + (high - low) * torch.rand(len(signals),
                                              generator=generator)
        noise = scale_noise(signals, noise.to(signals.device), snr)
        return signals + noise, snr

    def draw(self, batch_size, length, generator):
        """Returns ``[batch_size, length]`` random noise excerpts."""
        picks = torch.randint(len(self.files), (batch_size,),
                              generator=generator)
        out = []
        for i in picks.tolist():
            wav = self._load(self.files[i])
            if wav.numel() < length:
                wav = wav.repeat(length // wav.numel() + 1)
            start = int(torch.randint(0, wav.numel() - length + 1, (1,),
                                      generator=generator))
            out.append(wav[start : start + length])
        return torch.stack(out)
