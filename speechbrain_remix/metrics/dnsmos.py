"""DNSMOS P.835 (Reddy et al., ICASSP 2022): reference-free estimates of
the mean opinion scores of listeners for the speech signal (SIG), the
background noise (BAK) and the overall quality (OVRL), each on the 1-5
scale of ITU-T P.835, and of P.808 overall quality.

They need no clean speech, so they score (and select checkpoints on) a
user's own noisy recordings, as the CHiME-7 UDASE baseline selects its
RemixIT checkpoints.  The models are Microsoft's ONNX networks shipped
with the ``speechmos`` package; it is imported when first used (it
imports ``librosa``, which takes seconds).

Metric sets:

* :class:`DNSMOSMetrics` (``eval_metrics: dnsmos``): DNSMOS only; the test
  and validation manifests need only ``mix_wav``;
* :class:`EnhancementDNSMOSMetrics` (``eval_metrics: enhancement_dnsmos``):
  SI-SDR, SI-SDRi, PESQ, STOI against ``clean_wav``, plus DNSMOS.
"""

import numpy as np
import torch

from speechbrain_remix.metrics.enhancement import (
    METRICS,
    EnhancementMetrics,
)

#: the sample rate the DNSMOS networks were trained at
DNSMOS_RATE = 16000
#: the networks' input (seconds): longer clips are scored by windows of
#: this length every second and averaged, shorter ones repeated to it
INPUT_SECONDS = 9.01
DNSMOS_METRICS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
#: ``speechmos``' key of each of our names
_KEYS = {"dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos",
         "dnsmos_ovrl": "ovrl_mos", "dnsmos_p808": "p808_mos"}


def dnsmos(wav, sample_rate):
    """DNSMOS P.835 (SIG, BAK, OVRL) and P.808 of one signal.

    The signal is resampled to 16 kHz (the models' rate) when it has
    another rate.  It is divided by its peak only when the peak exceeds 1:
    ``speechmos`` refuses values outside ``[-1, 1]``, and DNSMOS is not
    level-invariant (it judges loudness as listeners do), so it is not
    normalised otherwise.  ``speechmos`` scores 9.01 s windows every
    second and averages them; a clip shorter than 9.01 s is repeated
    (concatenated with itself) until it is that long, which is what the
    DNSMOS reference script does too.

    Arguments
    ---------
    wav : torch.Tensor or numpy.ndarray
        One signal, 1-D (a multi-channel one is an error).
    sample_rate : int
        Its rate (Hz).

    Returns
    -------
    dict
        ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl`` (P.835) and
        ``dnsmos_p808`` (P.808 overall), floats in about ``[1, 5]``.

    Example
    -------
    >>> t = torch.arange(16000) / 16000
    >>> scores = dnsmos(0.1 * torch.sin(2 * torch.pi * 440 * t), 16000)
    >>> sorted(scores)
    ['dnsmos_bak', 'dnsmos_ovrl', 'dnsmos_p808', 'dnsmos_sig']
    >>> all(1.0 <= v <= 5.0 for v in scores.values())
    True
    """
    from speechmos import dnsmos as speechmos_dnsmos  # seconds to import

    wav = torch.as_tensor(wav).detach().to("cpu", torch.float32)
    if wav.dim() != 1:
        raise ValueError(f"dnsmos: a 1-D signal, not {tuple(wav.shape)}")
    if sample_rate != DNSMOS_RATE:
        import torchaudio.functional as AF

        wav = AF.resample(wav, sample_rate, DNSMOS_RATE)
    audio = wav.numpy()
    if not np.isfinite(audio).all():
        raise ValueError("dnsmos: the signal has NaN or inf samples")
    peak = float(np.abs(audio).max(initial=0.0))
    if peak > 1.0:
        audio = audio / peak
    scores = speechmos_dnsmos.run(audio, DNSMOS_RATE)
    return {name: float(scores[key]) for name, key in _KEYS.items()}


class DNSMOSMetrics:
    """The reference-free metric set: DNSMOS P.835 of each system's speech
    estimate; the test and validation manifests need only ``mix_wav``
    (``select_by: dnsmos_ovrl`` selects checkpoints on noisy recordings).

    Example
    -------
    >>> ms = DNSMOSMetrics(16000)
    >>> ms.names, ms.columns, ms.reference, ms.separated
    (('dnsmos_sig', 'dnsmos_bak', 'dnsmos_ovrl'), ('mix_wav',), 'mix', False)
    """

    names = DNSMOS_METRICS
    reference = "mix"  # every batch has it: no clean speech needed
    columns = ("mix_wav",)
    separated = False

    def __init__(self, sample_rate, n_speakers=None):
        self.sample_rate = sample_rate

    def score(self, estimate, batch, b, length):
        """DNSMOS of the estimate (1-D) of utterance ``b`` of ``batch``."""
        scores = dnsmos(estimate[:length], self.sample_rate)
        return {name: scores[name] for name in self.names}


class EnhancementDNSMOSMetrics(EnhancementMetrics):
    """The intrusive enhancement metrics (SI-SDR, SI-SDRi, PESQ, STOI
    against ``clean_wav``) and DNSMOS P.835, for test sets with references.

    Example
    -------
    >>> EnhancementDNSMOSMetrics(16000).names[3:5]
    ('stoi', 'dnsmos_sig')
    """

    names = METRICS + DNSMOS_METRICS

    def score(self, estimate, batch, b, length):
        scores = super().score(estimate, batch, b, length)
        mos = dnsmos(estimate[:length], self.sample_rate)
        return {**scores, **{name: mos[name] for name in DNSMOS_METRICS}}
