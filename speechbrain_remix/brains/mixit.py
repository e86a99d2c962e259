"""Mixture invariant training for enhancement (Eq. 3 of RemixIT).

Needs only noisy mixtures and a set of isolated noise recordings, which
may be out of domain (the paper's "MixIT with OOD noise").
"""

import speechbrain as sb
import torch

from speechbrain_remix.brains.base import EnhancementBrain, separate
from speechbrain_remix.data import NoisePool
from speechbrain_remix.losses import (
    enhancement_assignments,
    mixit_loss,
    sparsity_loss,
    thresholded_snr_loss,
)
from speechbrain_remix.remix import random_permutation


class MixITBrain(EnhancementBrain):
    """Trains ``modules.model`` with ``M = 3`` outputs (speech, 2 noises).

    For a batch of noisy mixtures ``m`` and noise excerpts ``n`` drawn from
    ``noise_csv``, the model separates the mixture of mixtures ``m + n``
    and the loss compares the outputs, under the best of the assignments
    of Eq. 3, with ``m`` and ``n``.  With ``extra_noise: True`` a second
    noise excerpt is injected into the noisy mixture and becomes part of its
    reference (the extra-noise variant, the paper's reference [31]).  With
    ``all_assignments: True`` the generalized MixIT (every output to either
    mixture) is used instead of Eq. 3.

    Speech is output 0; for RemixIT the two noise outputs are summed
    (``remix.speech_and_noise``).

    For source separation (MixIT baselines of Saijo & Ogawa, 2023) set
    ``mom_from_batch: True``: the second mixture of each mixture of
    mixtures is another observed mixture of the batch instead of a noise
    excerpt, with ``N`` outputs (twice the sources) and, typically,
    ``all_assignments: True``.  ``sparsity_weight`` > 0 adds the sparsity
    loss of Wisdom et al. (2021) from epoch ``sparsity_from_epoch`` on
    (the "MixIT + Sparsity" fine-tuning).  With ``tau`` set, the loss is
    the thresholded SNR of Eq. 8 of that paper instead of the clamped
    negative SI-SDR.
    """

    def on_fit_start(self):
        super().on_fit_start()
        self.noise_pool = None
        if not getattr(self.hparams, "mom_from_batch", False):
            self.noise_pool = NoisePool(
                self.hparams.noise_csv, self.hparams.data_folder,
                self.hparams.sample_rate,
            )

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if epoch is not None:
            self.current_epoch = epoch

    def assignments(self, n_outputs):
        if getattr(self.hparams, "all_assignments", False):
            return None  # mixit_loss then tries every assignment
        return enhancement_assignments(n_outputs)

    def training_forward(self, batch, stage):
        (mix,) = self.crop(batch, ["mix"], stage)
        generator = self.rng.generator
        if stage != sb.Stage.TRAIN:
            # fixed noise for a comparable validation loss across epochs
            generator = torch.Generator().manual_seed(self.hparams.seed)
        if self.noise_pool is None:  # the other mixture of the batch
            perm = random_permutation(len(mix), generator).to(self.device)
            references = torch.stack([mix, mix[perm]], dim=1)
            return separate(self.modules.model, mix + mix[perm]), references
        draw = lambda: self.noise_pool.draw(  # noqa: E731
            mix.shape[0], mix.shape[1], generator
        ).to(self.device)
        noise = draw()
        if getattr(self.hparams, "extra_noise", False):
            mix = mix + draw()
        references = torch.stack([mix, noise], dim=1)
        estimates = separate(self.modules.model, mix + noise)
        return estimates, references

    def training_objectives(self, predictions, batch, stage):
        estimates, references = predictions
        loss_fn = None
        if getattr(self.hparams, "tau", None):  # thresholded SNR (Eq. 8)
            tau = self.hparams.tau
            loss_fn = lambda est, ref: thresholded_snr_loss(  # noqa: E731
                ref, est, tau)
        loss, _ = mixit_loss(
            estimates, references, self.assignments(estimates.shape[1]),
            self.hparams.clamp_db, loss_fn,
        )
        weight = getattr(self.hparams, "sparsity_weight", 0.0)
        if weight and getattr(self, "current_epoch", 1) >= getattr(
                self.hparams, "sparsity_from_epoch", 1):
            loss = loss + weight * sparsity_loss(estimates)
        return loss.mean()

