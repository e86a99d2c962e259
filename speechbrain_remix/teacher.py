"""Teacher-update protocols of RemixIT (Section III-C, ``UPDATE_TEACHER`` of
Algorithm 1).

* :class:`StaticTeacher`: ``theta_T^(k) = theta_T^(0)`` for every ``k``.
* :class:`SequentialTeacher`: every ``K`` epochs the teacher becomes the
  latest student, ``theta_T := theta_S``, and a new, optionally deeper
  student is built (``U: 8 -> 16 -> 32``) with a fresh optimizer.
* :class:`EMATeacher`: ``theta_T <- gamma theta_S + (1 - gamma) theta_T``
  after every epoch (the paper, ``gamma = 0.01``) or every step.

A protocol *owns the teacher module*: it holds it (``protocol.teacher``),
replaces or updates it, and saves it with its own state in one checkpoint
file, together with the teacher's class and configuration, so that a
resumed run rebuilds the very teacher it had (a sequential teacher is a
copy of a student: another depth, another number of outputs than the
pre-trained one).  The Brain registers the protocol once
(``teacher_update``) and reads the teacher through it; there is no other
reference to keep in sync.

An epoch-level update "after epoch ``e``" is applied when epoch ``e + 1``
starts (:meth:`StaticTeacher.before_epoch`), not at the end of epoch ``e``:

* the update after the final epoch is never applied (it would hand the
  trained student to an unsaved teacher and evaluate a fresh student);
* the checkpoint written at the end of epoch ``e`` holds the student that
  epoch trained, so the final student of every sequential stage stays on
  disk (tagged ``end_of_stage`` by the Brain) and can be evaluated;
* a run extended past its planned end (more epochs) applies the pending
  update when it continues, and a resumed run applies it exactly once
  (``last_update_epoch`` is saved).

Unlike the official code, the sequential protocol really replaces the
teacher, exactly after ``K`` epochs (epochs count from 1), and the EMA
covers buffers as well as parameters.
"""

import copy
import importlib

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)


def unwrap(module):
    """Returns the module inside a DDP/DataParallel wrapper, if any."""
    return getattr(module, "module", module)


def freeze(module):
    """Eval mode, no gradients: how a teacher is always used."""
    return module.eval().requires_grad_(False)


def check_same_architecture(teacher, student):
    """Raises ``ValueError`` unless teacher and student have the same
    parameters and buffers (names and shapes): what an EMA update needs."""
    t_state = unwrap(teacher).state_dict()
    s_state = unwrap(student).state_dict()
    same = t_state.keys() == s_state.keys() and all(
        t_state[k].shape == s_state[k].shape for k in t_state
    )
    if not same:
        raise ValueError(
            "EMA teacher update needs teacher and student of the same "
            "architecture; their parameters differ (a deeper student needs "
            "the sequential protocol; a MixIT teacher with 3 outputs needs "
            "a 3-output student: student_num_sources: 3; a teacher of "
            "another architecture, e.g. a SpeechBrain model folder, the "
            "static or the sequential protocol)"
        )


@torch.no_grad()
def ema_update(teacher, student, gamma):
    """``theta_T <- gamma * theta_S + (1 - gamma) * theta_T`` in place.

    Floating-point parameters and buffers are averaged; integer buffers
    (counters) are copied from the student.

    Arguments
    ---------
    teacher : torch.nn.Module
        Updated in place.
    student : torch.nn.Module
        Same architecture as the teacher.
    gamma : float
        Weight of the student, in ``[0, 1]``.

    Example
    -------
    >>> t, s = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> expected = 0.25 * s.weight + 0.75 * t.weight
    >>> ema_update(t, s, 0.25)
    >>> torch.allclose(t.weight, expected)
    True
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"EMA weight gamma must lie in [0, 1], got {gamma}")
    check_same_architecture(teacher, student)
    t_state = unwrap(teacher).state_dict()
    s_state = unwrap(student).state_dict()
    for name, t_value in t_state.items():
        s_value = s_state[name].to(t_value.device)
        if t_value.is_floating_point():
            t_value.mul_(1.0 - gamma).add_(s_value, alpha=gamma)
        else:
            t_value.copy_(s_value)


def describe_class(module):
    """``module:qualname`` of a module's class."""
    cls = type(module)
    return f"{cls.__module__}:{cls.__qualname__}"


def describe(module):
    """What rebuilds ``module``: its class, its constructor configuration
    (the ``config`` dict of this package's models, else ``None``) and its
    weights.

    Example
    -------
    >>> from speechbrain_remix.models import SudoRmRf
    >>> d = describe(SudoRmRf(num_sources=3, num_blocks=1, groups=4))
    >>> d["class"], d["config"]["num_sources"]
    ('speechbrain_remix.models.sudormrf:SudoRmRf', 3)
    """
    config = getattr(module, "config", None)
    return {
        "class": describe_class(module),
        "config": dict(config) if config is not None else None,
        "state_dict": module.state_dict(),
    }


def rebuild(saved, current=None):
    """The module ``describe`` described: ``current`` itself when class and
    configuration match (weights loaded in place), else a new instance of
    the saved class and configuration, on ``current``'s device.

    Example
    -------
    >>> from speechbrain_remix.models import SudoRmRf
    >>> tiny = dict(num_blocks=1, enc_num_basis=16, out_channels=8,
    ...             in_channels=16, upsampling_depth=2, groups=2)
    >>> two = SudoRmRf(num_sources=2, **tiny)
    >>> three = rebuild(describe(two), SudoRmRf(num_sources=3, **tiny))
    >>> three.num_sources, torch.equal(three.decoder.weight,
    ...                                two.decoder.weight)
    (2, True)
    """
    module_name, qualname = saved["class"].split(":")
    same = (
        current is not None
        and describe_class(current) == saved["class"]
        and getattr(current, "config", None) == saved["config"]
    )
    if not same:
        if saved["config"] is None:
            raise ValueError(
                f"cannot rebuild a {saved['class']} without its "
                "config; a model that changes architecture on resume needs "
                "a `config` dict of its constructor arguments"
            )
        cls = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        device = None
        if current is not None:
            device = next(iter(current.parameters()), torch.empty(0)).device
        current = cls(**saved["config"])
        if device is not None:
            current = current.to(device)
    try:
        current.load_state_dict(saved["state_dict"])
    except RuntimeError as err:
        raise ValueError(
            f"the saved {saved['class']} does not fit the configured model "
            "and has no `config` to rebuild it from (a model that changes "
            f"architecture on resume needs one): {err}"
        ) from err
    return current


@register_checkpoint_hooks
class StaticTeacher:
    """The teacher never changes (the paper's static protocol).

    The base of every protocol: it holds the teacher (:meth:`attach`),
    counts updates, applies epoch-level updates when the next epoch starts
    and saves all of it.  Subclasses say when an update is due
    (:meth:`due_after`) and what it does (:meth:`update`).

    Example
    -------
    >>> hook = StaticTeacher()
    >>> hook.attach(torch.nn.Linear(1, 1)).training
    False
    """

    #: index of the current student (sequential protocol), 0-based
    stage = 0

    def __init__(self):
        self.teacher = None
        self.updates = 0  # teacher updates done so far (epoch and step)
        self.last_update_epoch = 0  # epoch after which the last one applied

    def attach(self, teacher):
        """Hands the protocol its (pre-trained or initial) teacher."""
        self.teacher = freeze(teacher)
        return self.teacher

    def check_student(self, student):
        """Raises ``ValueError`` if this protocol cannot work with
        ``student`` and the attached teacher (checked when a run starts,
        not when the first update is due)."""

    # ------------------------------------------------------------------
    # schedule
    def student_blocks(self):
        """Depth of the student at the current stage (None: as configured)."""
        return None

    @property
    def stage_start_epoch(self):
        """Last epoch before the current student was created."""
        return 0

    def due_after(self, epoch):
        """Whether an epoch-level update is due after epoch ``epoch``."""
        return False

    def ends_stage(self, epoch):
        """Whether the student of the current stage is final after
        ``epoch`` (it is then replaced when training continues)."""
        return False

    def before_epoch(self, brain, epoch):
        """Called when training epoch ``epoch`` (from 1) starts: applies the
        update due after the previous epoch, once."""
        done = epoch - 1
        if done > self.last_update_epoch and self.due_after(done):
            self.update(brain, done)
            self.last_update_epoch = done
            self.updates += 1

    def update(self, brain, epoch):
        """The epoch-level update (``UPDATE_TEACHER``)."""

    def after_step(self, brain):
        """Called after every optimizer step that was taken."""

    # ------------------------------------------------------------------
    # checkpointing: protocol state and the teacher, in one file
    def state(self):
        return {"updates": self.updates,
                "last_update_epoch": self.last_update_epoch}

    def load_state(self, state):
        self.updates = state["updates"]
        self.last_update_epoch = state["last_update_epoch"]

    def load(self, saved):
        """Restores what :meth:`_save` wrote (state and teacher)."""
        self.load_state(saved["protocol"])
        self.teacher = freeze(rebuild(saved["teacher"], self.teacher))

    @mark_as_saver
    def _save(self, path):
        torch.save({"protocol": self.state(),
                    "teacher": describe(self.teacher)}, path)

    @mark_as_loader
    def _load(self, path, end_of_epoch=None):
        self.load(torch.load(path, map_location="cpu"))


class EMATeacher(StaticTeacher):
    """Exponential-moving-average teacher (Section III-C of RemixIT),
    ``theta_T <- gamma theta_S + (1 - gamma) theta_T``.

    Arguments
    ---------
    gamma : float
        Weight of the student (0.01 in the paper).
    every : str
        ``"epoch"`` (the paper) or ``"step"``.

    Example
    -------
    >>> class Pair:
    ...     student = torch.nn.Linear(1, 1, bias=False)
    >>> pair, hook = Pair(), EMATeacher(gamma=0.5)
    >>> _ = hook.attach(torch.nn.Linear(1, 1, bias=False))
    >>> _ = hook.teacher.weight.data.fill_(0.0)
    >>> _ = pair.student.weight.data.fill_(1.0)
    >>> hook.before_epoch(pair, epoch=1)  # nothing before the first epoch
    >>> hook.before_epoch(pair, epoch=2)  # the update after epoch 1
    >>> hook.teacher.weight.item(), hook.updates
    (0.5, 1)
    """

    def __init__(self, gamma=0.01, every="epoch"):
        super().__init__()
        if every not in ("epoch", "step"):
            raise ValueError(f"every must be 'epoch' or 'step', got {every}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"EMA weight gamma must lie in [0, 1], got "
                             f"{gamma}")
        self.gamma = gamma
        self.every = every

    def check_student(self, student):
        check_same_architecture(self.teacher, student)

    def due_after(self, epoch):
        return self.every == "epoch"

    def update(self, brain, epoch=None):
        ema_update(self.teacher, brain.student, self.gamma)

    def after_step(self, brain):
        if self.every == "step":
            self.update(brain)
            self.updates += 1


class SequentialTeacher(StaticTeacher):
    """Sequentially updated teacher with growing students (Fig. 2).

    After every ``every_n_epochs`` epochs the teacher is replaced by the
    latest student (``theta_T := theta_S``, Section III-C) and training
    continues with a freshly initialised student of the next depth in
    ``student_blocks_schedule`` (the last depth is reused once the schedule
    is exhausted), built by ``brain.start_new_student(num_blocks)``.

    Arguments
    ---------
    every_n_epochs : int
        ``K`` in epochs (20 in the paper).
    student_blocks_schedule : list of int
        Student depth per stage, e.g. ``[8, 16, 32]``.

    Example
    -------
    >>> hook = SequentialTeacher(2, [8, 16])
    >>> hook.student_blocks(), [hook.due_after(e) for e in (1, 2, 3, 4)]
    (8, [False, True, False, True])
    >>> hook.stage = 1
    >>> hook.student_blocks()
    16
    """

    def __init__(self, every_n_epochs=20, student_blocks_schedule=(8, 16, 32)):
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError("every_n_epochs must be >= 1")
        self.every_n_epochs = every_n_epochs
        self.schedule = list(student_blocks_schedule)
        self.stage = 0

    def _depth(self, stage):
        return self.schedule[min(stage, len(self.schedule) - 1)]

    def student_blocks(self):
        return self._depth(self.stage)

    @property
    def stage_start_epoch(self):
        return self.last_update_epoch

    def due_after(self, epoch):
        return epoch % self.every_n_epochs == 0

    ends_stage = due_after

    def update(self, brain, epoch):
        self.teacher = freeze(copy.deepcopy(unwrap(brain.student)))
        self.stage += 1
        brain.start_new_student(self.student_blocks())

    def state(self):
        return {**super().state(), "stage": self.stage}

    def load_state(self, state):
        super().load_state(state)
        self.stage = state["stage"]
