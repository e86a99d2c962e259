"""Universal sound separation metrics on FUSS (Table 2 of Saijo & Ogawa,
2023, following Wisdom et al., 2021).

A model outputs ``N`` sources for a mixture of ``k <= N`` active references
(FUSS pads with silent ones).  Estimates are assigned to the active
references by the permutation with the highest total SI-SDR, then:

* **1S**: SI-SDR on single-source mixtures (does the model leave a lone
  source alone?);
* **kSi**: SI-SDR improvement over the mixture on ``k``-source mixtures,
  ``k = 2, 3, 4``;
* **MSi**: SI-SDR improvement averaged over multi-source mixtures;
* **TRF** (total reconstruction fidelity): the average over every test
  mixture of its score (1S for single-source ones, SI-SDRi otherwise).
  The paper defines it only as "average performance on all test data";
  this is our reading.

Low-energy estimates are *not* discarded (Sec. 3.6 of the paper).
"""

import itertools

import numpy as np
import torch

from speechbrain_remix.losses import si_sdr


def assign(estimates, references, return_order=False):
    """Best injective assignment of estimates to references.

    Arguments
    ---------
    estimates : torch.Tensor
        ``[N, T]``.
    references : torch.Tensor
        ``[K, T]`` with ``K <= N`` (active references only).

    return_order : bool
        Also return which estimate each reference got.

    Returns
    -------
    torch.Tensor
        SI-SDR of each reference with its assigned estimate, ``[K]``
        (and, with ``return_order``, the estimate indices, a tuple).

    Example
    -------
    >>> refs = torch.randn(2, 200)
    >>> est = torch.stack([refs[1], torch.zeros(200), refs[0]])
    >>> bool((assign(est, refs) > 60).all())
    True
    """
    n, k = estimates.shape[0], references.shape[0]
    if k > n:
        raise ValueError(f"{k} references but only {n} estimates")
    pairs = si_sdr(estimates.unsqueeze(0).expand(k, -1, -1),
                   references.unsqueeze(1).expand(-1, n, -1))  # [K, N]
    best, best_order, best_total = None, None, -float("inf")
    for order in itertools.permutations(range(n), k):
        values = pairs[torch.arange(k), list(order)]
        if values.sum() > best_total:
            best, best_order, best_total = values, order, values.sum()
    return (best, best_order) if return_order else best


def mixture_score(estimates, references, mixture, silence_db=-60.0):
    """Number of active references and the mixture's score: SI-SDR when
    one source is active, mean SI-SDR improvement otherwise.

    A reference is active when its energy is above ``silence_db`` relative
    to the mixture's.  Returns ``(0, nan)`` for a silent mixture.
    """
    energy = references.pow(2).sum(-1)
    active = energy > mixture.pow(2).sum() * 10 ** (silence_db / 10)
    refs = references[active]
    k = int(active.sum())
    if k == 0:
        return 0, float("nan")
    values = assign(estimates, refs)
    if k == 1:
        return 1, float(values[0])
    base = si_sdr(mixture.expand_as(refs), refs)
    return k, float((values - base).mean())


def fuss_summary(scores):
    """1S, 2Si, 3Si, 4Si, MSi and TRF from ``[(k, score)]`` pairs.

    Example
    -------
    >>> fuss_summary([(1, 30.0), (2, 10.0), (3, 8.0)])["MSi"]
    9.0
    """
    scores = [(k, v) for k, v in scores if k > 0]

    def mean(values):
        return float(np.mean(values)) if values else float("nan")

    out = {"1S": mean([v for k, v in scores if k == 1])}
    for k in (2, 3, 4):
        out[f"{k}Si"] = mean([v for kk, v in scores if kk == k])
    out["MSi"] = mean([v for k, v in scores if k >= 2])
    out["TRF"] = mean([v for _, v in scores])
    return out


FUSS_METRICS = ("1S", "2Si", "3Si", "4Si", "MSi", "TRF")


class FussMetrics:
    """The metric set of universal separation (FUSS): every output
    ``[N, T]`` against the reference sources, one score per mixture in the
    column of its number of active sources (:func:`mixture_score`)."""

    names = FUSS_METRICS
    reference = "sources"
    columns = ("mix_wav", "source_wavs")
    separated = True

    def __init__(self, sample_rate=None, n_speakers=None):
        self.sample_rate = sample_rate

    def score(self, estimate, batch, b, length):
        k, score = mixture_score(estimate, batch.sources.data[b, :, :length],
                                 batch.mix.data[b, :length])
        row = dict.fromkeys(FUSS_METRICS, float("nan"))
        if k == 1:
            row["1S"] = score
        elif k > 1:
            row[f"{k}Si"] = row["MSi"] = score
        if k:
            row["TRF"] = score  # every scored mixture
        return row
