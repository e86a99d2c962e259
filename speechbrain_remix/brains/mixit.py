"""Mixture invariant training for enhancement (Eq. 3 of RemixIT).

Needs only noisy mixtures and a set of isolated noise recordings, which
may be out of domain (the paper's "MixIT with OOD noise").
"""

import speechbrain as sb
import torch

from speechbrain_remix.brains.base import (
    EnhancementBrain,
    normalize,
    separate,
)
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
    ``all_assignments: True``; each observed mixture is normalized before
    the two are summed (Sec. 3.4, :meth:`mixture_of_mixtures`).
    ``sparsity_weight`` > 0 adds the sparsity
    loss of Wisdom et al. (2021) from epoch ``sparsity_from_epoch`` on
    (the "MixIT + Sparsity" fine-tuning).  With ``tau`` set, the loss is
    the thresholded SNR of Eq. 8 of that paper instead of the clamped
    negative SI-SDR.
    """

    def min_batch_size(self):
        # a mixture of mixtures takes another mixture of the batch
        return 2 if getattr(self.hparams, "mom_from_batch", False) else 1

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
            return self.mixture_of_mixtures(mix, generator)
        draw = lambda: self.noise_pool.draw(  # noqa: E731
            mix.shape[0], mix.shape[1], generator
        ).to(self.device)
        noise = draw()
        if getattr(self.hparams, "extra_noise", False):
            mix = mix + draw()
        references = torch.stack([mix, noise], dim=1)
        estimates = separate(self.modules.model, mix + noise)
        return estimates, references

    def mixture_of_mixtures(self, mix, generator):
        """MixIT for source separation (Saijo & Ogawa, 2023, Sec. 3.4).

        Each observed mixture is normalized first, as every mixture in that
        paper ("we subtracted its mean and divided it by its standard
        deviation"; the official code divides by the std in the dataset),
        with the same ``eps`` as :func:`~.base.normalize`.  The mixture of
        mixtures (MoM) is the sum of two normalized mixtures of the batch
        (mixture ``b`` and mixture ``perm[b]``, ``perm`` a derangement);
        :func:`~.base.separate` then normalizes the MoM itself before the
        model ("for MoM in MixIT, we followed the same process") and brings
        the estimates back to the MoM's scale, where they add up to the
        MoM.  The references of Eq. 1 are the two normalized mixtures.

        Arguments
        ---------
        mix : torch.Tensor
            Observed mixtures ``[B, T]``, ``B >= 2``.
        generator : torch.Generator
            Source of the pairing permutation.

        Returns
        -------
        estimates : torch.Tensor
            ``[B, N, T]``, summing to the MoM.
        references : torch.Tensor
            ``[B, 2, T]``: the normalized mixtures ``x_b`` and
            ``x_perm[b]``.
        """
        x, _ = normalize(mix)
        perm = random_permutation(len(x), generator).to(x.device)
        references = torch.stack([x, x[perm]], dim=1)
        return separate(self.modules.model, x + x[perm]), references

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

