"""The SNR predictor of data purification (Sivaraman, Kim & Kim, 2021,
Sec. 2.3): its training scheme (Eqs. 8-10), and how a Brain uses a trained
one to weight its loss frame by frame (Eq. 11).
"""

import hashlib
import os

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from speechbrain_remix import plots
from speechbrain_remix.brains.base import EnhancementBrain
from speechbrain_remix.data import DataError, NoisePool
from speechbrain_remix.pretrained import load_pretrained
from speechbrain_remix.segsnr import frame_weights, snr_target
from speechbrain_remix.teacher import freeze


def attach_snr_predictor(brain):
    """The trained SNR predictor of ``brain``'s YAML (``snr_predictor``
    module, weights from ``snr_predictor_source``), frozen (eval mode, no
    gradient, outside ``modules`` and the optimizer).  The run's
    checkpoints record which weights it loaded (:class:`FrozenWeights`),
    so that a resumed run cannot weight its loss with another predictor
    than the one it started with."""
    predictor = brain.hparams.snr_predictor
    path = load_pretrained(predictor, brain.hparams.snr_predictor_source,
                           "predictor")
    if brain.checkpointer is not None:
        brain.checkpointer.add_recoverable("snr_predictor",
                                           FrozenWeights(path))
    return freeze(predictor.to(brain.device))


@register_checkpoint_hooks
class FrozenWeights:
    """The file and SHA-256 of frozen weights a run loaded, checkpointed
    in their place: the SNR predictor of the paper has 17 M parameters,
    and a checkpoint per epoch of 1000 one-step epochs would rewrite them
    a thousand times.  On resume, other weights are an error."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.sha256 = hashlib.sha256(f.read()).hexdigest()

    @mark_as_saver
    def _save(self, path):
        torch.save({"file": self.path, "sha256": self.sha256}, path)

    @mark_as_loader
    def _load(self, path, end_of_epoch=None):
        saved = torch.load(path)
        if saved["sha256"] != self.sha256:
            raise DataError(
                f"{self.path}: not the SNR predictor this run started with "
                f"({saved['file']}, sha256 {saved['sha256'][:12]}...); "
                "point snr_predictor_source to that one, or start a new run"
                " (a new --output_folder)")


@torch.no_grad()
def purification_weights(predictor, signals):
    """``p = sigmoid(h(signals))`` (Eq. 11), one weight per frame of the
    segmental losses, ``[B, J]``, without gradient."""
    predictor.eval()  # whatever fit() did to the modules
    return frame_weights(predictor(signals))


class SNRPredictorBrain(EnhancementBrain):
    """Trains the SNR predictor ``h`` (``modules.predictor``) to regress
    the segmental SNR of mixtures (Eqs. 8-10): clean speech of the
    speaker-agnostic set ``G`` (``train_csv``, column ``clean_wav``) gets
    training noise ``N`` (``noise_csv``) at an SNR uniform in
    ``snr_range``; the target is ``alpha = SegSNR(s, x)`` (Eq. 9, raw dB)
    and the loss the MSE between ``h(x)`` and ``alpha``, as the official
    code.

    Evaluation (``eval_metrics: snr_frames``) reports the frame-level error
    of the estimates on the test mixtures, whose clean references give the
    true SegSNR.
    """

    model_key = "predictor"
    train_requires = ("clean_wav",)
    enhances = False  # it predicts frame SNRs

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.noise_pool = NoisePool(self.hparams.noise_csv,
                                    self.hparams.data_folder,
                                    self.hparams.sample_rate)

    def training_forward(self, batch, stage):
        (clean,) = self.crop(batch, ["clean"], stage)
        generator = self.draws(stage)
        mix, _ = self.noise_pool.add_to(clean, self.hparams.snr_range,
                                        generator)
        return self.modules.predictor(mix), snr_target(clean, mix)

    def training_objectives(self, predictions, batch, stage):
        predicted, target = predictions
        return (predicted - target).pow(2).mean()

    def systems(self):
        return {"predictor": self.modules.predictor}

    def maybe_save_enhanced(self, uid, wav):
        """An SNR track is not audio: nothing to write."""

    def test_objectives(self, estimate, batch):
        if not self.test_rows:  # the first test mixture, for the figure
            n = int(round(float(batch.mix.lengths[0])
                          * batch.mix.data.shape[1]))
            mix = batch.mix.data[0, :n].float().cpu()
            true = snr_target(batch.clean.data[0, :n].float().cpu(), mix)
            self.examples["snr"] = (mix, true, estimate[0, : true.numel()]
                                    .detach().float().cpu())
        return super().test_objectives(estimate, batch)

    def evaluate_systems(self, test_set, loader_kwargs):
        """The base evaluation, and ``snr_tracks.png`` (a test mixture, its
        true and predicted SegSNR and the weights, like Fig. 2)."""
        summary = super().evaluate_systems(test_set, loader_kwargs)
        if "snr" in self.examples and sb.utils.distributed.if_main_process():
            mix, true, predicted = (x.numpy() for x in self.examples["snr"])
            plots.plot_snr_tracks(
                mix, true, predicted, self.hparams.sample_rate,
                self.modules.predictor.hop,
                os.path.join(self.results_folder(), "snr_tracks.png"))
        return summary
