"""RemixIT: continual self-training with bootstrapped remixing
(Algorithm 1 of Tzinis et al., 2022)."""

import copy
import logging

import speechbrain as sb
import torch

from speechbrain_remix.brains.base import (
    EnhancementBrain,
    load_pretrained,
    separate,
)
from speechbrain_remix.data import NoisePool
from speechbrain_remix.losses import source_loss
from speechbrain_remix.remix import (
    bootstrap_remix,
    random_permutation,
    speech_and_noise,
    substitute_noise,
)
from speechbrain_remix.teacher import unwrap

logger = logging.getLogger(__name__)


class RemixITBrain(EnhancementBrain):
    """Trains ``modules.student`` on bootstrapped mixtures of a teacher.

    For each batch of in-domain mixtures ``m`` (Algorithm 1):

    1. the frozen teacher (eval mode, no gradient) estimates speech and
       noise, ``s~, n~ = f_T(m)`` (Eq. 4; a MixIT teacher's noise outputs
       are summed), on mean/std-normalized mixtures;
    2. the noise estimates are permuted across the batch, ``m~ = s~ + P n~``
       (Eq. 5), optionally with recorded in-domain noise instead of ``P n~``
       with probability ``p_n`` (Eq. 17);
    3. the student, on the normalized ``m~``, regresses ``[s~, P n~]``
       (Eq. 6);
    4. the teacher-update protocol (``teacher_update``) runs after each
       step and epoch (``UPDATE_TEACHER``).

    Hyperparameters, besides the base ones: ``teacher_model`` (module),
    ``teacher_source`` and ``teacher_key`` (where its weights are),
    ``student_init`` (``scratch`` or ``teacher``),
    ``teacher_update`` (a protocol of :mod:`speechbrain_remix.teacher`),
    ``derangement``, ``noise_csv`` and ``p_n`` (Eq. 17), ``loss_weights``,
    ``clamp_db``.
    """

    model_key = "student"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher_update = self.hparams.teacher_update
        self.teacher = self.hparams.teacher_model
        self.teacher_file = load_pretrained(
            self.teacher, self.hparams.teacher_source, self.hparams.teacher_key
        )
        if self.hparams.student_init == "teacher":
            copy_matching(self.modules.student, self.teacher)
        elif self.hparams.student_init != "scratch":
            raise ValueError("student_init must be 'scratch' or 'teacher'")
        self._freeze_teacher()
        # kept for the final comparison; the teacher itself gets updated
        self.initial_teacher = copy.deepcopy(self.teacher)
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("teacher", self.teacher)
            self.checkpointer.add_recoverable(
                "teacher_update", self.teacher_update
            )
        self.noise_pool = None
        if getattr(self.hparams, "p_n", 0.0) > 0:
            self.noise_pool = NoisePool(
                self.hparams.noise_csv, self.hparams.data_folder,
                self.hparams.sample_rate,
            )

    # ------------------------------------------------------------------
    # the teacher/student pair seen by teacher-update protocols
    @property
    def student(self):
        return self.modules.student

    def _freeze_teacher(self):
        self.teacher.to(self.device).eval().requires_grad_(False)

    def start_new_student(self, num_blocks):
        """A freshly initialised student (``num_blocks`` deep) with a fresh
        optimizer: the sequential protocol's new stage."""
        self._set_student(num_blocks)
        if self.distributed_launch:
            self.modules["student"] = torch.nn.parallel.DistributedDataParallel(
                self.modules["student"],
                device_ids=None if self.device == "cpu" else [self.device],
            )
        self.init_optimizers()

    def _set_student(self, num_blocks):
        student = unwrap(self.student).with_depth(num_blocks)
        self.modules["student"] = student.to(self.device)
        self.checkpointer.add_recoverable("student", self.modules["student"])

    def _restore_architecture(self, **keys):
        """Builds teacher and student at the depths of the current stage of
        the teacher-update protocol, read from the checkpoint about to be
        loaded (a sequential run may be past its first stage), before
        optimizers and weights are restored."""
        ckpt = self.checkpointer.find_checkpoint(**keys)
        if ckpt is not None and "teacher_update" in ckpt.paramfiles:
            self.teacher_update.load_state(
                torch.load(ckpt.paramfiles["teacher_update"])
            )
        t_blocks = self.teacher_update.teacher_blocks()
        if t_blocks not in (None, _depth(self.teacher)):
            self.teacher = unwrap(self.student).with_depth(t_blocks)
            self._freeze_teacher()
            self.checkpointer.add_recoverable("teacher", self.teacher)
        s_blocks = self.teacher_update.student_blocks()
        if s_blocks not in (None, _depth(self.student)):
            self._set_student(s_blocks)

    def on_fit_start(self):
        self._restore_architecture()
        super().on_fit_start()
        self._freeze_teacher()

    def on_evaluate_start(self, max_key=None, min_key=None):
        self._restore_architecture(max_key=max_key, min_key=min_key)
        super().on_evaluate_start(max_key=max_key, min_key=min_key)
        self._freeze_teacher()

    def epoch_in_stage(self, epoch):
        return epoch - self.teacher_update.stage_start_epoch

    # ------------------------------------------------------------------
    # Algorithm 1
    def teacher_estimates(self, mix):
        """``s~, n~ = f_T(m)`` in the normalized domain (Eq. 4)."""
        self.teacher.eval()  # Brain.fit puts modules back in train mode
        with torch.no_grad():
            estimates = separate(self.teacher, mix, rescale=False)
        return speech_and_noise(estimates).detach()

    def training_forward(self, batch, stage):
        (mix,) = self.crop(batch, ["mix"], stage)
        generator = self.rng.generator
        if stage != sb.Stage.TRAIN:
            # the same permutations every validation: comparable losses
            generator = torch.Generator().manual_seed(self.hparams.seed)
        pseudo = self.teacher_estimates(mix)
        perm = random_permutation(
            mix.shape[0], generator, derangement=self.hparams.derangement
        ).to(self.device)
        speech = pseudo[:, 0]
        remixed, targets = bootstrap_remix(speech, pseudo[:, 1], perm)
        if self.noise_pool is not None and stage == sb.Stage.TRAIN:
            noise = targets[:, 1]
            recorded = self.noise_pool.draw(
                mix.shape[0], mix.shape[1], generator
            ).to(self.device)
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
        return estimates, targets

    def training_objectives(self, predictions, batch, stage):
        estimates, targets = predictions
        return source_loss(
            estimates, targets, self.hparams.loss_weights,
            self.hparams.clamp_db,
        ).mean()

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step:
            self.teacher_update.after_step(self)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            # UPDATE_TEACHER before the epoch's checkpoint is written
            self.teacher_update.after_epoch(self, epoch)
        super().on_stage_end(stage, stage_loss, epoch)

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


def _depth(model):
    return getattr(unwrap(model), "num_blocks", None)
