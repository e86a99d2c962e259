"""Enhancement metrics of a speech estimate against its clean reference
(SI-SDR, SI-SDR improvement, wide-band PESQ, STOI), and the same for
separated speakers after permutation solving."""

import logging
import math

import numpy as np

from speechbrain_remix.losses import si_sdr
from speechbrain_remix.metrics.fuss import assign

logger = logging.getLogger(__name__)

METRICS = ("si_sdr", "si_sdri", "pesq", "stoi")


def enhancement_metrics(estimate, clean, mixture, sample_rate):
    """SI-SDR, SI-SDR improvement, PESQ (wide band at 16 kHz) and STOI.

    All inputs are 1-D tensors of the same length.  PESQ is NaN where the
    reference has no detectable speech.
    """
    from pesq import pesq as pesq_fn
    from pystoi import stoi as stoi_fn

    value = si_sdr(estimate, clean).item()
    base = si_sdr(mixture, clean).item()
    ref, deg = clean.numpy().astype(np.float64), estimate.numpy()
    mode = "wb" if sample_rate == 16000 else "nb"
    try:
        pesq_value = pesq_fn(sample_rate, ref, deg.astype(np.float64), mode)
    except Exception as err:  # NoUtterancesError, buffer too short...
        logger.warning("PESQ undefined (%s); recording NaN", err)
        pesq_value = math.nan
    stoi_value = stoi_fn(ref, deg, sample_rate, extended=False)
    return {
        "si_sdr": value,
        "si_sdri": value - base,
        "pesq": pesq_value,
        "stoi": float(stoi_value),
    }


class EnhancementMetrics:
    """The metric set of speech enhancement: each system outputs speech
    ``[B, T]``, scored against ``clean_wav``.

    Example
    -------
    >>> import torch
    >>> ms = EnhancementMetrics(16000)
    >>> ms.names, ms.columns, ms.separated
    (('si_sdr', 'si_sdri', 'pesq', 'stoi'), ('mix_wav', 'clean_wav'), False)
    """

    names = METRICS
    reference = "clean"  # the batch attribute the metrics need
    columns = ("mix_wav", "clean_wav")  # test manifest audio columns
    separated = False  # systems output speech only, [B, T]

    def __init__(self, sample_rate, n_speakers=None):
        self.sample_rate = sample_rate
        self.n_speakers = n_speakers

    def score(self, estimate, batch, b, length):
        """Metrics of utterance ``b`` of ``batch`` (first ``length``
        samples) for its estimate (1-D)."""
        return enhancement_metrics(
            estimate, batch.clean.data[b, :length], batch.mix.data[b, :length],
            self.sample_rate,
        )


class SeparationMetrics(EnhancementMetrics):
    """Speech separation: the model's outputs ``[N, T]`` are assigned to
    the first ``n_speakers`` reference sources (highest total SI-SDR) and
    the enhancement metrics are averaged over the speakers."""

    reference = "sources"
    columns = ("mix_wav", "source_wavs")
    separated = True

    def score(self, estimate, batch, b, length):
        refs = batch.sources.data[b, : self.n_speakers, :length]
        mix = batch.mix.data[b, :length]
        _, order = assign(estimate, refs, return_order=True)
        rows = [enhancement_metrics(estimate[i], ref, mix, self.sample_rate)
                for i, ref in zip(order, refs)]
        return {m: float(np.nanmean([r[m] for r in rows])) for m in METRICS}
