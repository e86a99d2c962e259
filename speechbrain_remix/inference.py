"""Enhance recordings with a trained model: a SpeechBrain inference
interface.

From an exported folder (``speechbrain-remix export RUN_DIR OUT_DIR``) in
SpeechBrain's pretrained layout, or straight from a ``train.py`` run
folder::

    from speechbrain_remix.inference import RemixEnhancer
    enhancer = RemixEnhancer.from_hparams(source="pretrained/remixit_demo")
    enhancer = RemixEnhancer.from_run("results/demo/remixit")
    enhancer.enhance_file("noisy.flac", "enhanced.flac")

A local folder is never looked up on a model hub: ``from_hparams`` accepts
only an existing folder and fetches with the network disabled.

Policies (``enhance_file``):

* **any sampling rate**: the input is resampled to the model's rate and
  the output back to the input's (``keep_model_rate=True`` keeps the
  model's rate);
* **multi-channel input**: ``channels="downmix"`` (default) averages the
  channels to mono, with a warning; ``channels="each"`` enhances every
  channel on its own and writes as many channels;
* **long recordings**: windows of ``window_seconds`` overlapping by
  ``overlap_seconds`` are enhanced one at a time and joined by a
  raised-sine crossfade (:mod:`speechbrain_remix.overlap_add`): memory is
  bounded by the window, not the recording.  A recording shorter than the
  window is enhanced whole;
* **the noise estimate** on request (``noise_path``): what the model
  assigns to the noise outputs (the mixture minus the speech estimate);
* **streaming** (``streaming=True``, a causal model only): the recording
  is read, enhanced and written block by block, as on a device, with the
  model's state carried between blocks; the output equals the model's
  offline output (:mod:`speechbrain_remix.streaming`).
"""

import logging
import math
import os

import numpy as np
import soundfile as sf
import torch
import torchaudio
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.fetching import FetchConfig

from speechbrain_remix.apply import separate
from speechbrain_remix.data import DataError
from speechbrain_remix.overlap_add import OverlapAdd, window_starts
from speechbrain_remix.streaming import StreamingSeparator

logger = logging.getLogger(__name__)
CHANNEL_POLICIES = ("downmix", "each")
UNORDERED_WARNING = (
    "this model was trained from scratch, so its outputs come in no fixed "
    "order: output 0, written as the speech, is the speech on some "
    "recordings only (in the replication, a Self-Remixing model's output 0 "
    "held it on 11 to 52 of 60 test files, depending on the seed). Write "
    "the rest of the mixture too (speechbrain-remix enhance --noise, or "
    "enhance_file(..., noise_path=...): a two-output model's other output, "
    "the sum of the others otherwise) and keep whichever is speech, or "
    "train RemixIT from a supervised teacher, whose output 0 is the speech")


class RemixEnhancer(Pretrained):
    """Applies any model trained here as its evaluation did: a separation
    model gets mean/std normalization and mixture consistency
    (:func:`~speechbrain_remix.apply.separate`) and its first output is
    the speech; a model with ``outputs_speech`` (the latent-space
    enhancer) returns speech itself.  A model trained from scratch has
    its outputs in no fixed order (``unordered_outputs``): loading one
    warns that output 0 is the speech on some recordings only.

    ``hparams`` needs ``sample_rate``; ``modules`` needs ``model``.

    Example
    -------
    >>> from speechbrain_remix.models import SudoRmRf
    >>> model = SudoRmRf(num_blocks=1, enc_num_basis=16, out_channels=8,
    ...                  in_channels=16, upsampling_depth=2, groups=2)
    >>> enhancer = RemixEnhancer(modules={"model": model},
    ...                          hparams={"sample_rate": 8000},
    ...                          run_opts={"device": "cpu"})
    >>> enhancer.enhance_batch(torch.randn(2, 1600)).shape
    torch.Size([2, 1600])
    >>> enhancer.separate_batch(torch.randn(2, 1600)).shape
    torch.Size([2, 2, 1600])
    """

    HPARAMS_NEEDED = ["sample_rate"]
    MODULES_NEEDED = ["model"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.unordered_outputs:
            logger.warning(UNORDERED_WARNING)

    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml",
                     **kwargs):
        """Loads an exported model folder (SpeechBrain's pretrained
        layout: ``hyperparams.yaml`` and ``model.ckpt``).  Only a local
        folder: a path that does not exist is an error, never a hub id."""
        source = os.fspath(source)
        if not os.path.isdir(source):
            raise FileNotFoundError(
                f"{source}: no such model folder (speechbrain-remix loads "
                "local folders only; write one with speechbrain-remix "
                "export RUN_DIR OUT_DIR)")
        source = os.path.realpath(source)
        if not os.path.isfile(os.path.join(source, hparams_file)):
            raise FileNotFoundError(
                f"{source}: no {hparams_file}; give an exported model "
                "folder, or load a train.py run with from_run")
        kwargs.setdefault("fetch_config", FetchConfig(allow_network=False))
        return super().from_hparams(source, hparams_file=hparams_file,
                                    **kwargs)

    @classmethod
    def from_run(cls, run_dir, device="cpu"):
        """Loads the model a ``train.py`` run's evaluation selected (see
        :func:`speechbrain_remix.runs.load_run`)."""
        from speechbrain_remix.runs import load_run, outputs_unordered

        model, hparams, _ = load_run(run_dir, device)
        return cls(modules={"model": model},
                   hparams={"sample_rate": hparams["sample_rate"],
                            "unordered_outputs": outputs_unordered(hparams)},
                   run_opts={"device": device})

    @classmethod
    def load(cls, path, device="cpu"):
        """An exported folder or a run folder, whichever ``path`` is."""
        from speechbrain_remix.runs import is_run_folder

        if is_run_folder(path):
            return cls.from_run(path, device)
        return cls.from_hparams(path, run_opts={"device": device})

    @property
    def sample_rate(self):
        return int(self.hparams.sample_rate)

    @property
    def unordered_outputs(self):
        """Whether the model's outputs come in no fixed order (trained from
        scratch): then output 0 is the speech on some recordings only."""
        return bool(getattr(self.hparams, "unordered_outputs", False))

    # ------------------------------------------------------------------
    # tensors at the model's rate
    @torch.no_grad()
    def separate_batch(self, mixtures):
        """``[B, T]`` mixtures -> ``[B, 2, T]`` ``[speech, noise]``
        estimates, in the mixtures' scale; a model with more outputs than
        two has its noise outputs summed (they add up to the mixture
        minus the speech, Eq. 1 of RemixIT)."""
        mixtures = mixtures.to(self.device).float()
        if getattr(self.mods.model, "outputs_speech", False):
            speech = self.mods.model(mixtures)
        else:
            speech = separate(self.mods.model, mixtures)[:, 0]
        return torch.stack([speech, mixtures - speech], 1).cpu()

    def enhance_batch(self, noisy, lengths=None):
        """``[B, T]`` noisy waveforms at the model's rate -> ``[B, T]``
        speech estimates.  ``lengths`` (relative, SpeechBrain's
        convention) enhances each waveform on its own length only and
        leaves the padding silent."""
        if lengths is None:
            return self.separate_batch(noisy)[:, 0]
        out = torch.zeros(noisy.shape)
        for b, rel in enumerate(lengths):
            n = int(round(float(rel) * noisy.shape[1]))
            out[b, :n] = self.separate_batch(noisy[b:b + 1, :n])[0, 0]
        return out

    def forward(self, noisy, lengths=None):
        return self.enhance_batch(noisy, lengths)

    # ------------------------------------------------------------------
    # files of any rate, channel count and length
    def enhance_file(self, path, output_path=None, noise_path=None,
                     keep_model_rate=False, channels="downmix",
                     window_seconds=20.0, overlap_seconds=1.0,
                     streaming=False, block_ms=None):
        """Enhances one recording (any format libsndfile reads).

        Arguments
        ---------
        path : str
            The noisy recording.
        output_path : str, optional
            Where to write the speech estimate (format from the
            extension, the input's sample format where it allows).  Without
            it, the estimate is returned as a tensor.
        noise_path : str, optional
            Where to write the noise estimate as well.
        keep_model_rate : bool
            Write at the model's rate instead of the input's.
        channels : str
            ``"downmix"`` or ``"each"`` (see the module's docstring).
        window_seconds, overlap_seconds : float
            Windows of long recordings and their crossfade.
        streaming : bool
            Enhance as a device would, block by block with a causal
            model's carried state
            (:class:`~speechbrain_remix.streaming.StreamingSeparator`):
            the output equals the causal model's offline output.  The
            recording must be at the model's rate.
        block_ms : float, optional
            Milliseconds per streamed block, rounded up to the model's
            block granularity (default: that granularity).

        Returns
        -------
        str or torch.Tensor
            ``output_path``, or the estimate (``[T]``, or ``[C, T]`` with
            ``channels="each"`` on a multi-channel input).
        """
        if channels not in CHANNEL_POLICIES:
            raise ValueError(f"channels={channels!r}; use one of "
                             f"{CHANNEL_POLICIES}")
        try:
            reader = sf.SoundFile(path)
        except Exception as err:  # libsndfile raises many kinds
            raise DataError(f"{path}: cannot read audio ({err})") from err
        with reader:
            if reader.frames <= 0:
                raise DataError(f"{path}: empty audio file")
            if reader.channels > 1 and channels == "downmix":
                logger.warning("%s: %d channels, downmixed to mono (channels"
                               "='each' enhances each)", path,
                               reader.channels)
            if streaming:
                out_rate = reader.samplerate
                chunks = self._streamed(reader, path, channels, block_ms)
            else:
                out_rate = (self.sample_rate if keep_model_rate
                            else reader.samplerate)
                chunks = self._windowed(reader, path, out_rate, channels,
                                        window_seconds, overlap_seconds)
            return _write_all(chunks, [output_path, noise_path], out_rate,
                              reader)

    def streaming_separator(self, block_ms=None):
        """A :class:`~speechbrain_remix.streaming.StreamingSeparator` for
        this model, ``block_ms`` milliseconds per block (rounded up to the
        model's granularity), after checking the model can stream."""
        model = self.mods.model
        if not hasattr(model, "stream_block"):
            raise ValueError(
                f"{type(model).__name__} is not causal, so it cannot "
                "stream: enhance without streaming, or train a causal "
                "student (hparams/remixit_causal_demo.yaml)")
        unit = model.stream_block
        block = unit
        if block_ms is not None:
            block = max(1, math.ceil(block_ms * self.sample_rate / 1000
                                     / unit)) * unit
        return StreamingSeparator(model.eval(), block)

    def _streamed(self, reader, path, channels, block_ms):
        """``[2, C, n]`` speech and noise, block by block."""
        if reader.samplerate != self.sample_rate:
            raise DataError(
                f"{path}: {reader.samplerate} Hz; streaming runs at the "
                f"model's {self.sample_rate} Hz (enhance without streaming,"
                " which resamples, or resample the file first)")
        separator = self.streaming_separator(block_ms)
        start = 0
        for block in reader.blocks(separator.block, dtype="float32",
                                   always_2d=True):
            wav = self._checked(block, path, start, reader.samplerate)
            start += block.shape[0]
            if channels == "downmix":
                wav = wav.mean(0, keepdim=True)
            est = separator.push(wav.to(self.device))
            yield est.transpose(0, 1).cpu()
        yield separator.flush().transpose(0, 1).cpu()

    def _windowed(self, reader, path, out_rate, channels, window_seconds,
                  overlap_seconds):
        """``[2, C, n]`` speech and noise, window by window (crossfaded)."""
        rate, total = reader.samplerate, reader.frames
        # windows on a grid where both rates have whole samples (10 ms for
        # 44.1 kHz <-> 16 kHz), so windows map to whole output samples
        unit = rate // math.gcd(rate, out_rate)
        window = max(2, round(window_seconds * rate / unit)) * unit
        overlap = min(round(overlap_seconds * rate / unit) * unit,
                      window // 2 // unit * unit)
        join = OverlapAdd(overlap * out_rate // rate)
        starts = window_starts(total, window, overlap)
        for k, start in enumerate(starts):
            reader.seek(start)
            block = reader.read(min(window, total - start), dtype="float32",
                                always_2d=True)
            wav = self._checked(block, path, start, rate)
            if channels == "downmix":
                wav = wav.mean(0, keepdim=True)
            est = self._estimate(wav, rate, out_rate)  # [2, C, n_out]
            if len(starts) > 1:
                release_free_memory()  # memory bounded by the window
            yield join.push(est, last=k == len(starts) - 1)

    @staticmethod
    def _checked(block, path, start, rate):
        """``[n, C]`` samples read at ``start`` -> ``[C, n]`` tensor."""
        if not np.isfinite(block).all():
            raise DataError(f"{path}: NaN or inf samples near "
                            f"{start / rate:.1f} s; repair or re-export the "
                            "file")
        return torch.from_numpy(block.T.copy())

    def _estimate(self, wav, rate, out_rate):
        """Speech and noise of ``wav`` ``[C, n]`` at ``rate``: ``[2, C,
        n * out_rate / rate]``, at ``out_rate``."""
        n_out = -(-wav.shape[-1] * out_rate // rate)  # ceil
        x = wav
        if rate != self.sample_rate:
            x = torchaudio.functional.resample(x, rate, self.sample_rate)
        est = self.separate_batch(x).transpose(0, 1)  # [2, C, n_model]
        if out_rate != self.sample_rate:
            est = torchaudio.functional.resample(est, self.sample_rate,
                                                 out_rate)
        if est.shape[-1] < n_out:
            est = torch.nn.functional.pad(est, (0, n_out - est.shape[-1]))
        return est[..., :n_out]


def release_free_memory():
    """Returns the C heap's free pages to the system (glibc's
    ``malloc_trim``; a no-op where the C library is not glibc).

    Called after each window of a long recording, it keeps the peak
    memory flat however long the recording: freed window tensors would
    otherwise fragment the heap, and the peak crept up with the number of
    windows (219 MB for 1 minute, 298 MB for 10, demo model, measured).
    It replaced fixing glibc's mmap threshold at 128 KiB, which bounded
    memory too but made every large tensor a fresh, page-faulted mapping:
    2-3x the compute (RTF 0.148 against 0.073 at 10 minutes for the
    paper's model, measured)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _write_all(chunks, paths, rate, reader):
    """Writes the speech (and noise) of ``[2, C, n]`` ``chunks`` to
    ``paths`` as they come, or returns the speech (``paths[0]`` None).
    Never leaves half a file behind."""
    writers, kept = [None, None], []
    try:
        for chunk in chunks:
            if paths[0] is None:
                kept.append(chunk[0])
            for i, out in enumerate(paths):
                if out is None:
                    continue
                if writers[i] is None:
                    writers[i] = _open_writer(out, rate, chunk.shape[1],
                                              reader)
                _write(writers[i], chunk[i], out)
    except BaseException:
        for writer, out in zip(writers, paths):
            if writer is not None:
                writer.close()
                os.remove(out)
        raise
    for writer in writers:
        if writer is not None:
            writer.close()
    if paths[0] is not None:
        return paths[0]
    speech = torch.cat(kept, -1)
    return speech[0] if speech.shape[0] == 1 else speech


def _open_writer(path, rate, channels, like):
    """A writer for ``path`` in the format its extension names, with the
    input's sample format where that format allows it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".",
                exist_ok=True)
    ext = os.path.splitext(path)[1][1:].upper()
    fmt = {"OGA": "OGG", "AIF": "AIFF"}.get(ext, ext)
    if fmt not in sf.available_formats():
        raise ValueError(f"{path}: libsndfile cannot write '.{ext.lower()}'"
                         " files; use .wav or .flac")
    subtype = like.subtype if sf.check_format(fmt, like.subtype) else None
    return sf.SoundFile(path, "w", rate, channels, subtype=subtype,
                        format=fmt)


def _write(writer, chunk, path):
    """Writes ``[C, n]``; integer sample formats are clipped to full scale
    (libsndfile would wrap around), with a warning."""
    data = chunk.T.numpy()
    if not writer.subtype.startswith(("FLOAT", "DOUBLE")):
        over = np.abs(data) > 1.0
        if over.any():
            logger.warning("%s: %d samples above full scale clipped",
                           path, int(over.sum()))
            data = np.clip(data, -1.0, 1.0)
    writer.write(data)


#: the name this class had before it became a SpeechBrain interface
Enhancer = RemixEnhancer


def main(argv=None):
    """``python -m speechbrain_remix.inference --run RUN --input IN
    --output DIR``: the same as ``speechbrain-remix enhance RUN IN --out
    DIR``."""
    import argparse

    from speechbrain_remix.cli import main as cli_main

    parser = argparse.ArgumentParser(description="Enhance audio files "
                                     "(see speechbrain-remix enhance).")
    parser.add_argument("--run", required=True,
                        help="train.py output folder or exported model")
    parser.add_argument("--input", required=True, nargs="+",
                        help="files or folders")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    return cli_main(["enhance", args.run, *args.input, "--out", args.output,
                     "--device", args.device])


if __name__ == "__main__":
    raise SystemExit(main())
