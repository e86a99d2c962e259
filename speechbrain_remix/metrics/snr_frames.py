"""Frame-level error of an SNR predictor (Sec. 2.3 of Sivaraman et al.,
2021): its estimates against the true segmental SNR (Eq. 7) of each test
mixture, as the predictor is trained to regress it (level-normalized,
within [-30, 50] dB: :func:`~speechbrain_remix.segsnr.snr_target`), and
the error of the frame weights they give (Eq. 11)."""

import torch

from speechbrain_remix.segsnr import snr_target

SNR_FRAME_METRICS = ("frame_mae_db", "frame_rmse_db", "frame_corr",
                     "weight_mae")


def frame_errors(predicted, true):
    """Mean absolute and root-mean-square error (dB), Pearson correlation
    of the estimates ``predicted`` and the true SegSNR ``true`` (both
    ``[J]``), and the mean absolute error of the weights
    ``sigmoid(.)`` they give.

    Example
    -------
    >>> out = frame_errors(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0]))
    >>> out["frame_mae_db"], out["frame_rmse_db"], out["frame_corr"]
    (1.0, 1.0, 1.0)
    """
    error = predicted - true
    corr = torch.corrcoef(torch.stack([predicted, true]))[0, 1]
    weights = torch.sigmoid(predicted) - torch.sigmoid(true)
    return {"frame_mae_db": error.abs().mean().item(),
            "frame_rmse_db": error.pow(2).mean().sqrt().item(),
            "frame_corr": corr.item(),
            "weight_mae": weights.abs().mean().item()}


class SNRFrameMetrics:
    """The metric set of an SNR predictor: the system outputs one SNR per
    frame, scored against ``SegSNR(clean, mix)`` of the test mixture.

    Example
    -------
    >>> ms = SNRFrameMetrics(16000)
    >>> ms.names[0], ms.columns
    ('frame_mae_db', ('mix_wav', 'clean_wav'))
    """

    names = SNR_FRAME_METRICS
    reference = "clean"
    columns = ("mix_wav", "clean_wav")
    separated = False

    def __init__(self, sample_rate, n_speakers=None):
        self.sample_rate = sample_rate

    def score(self, estimate, batch, b, length):
        clean = batch.clean.data[b, :length].float()
        true = snr_target(clean, batch.mix.data[b, :length].float())
        return frame_errors(estimate[: true.numel()].float(), true)
