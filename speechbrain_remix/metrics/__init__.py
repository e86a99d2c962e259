"""Metric sets, small objects sharing one interface (``names``,
``columns``, ``reference``, ``separated``, ``score``), chosen by the YAML's
``eval_metrics``: ``enhancement`` (default), ``composite`` (enhancement
plus CSIG, CBAK and COVL of Hu & Loizou, 2008), ``separation`` (speakers
among the references, with permutation solving), ``fuss`` (universal
separation), ``snr_frames`` (an SNR predictor's frame-level error),
``dnsmos`` (DNSMOS P.835, reference-free: no clean speech needed) or
``enhancement_dnsmos`` (enhancement plus DNSMOS)."""

from speechbrain_remix.metrics.composite import (
    COMPOSITE_METRICS,
    CompositeMetrics,
)
from speechbrain_remix.metrics.dnsmos import (
    DNSMOS_METRICS,
    DNSMOSMetrics,
    EnhancementDNSMOSMetrics,
)
from speechbrain_remix.metrics.enhancement import (
    METRICS,
    EnhancementMetrics,
    SeparationMetrics,
    enhancement_metrics,
)
from speechbrain_remix.metrics.fuss import FUSS_METRICS, FussMetrics
from speechbrain_remix.metrics.snr_frames import (
    SNR_FRAME_METRICS,
    SNRFrameMetrics,
)

SETS = {"enhancement": EnhancementMetrics, "separation": SeparationMetrics,
        "fuss": FussMetrics, "composite": CompositeMetrics,
        "snr_frames": SNRFrameMetrics, "dnsmos": DNSMOSMetrics,
        "enhancement_dnsmos": EnhancementDNSMOSMetrics}

__all__ = ["METRICS", "FUSS_METRICS", "COMPOSITE_METRICS",
           "SNR_FRAME_METRICS", "SNRFrameMetrics", "DNSMOS_METRICS",
           "DNSMOSMetrics", "EnhancementDNSMOSMetrics",
           "EnhancementMetrics", "SeparationMetrics", "FussMetrics",
           "CompositeMetrics", "enhancement_metrics",
           "eval_metrics", "metric_set"]


def eval_metrics(hparams):
    """The name of the metric set ``hparams`` (a dict or a namespace) asks
    for."""
    get = hparams.get if isinstance(hparams, dict) else (
        lambda key, default=None: getattr(hparams, key, default))
    return get("eval_metrics", "enhancement")


def metric_set(hparams):
    """The metric set object of ``hparams``.

    Example
    -------
    >>> metric_set({"eval_metrics": "fuss", "sample_rate": 16000}).names[-1]
    'TRF'
    """
    get = hparams.get if isinstance(hparams, dict) else (
        lambda key, default=None: getattr(hparams, key, default))
    name = eval_metrics(hparams)
    if name not in SETS:
        raise ValueError(f"eval_metrics: {name!r}; use one of {list(SETS)}")
    return SETS[name](get("sample_rate", 16000), get("n_speakers"))
