"""What every teacher-student scheme shares (RemixIT, Self-Remixing): the
teacher-update protocol that owns the teacher, the student it trains,
stages of a sequential protocol, and checkpoints that rebuild both.

State and its one owner each:

* the teacher, with the protocol's schedule: the protocol
  (:mod:`speechbrain_remix.teacher`), registered once as ``teacher_update``;
* the student: ``modules[model_key]``, registered under ``model_key``
  (re-registered when the sequential protocol builds a new one);
* the optimizer, epoch counter, data loader and random generator: the
  Brain and the YAML, as in any SpeechBrain recipe.

Every end-of-epoch checkpoint carries the stage (``stage``, from 1) of
the student it holds; the last one of a sequential stage is tagged
``end_of_stage`` and kept, so ``--test_only --test_stage=k`` evaluates the
trained student of stage ``k``.
"""

import logging
import os

import speechbrain as sb
import torch

from speechbrain_remix.brains.base import EnhancementBrain
from speechbrain_remix.teacher import unwrap

logger = logging.getLogger(__name__)


class TeacherStudentBrain(EnhancementBrain):
    """Base Brain of teacher-student schemes.

    A subclass calls :meth:`attach_teacher` in its ``__init__`` with the
    initial teacher and implements the training forward pass; the update
    protocol is the ``teacher_update`` hyperparameter.  Optional
    hyperparameter ``test_stage``: evaluate the final student of that
    sequential stage (from 1) instead of the selected checkpoint.
    """

    def attach_teacher(self, teacher):
        """Hands ``teacher`` to the update protocol, its only owner."""
        self.teacher_update = self.hparams.teacher_update
        self.teacher_update.attach(teacher.to(self.device))
        self.teacher_update.check_student(self.student)
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("teacher_update",
                                              self.teacher_update)

    @property
    def teacher(self):
        """The current teacher (owned by the update protocol)."""
        return self.teacher_update.teacher

    @property
    def student(self):
        return self.modules[self.model_key]

    # ------------------------------------------------------------------
    # the sequential protocol's new students
    def start_new_student(self, num_blocks):
        """A freshly initialised student ``num_blocks`` deep with a fresh
        optimizer: the sequential protocol's next stage.  Its initial
        weights depend only on the seed and the stage, so that a resumed
        run builds the same one (and every DDP rank, which DDP's wrapping
        would also ensure)."""
        self._set_student(num_blocks, seed=self.hparams.seed
                          + 1000 * self.teacher_update.stage)
        self._wrap_student()
        self.init_optimizers()

    def _wrap_student(self):
        """The DDP/DataParallel wrapping SpeechBrain gives modules in
        ``_wrap_distributed``, for a student built after it ran."""
        student = self.student
        if self.distributed_launch:
            student = torch.nn.SyncBatchNorm.convert_sync_batchnorm(student)
            self.modules[self.model_key] = \
                torch.nn.parallel.DistributedDataParallel(
                    student,
                    device_ids=None if self.distributed_backend == "gloo"
                    else [self.device],
                    find_unused_parameters=self.find_unused_parameters,
                )
        elif self.data_parallel_backend:
            self.modules[self.model_key] = torch.nn.DataParallel(student)

    def _set_student(self, num_blocks, seed=None):
        with torch.random.fork_rng(devices=[]):  # the CPU generator only
            if seed is not None:
                torch.random.default_generator.manual_seed(seed)
            student = unwrap(self.student).with_depth(num_blocks)
        self.modules[self.model_key] = student.to(self.device)
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable(self.model_key, student)

    def before_loading(self, ckpt):
        """Rebuilds teacher and student as they were when ``ckpt`` was
        saved (a sequential run may be past its first stage: other depths,
        and a teacher with another number of outputs than the pre-trained
        one) before any weights, and the optimizer, are loaded."""
        if "teacher_update" not in ckpt.paramfiles:
            return
        saved = torch.load(ckpt.paramfiles["teacher_update"],
                           map_location="cpu")
        self.teacher_update.load(saved)
        blocks = self.teacher_update.student_blocks()
        if blocks is not None and blocks != getattr(
                unwrap(self.student), "num_blocks", blocks):
            self._set_student(blocks)
            if getattr(self, "optimizer", None) is not None:
                # evaluating another stage after training: an optimizer
                # of this student's parameters, to load that stage's into
                self.init_optimizers()

    def on_fit_start(self):
        if self.checkpointer is not None:
            ckpt = self.checkpointer.find_checkpoint()  # what SB resumes
            if ckpt is not None:
                self.before_loading(ckpt)
        super().on_fit_start()

    # ------------------------------------------------------------------
    # UPDATE_TEACHER (Algorithm 1 of RemixIT)
    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN:
            # the update due after the previous epoch, before the learning
            # rate of this one (a new student restarts its schedule)
            self.teacher_update.before_epoch(self, epoch)
        super().on_stage_start(stage, epoch)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step:  # skipped batches never get here
            self.teacher_update.after_step(self)

    def epoch_in_stage(self, epoch):
        return epoch - self.teacher_update.stage_start_epoch

    def checkpoint_meta(self, epoch):
        return {"stage": self.teacher_update.stage + 1,
                "end_of_stage": bool(self.teacher_update.ends_stage(epoch))}

    # ------------------------------------------------------------------
    # evaluating the final student of one stage
    def test_stage(self):
        return getattr(self.hparams, "test_stage", None)

    def evaluation_predicate(self):
        """Evaluation picks among the checkpoints of one stage: the one
        asked for (``test_stage``), else the last.  Validation losses of
        different stages (different teachers) are not comparable, and
        students of different depths cannot be averaged."""
        stages = {c.meta.get("stage") for c in
                  self.checkpointer.find_checkpoints()} - {None}
        stage = self.test_stage()
        if stage is None:
            if not stages:
                return None
            stage = max(stages)
        elif int(stage) not in stages:
            raise ValueError(
                f"test_stage={stage}: no checkpoint of that stage in "
                f"{self.checkpointer.checkpoints_dir} (stages on disk: "
                f"{sorted(stages)})"
            )
        return lambda c: c.meta.get("stage") == int(stage)

    def selection_keys(self):
        # a stage's final student is its most recent checkpoint
        return {} if self.test_stage() is not None else \
            super().selection_keys()

    def results_folder(self):
        if self.test_stage() is None:
            return super().results_folder()
        folder = os.path.join(self.hparams.output_folder,
                              f"stage{int(self.test_stage())}")
        os.makedirs(folder, exist_ok=True)
        return folder
