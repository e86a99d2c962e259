"""Supervised training with clean speech and noise (Eq. 2 of RemixIT)."""

import speechbrain as sb
import torch

from speechbrain_remix.brains.base import EnhancementBrain, separate
from speechbrain_remix.data import scale_noise
from speechbrain_remix.losses import source_loss
from speechbrain_remix.remix import random_permutation


class SupervisedBrain(EnhancementBrain):
    """Trains ``modules.model`` (``M = 2``: speech, noise) on mixtures with
    known clean speech; the noise target is ``mix - clean`` (the noise of an
    additive mixture, so a manifest needs no ``noise_wav``).

    ``L = sum_b L(s_hat_b, s_b) + L(n_hat_b, n_b)`` (Eq. 2), with the
    negative SI-SDR of Eq. 16 weighted by ``loss_weights``.  The validation
    loss is the same on the first ``crop_seconds`` of each utterance.
    With ``dynamic_snr_range: [low, high]`` the training mixtures are
    re-mixed at every step (:meth:`dynamic_mix`).
    """

    train_requires = ("mix_wav", "clean_wav")

    def training_forward(self, batch, stage):
        mix, clean = self.crop(batch, ["mix", "clean"], stage)
        snr_range = getattr(self.hparams, "dynamic_snr_range", None)
        if snr_range is not None and stage == sb.Stage.TRAIN:
            mix = self.dynamic_mix(clean, mix - clean, snr_range)
        estimates = separate(self.modules.model, mix)
        targets = torch.stack([clean, mix - clean], dim=1)
        return estimates, targets

    def dynamic_mix(self, clean, noise, snr_range):
        """New training mixtures at every step: the batch's noises are
        shuffled across items and rescaled to an SNR drawn uniformly from
        ``snr_range`` (the DNS in-domain setup of RemixIT, Section III-D:
        U[-2, 20] dB)."""
        generator = self.rng.generator
        perm = random_permutation(len(noise), generator, derangement=False)
        noise = noise[perm.to(noise.device)]
        low, high = snr_range
        snr = low + (high - low) * torch.rand(len(noise), generator=generator)
        return clean + scale_noise(clean, noise, snr)

    def training_objectives(self, predictions, batch, stage):
        estimates, targets = predictions
        return source_loss(
            estimates, targets, self.hparams.loss_weights,
            self.hparams.clamp_db,
        ).mean()
