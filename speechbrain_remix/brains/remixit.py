"""RemixIT: continual self-training with bootstrapped remixing
(Algorithm 1 of Tzinis et al., 2022)."""

import copy
import logging

import speechbrain as sb
import torch

from speechbrain_remix.apply import separate
from speechbrain_remix.brains.purification import (
    attach_snr_predictor,
    purification_weights,
)
from speechbrain_remix.brains.teacher_student import TeacherStudentBrain
from speechbrain_remix.data import NoisePool
from speechbrain_remix.losses import confidence_weighted_loss, source_loss
from speechbrain_remix.pretrained import load_pretrained
from speechbrain_remix.remix import (
    bootstrap_remix,
    random_permutation,
    speech_and_noise,
    substitute_noise,
)
from speechbrain_remix.teacher import freeze

logger = logging.getLogger(__name__)

#: power of a teacher estimate, relative to the normalized (unit-power)
#: mixture, below which it counts as silent (-60 dB)
SILENT = 1e-6


class RemixITBrain(TeacherStudentBrain):
    """Trains ``modules.student`` on bootstrapped mixtures of a teacher.

    For each batch of in-domain mixtures ``m`` (Algorithm 1):

    1. the frozen teacher (eval mode, no gradient) estimates speech and
       noise, ``s~, n~ = f_T(m)`` (Eq. 4; a MixIT teacher's noise outputs
       are summed), on mean/std-normalized mixtures;
    2. the noise estimates are permuted across the batch, ``m~ = s~ + P n~``
       (Eq. 5), optionally with recorded in-domain noise instead of ``P n~``
       with probability ``p_n`` (Eq. 17);
    3. the student, on the normalized ``m~``, regresses ``[s~, P n~]``
       (Eq. 6); with ``confidence_weighting`` (beyond the paper), both
       terms are weighted frame by frame by the SNR predictor
       ``snr_predictor`` on ``s~`` (:func:`confidence_weighted_loss`);
    4. the teacher-update protocol (``teacher_update``) runs after each
       step and epoch (``UPDATE_TEACHER``).

    Hyperparameters, besides the base ones: ``teacher_model`` (module),
    ``teacher_source`` and ``teacher_key`` (where its weights are),
    ``student_init`` (``scratch`` or ``teacher``),
    ``teacher_update`` (a protocol of :mod:`speechbrain_remix.teacher`),
    ``derangement``, ``noise_csv`` and ``p_n`` (Eq. 17), ``loss_weights``,
    ``clamp_db``, and optionally ``confidence_weighting``,
    ``snr_predictor`` and ``snr_predictor_source``.
    """

    model_key = "student"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        teacher = self.hparams.teacher_model
        self.teacher_file = load_pretrained(
            teacher, self.hparams.teacher_source, self.hparams.teacher_key
        )
        if self.hparams.student_init == "teacher":
            copy_matching(self.modules.student, teacher)
        elif self.hparams.student_init != "scratch":
            raise ValueError("student_init must be 'scratch' or 'teacher'")
        # kept for the final comparison; the teacher itself gets updated
        self.initial_teacher = freeze(copy.deepcopy(teacher))
        self.attach_teacher(teacher)
        self.snr_predictor = None
        if getattr(self.hparams, "confidence_weighting", False):
            self.snr_predictor = attach_snr_predictor(self)
        self.noise_pool = None
        if getattr(self.hparams, "p_n", 0.0) > 0:
            self.noise_pool = NoisePool(
                self.hparams.noise_csv, self.hparams.data_folder,
                self.hparams.sample_rate,
            )

    def min_batch_size(self):
        return 2  # a noise estimate needs another mixture to go to

    # ------------------------------------------------------------------
    # Algorithm 1
    def teacher_estimates(self, mix):
        """``s~, n~ = f_T(m)`` in the normalized domain (Eq. 4)."""
        self.teacher.eval()  # Brain.fit puts modules back in train mode
        with torch.no_grad():
            estimates = separate(self.teacher, mix, rescale=False)
        return speech_and_noise(estimates).detach()

    def usable(self, pseudo, batch):
        """The teacher estimates a student can learn from: finite, and
        neither source silent (power below ``SILENT`` of the normalized
        mixture's, e.g. on a silent crop, where SI-SDR targets are
        undefined).  Other mixtures are left out of the batch, with a
        warning, instead of feeding NaN or arbitrary targets to the
        student."""
        keep = torch.isfinite(pseudo).all(-1).all(-1) & (
            pseudo.pow(2).mean(-1) > SILENT).all(-1)
        if not keep.all():
            dropped = [uid for uid, k in zip(batch.id, keep.tolist())
                       if not k]
            logger.warning("teacher estimates of %s are silent or not "
                           "finite: left out of this batch", dropped)
        return pseudo[keep]

    def training_forward(self, batch, stage):
        (mix,) = self.crop(batch, ["mix"], stage)
        generator = self.rng.generator
        if stage != sb.Stage.TRAIN:
            # the same permutations every validation: comparable losses
            generator = torch.Generator().manual_seed(self.hparams.seed)
        pseudo = self.usable(self.teacher_estimates(mix), batch)
        if len(pseudo) < 2:
            # nothing to remix: NaN targets skip the batch (on every rank,
            # see check_loss_isfinite), after a student forward like the
            # other ranks' (DDP's forward may synchronise buffers)
            estimates = speech_and_noise(separate(self.modules.student, mix))
            return estimates, torch.full_like(estimates, float("nan")), None
        n, length = pseudo.shape[0], pseudo.shape[-1]
        perm = random_permutation(
            n, generator, derangement=self.hparams.derangement
        ).to(self.device)
        speech = pseudo[:, 0]
        remixed, targets = bootstrap_remix(speech, pseudo[:, 1], perm)
        if self.noise_pool is not None and stage == sb.Stage.TRAIN:
            noise = targets[:, 1]
            recorded = self.noise_pool.draw(n, length, generator).to(
                self.device)
            # a recording enters at the level of the estimate it replaces
            recorded = recorded * noise.std(-1, keepdim=True) / (
                recorded.std(-1, keepdim=True) + 1e-9
            )
            noise, _ = substitute_noise(
                noise, recorded, self.hparams.p_n, generator
            )
            remixed, targets = speech + noise, torch.stack([speech, noise], 1)
        # a 3-output student (to follow a MixIT teacher by EMA) sums its
        # noise outputs like the teacher
        estimates = speech_and_noise(separate(self.modules.student, remixed))
        frame_weights = None
        if self.snr_predictor is not None:  # how clean each frame of s~ is
            frame_weights = purification_weights(self.snr_predictor,
                                                 targets[:, 0])
        return estimates, targets, frame_weights

    def training_objectives(self, predictions, batch, stage):
        estimates, targets, frame_weights = predictions
        if frame_weights is not None:
            return confidence_weighted_loss(
                estimates, targets, frame_weights, self.hparams.loss_weights,
                self.hparams.clamp_db).mean()
        return source_loss(
            estimates, targets, self.hparams.loss_weights,
            self.hparams.clamp_db,
        ).mean()

    # ------------------------------------------------------------------
    # evaluation: mixture, the initial (pre-trained) teacher, the student
    def systems(self):
        student = self.modules.student
        initial = self.initial_teacher.to(self.device)
        return {
            "mixture": lambda mix: mix,
            "teacher": lambda mix: separate(initial, mix)[:, 0],
            "student": lambda mix: separate(student, mix)[:, 0],
        }


def copy_matching(student, teacher):
    """Initialises the student from the teacher (``theta_S := theta_T``,
    Section IV-C).  Tensors whose shapes differ, the output layers of a
    3-output MixIT teacher for a 2-output student, keep their fresh
    initialisation."""
    s_state = student.state_dict()
    for name, value in teacher.state_dict().items():
        if name in s_state and s_state[name].shape == value.shape:
            s_state[name].copy_(value)
        else:
            logger.info("student_init: %s left freshly initialised", name)


