"""RemixIT and Self-Remixing trained from scratch (Saijo & Ogawa, 2023).

A teacher with ``N`` outputs separates the observed mixtures; its outputs
are (optionally) channel-shuffled (Eq. 7), shuffled across the batch in
every output channel (Eq. 2; optionally so that no pseudo-mixture holds two
sources of the same mixture) and summed into pseudo-mixtures, which the
student separates.  The student regresses either

* the teacher's shuffled outputs, permutation-invariantly (RemixIT, Eq. 3),
* or, after its outputs are aligned (Eq. 3) and put back in their
  pre-shuffle order (Eq. 4), the observed mixtures (Self-Remixing, Eq. 5),

with the thresholded SNR of Eq. 8.  The teacher starts as a copy of the
(randomly initialised) student and follows it by EMA at every epoch end
(Eq. 6, ``alpha = 0.8``: ``EMATeacher(gamma=0.2)``).  Observed mixtures
are normalized (mean/std), pseudo-mixtures are not (Sec. 3.4).

The supervised counterparts ("Sup." rows of Table 1) build the
pseudo-mixtures from the true sources instead of the teacher's outputs and
use the SNR loss that tolerates silent references.
"""

import copy

import speechbrain as sb
import torch

from speechbrain_remix.apply import normalize
from speechbrain_remix.brains.teacher_student import TeacherStudentBrain
from speechbrain_remix.consistency import mixture_consistency
from speechbrain_remix.losses import (
    permutation_min,
    pit_loss,
    self_remixing_loss,
    zero_reference_snr_loss,
)
from speechbrain_remix.metrics import metric_set
from speechbrain_remix.remix import (
    channel_permutations,
    channel_shuffle,
    remix_channels,
    unshuffle_channels,
)
from speechbrain_remix.teacher import unwrap


class SelfRemixingBrain(TeacherStudentBrain):
    """Trains ``modules.model`` (``N`` outputs) from scratch by remixing.

    Hyperparameters besides the base ones: ``objective`` (``remixit`` or
    ``self_remixing``), ``channel_shuffle`` (Eq. 7), ``constrained``
    (no two sources of one mixture in a pseudo-mixture), ``supervised``
    (pseudo-mixtures of the true sources: clean speech and noise),
    ``teacher_update`` (an EMA protocol), ``tau`` (Eq. 8),
    ``zero_init_output`` (Sec. 2.3).

    Evaluation: a separation model's outputs have no fixed order, so the
    output closest to the clean reference (highest SI-SDR) is scored, as
    separation metrics with permutation solving do (``eval_output:
    closest`` is this Brain's default; with ``eval_metrics: fuss``, the
    FUSS metrics of the base Brain instead).
    """

    eval_output = "closest"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.hparams.objective not in ("remixit", "self_remixing"):
            raise ValueError("objective must be 'remixit' or 'self_remixing'")
        if getattr(self.hparams, "zero_init_output", False):
            self.modules.model.zero_output_layer()
        # the teacher starts as a copy of the (random) student (Sec. 2.3)
        self.attach_teacher(copy.deepcopy(self.modules.model))

    def min_batch_size(self):
        """Every output channel is shuffled across the batch: two mixtures
        at least, and ``N`` for the constrained shuffle (Sec. 2.4)."""
        if self.hparams.constrained:
            return max(2, unwrap(self.modules.model).config["num_sources"])
        return 2

    @classmethod
    def train_columns(cls, hparams):
        if not hparams["supervised"]:
            return ("mix_wav",)
        if not metric_set(hparams).separated:  # speech vs clean
            return ("mix_wav", "clean_wav")
        return ("mix_wav", "source_wavs")

    def student_separate(self, mixture):
        """The student on pseudo-mixtures: no normalization (Sec. 3.4),
        mixture consistency."""
        return mixture_consistency(self.modules.model(mixture), mixture)

    def training_forward(self, batch, stage):
        generator = self.rng.generator
        if stage != sb.Stage.TRAIN:
            generator = torch.Generator().manual_seed(self.hparams.seed)
        if self.hparams.supervised and hasattr(batch, "sources"):
            mix, refs = self.crop(batch, ["mix", "sources"], stage)
            x, (_, std) = normalize(mix)
            # the true sources in x's scale (padded silent ones stay 0)
            sources = refs / std.unsqueeze(1)
        elif self.hparams.supervised:  # speech and noise
            mix, clean = self.crop(batch, ["mix", "clean"], stage)
            x, (_, std) = normalize(mix)
            clean = clean / std  # the true sources, in x's scale
            sources = torch.stack([clean, x - clean], 1)
        else:
            (mix,) = self.crop(batch, ["mix"], stage)
            x, _ = normalize(mix)
            self.teacher.eval()
            with torch.no_grad():
                sources = mixture_consistency(self.teacher(x), x)
        if self.hparams.channel_shuffle:
            sources = channel_shuffle(sources, generator)
        perms = channel_permutations(
            x.shape[0], sources.shape[1], generator,
            constrained=self.hparams.constrained,
        ).to(self.device)
        pseudo, shuffled = remix_channels(sources, perms)
        estimates = self.student_separate(pseudo)
        return sources, pseudo, shuffled, perms, estimates

    def training_objectives(self, predictions, batch, stage):
        sources, pseudo, shuffled, perms, estimates = predictions
        tau, supervised = self.hparams.tau, self.hparams.supervised
        if self.hparams.objective == "remixit":  # Eq. 3
            if supervised:  # true sources can be silent: mixture floor
                return permutation_min(
                    lambda est, ref: zero_reference_snr_loss(
                        ref, est, pseudo, tau), estimates, shuffled).mean()
            return pit_loss(estimates, shuffled)[0].mean()
        _, aligned = pit_loss(estimates, shuffled)  # Eq. 3: alignment
        unshuffled = unshuffle_channels(aligned, perms)  # Eq. 4
        target = sources.sum(1)  # the observed (or true) mixture
        if supervised:
            return zero_reference_snr_loss(
                target.unsqueeze(1), unshuffled.sum(1, keepdim=True),
                target, tau).mean()
        return self_remixing_loss(target, unshuffled, tau).mean()  # Eq. 5
