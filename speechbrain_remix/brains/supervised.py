"""Supervised training with clean speech and noise (Eq. 2 of RemixIT)."""

import torch

from speechbrain_remix.brains.base import EnhancementBrain, separate
from speechbrain_remix.losses import source_loss


class SupervisedBrain(EnhancementBrain):
    """Trains ``modules.model`` (``M = 2``: speech, noise) on mixtures with
    known clean speech; the noise target is ``mix - clean`` (the noise of an
    additive mixture, so a manifest needs no ``noise_wav``).

    ``L = sum_b L(s_hat_b, s_b) + L(n_hat_b, n_b)`` (Eq. 2), with the
    negative SI-SDR of Eq. 16 weighted by ``loss_weights``.  The validation
    loss is the same on the first ``crop_seconds`` of each utterance.
    """

    train_requires = ("mix_wav", "clean_wav")

    def training_forward(self, batch, stage):
        mix, clean = self.crop(batch, ["mix", "clean"], stage)
        estimates = separate(self.modules.model, mix)
        targets = torch.stack([clean, mix - clean], dim=1)
        return estimates, targets

    def training_objectives(self, predictions, batch, stage):
        estimates, targets = predictions
        return source_loss(
            estimates, targets, self.hparams.loss_weights,
            self.hparams.clamp_db,
        ).mean()
