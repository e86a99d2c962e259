"""Teacher-update protocols of RemixIT (Section III-C, ``UPDATE_TEACHER`` of
Algorithm 1).

* :class:`StaticTeacher`: ``theta_T^(k) = theta_T^(0)`` for every ``k``.
* :class:`SequentialTeacher`: every ``K`` epochs the teacher becomes the
  latest student and a new, optionally deeper student is built
  (``U: 8 -> 16 -> 32``) with a fresh optimizer.
* :class:`EMATeacher`: ``theta_T <- gamma theta_S + (1 - gamma) theta_T``
  after every epoch (the paper, ``gamma = 0.01``) or every step.

A protocol acts on the Brain through three members only: ``brain.teacher``
(a module, replaced or updated in place), ``brain.student`` (the module
being trained) and ``brain.start_new_student(num_blocks)``.  Its state is
saved in every checkpoint, so a resumed run continues the same schedule.

Unlike the official code, the sequential protocol really replaces the
teacher, exactly after ``K`` epochs (epochs count from 1), and the EMA
covers buffers as well as parameters.
"""

import copy

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)


def unwrap(module):
    """Returns the module inside a DDP/DataParallel wrapper, if any."""
    return getattr(module, "module", module)


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
            "a 3-output student: student_num_sources: 3)"
        )
    for name, t_value in t_state.items():
        s_value = s_state[name].to(t_value.device)
        if t_value.is_floating_point():
            t_value.mul_(1.0 - gamma).add_(s_value, alpha=gamma)
        else:
            t_value.copy_(s_value)


@register_checkpoint_hooks
class StaticTeacher:
    """The teacher never changes (the paper's static protocol).

    Subclasses override the ``after_step`` / ``after_epoch`` hooks.
    """

    def __init__(self):
        self.updates = 0  # teacher updates done so far
        self.stage_start_epoch = 0  # last epoch before the current student

    def student_blocks(self):
        """Depth of the student at the current stage (None: as configured)."""
        return None

    def teacher_blocks(self):
        """Depth of the teacher at the current stage (None: as configured)."""
        return None

    def after_step(self, brain):
        """Called after every optimizer step."""

    def after_epoch(self, brain, epoch):
        """Called at the end of every training epoch (``epoch`` from 1)."""

    def state(self):
        return {"updates": self.updates,
                "stage_start_epoch": self.stage_start_epoch}

    def load_state(self, state):
        self.updates = state["updates"]
        self.stage_start_epoch = state["stage_start_epoch"]

    @mark_as_saver
    def _save(self, path):
        torch.save(self.state(), path)

    @mark_as_loader
    def _load(self, path, end_of_epoch=None):
        self.load_state(torch.load(path))


class EMATeacher(StaticTeacher):
    """Exponential-moving-average teacher (Section III-C of RemixIT).

    Arguments
    ---------
    gamma : float
        Weight of the student (0.01 in the paper).
    every : str
        ``"epoch"`` (the paper) or ``"step"``.

    Example
    -------
    >>> class Pair:
    ...     teacher = torch.nn.Linear(1, 1, bias=False)
    ...     student = torch.nn.Linear(1, 1, bias=False)
    >>> pair = Pair()
    >>> _ = pair.teacher.weight.data.fill_(0.0)
    >>> _ = pair.student.weight.data.fill_(1.0)
    >>> hook = EMATeacher(gamma=0.5)
    >>> hook.after_epoch(pair, epoch=1)
    >>> pair.teacher.weight.item()
    0.5
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

    def _update(self, brain):
        ema_update(brain.teacher, brain.student, self.gamma)
        self.updates += 1

    def after_step(self, brain):
        if self.every == "step":
            self._update(brain)

    def after_epoch(self, brain, epoch):
        if self.every == "epoch":
            self._update(brain)


class SequentialTeacher(StaticTeacher):
    """Sequentially updated teacher with growing students (Fig. 2).

    After every ``every_n_epochs`` epochs the teacher is replaced by the
    latest student and training continues with a freshly initialised
    student of the next depth in ``student_blocks_schedule`` (the last
    depth is reused once the schedule is exhausted).

    Arguments
    ---------
    every_n_epochs : int
        ``K`` in epochs (20 in the paper).
    student_blocks_schedule : list of int
        Student depth per stage, e.g. ``[8, 16, 32]``.

    Example
    -------
    >>> hook = SequentialTeacher(2, [8, 16])
    >>> hook.student_blocks(), hook.teacher_blocks()
    (8, None)
    >>> hook.stage = 1
    >>> hook.student_blocks(), hook.teacher_blocks()
    (16, 8)
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

    def teacher_blocks(self):
        return self._depth(self.stage - 1) if self.stage > 0 else None

    def after_epoch(self, brain, epoch):
        if epoch % self.every_n_epochs:
            return
        brain.teacher = copy.deepcopy(unwrap(brain.student))
        self.stage += 1
        self.updates += 1
        self.stage_start_epoch = epoch
        brain.start_new_student(self.student_blocks())

    def state(self):
        return {**super().state(), "stage": self.stage}

    def load_state(self, state):
        super().load_state(state)
        self.stage = state["stage"]
