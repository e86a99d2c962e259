"""Tests of the teacher-update protocols (speechbrain_remix.teacher)."""

import copy

import pytest
import torch
from conftest import TINY_MODEL
from hypothesis import given, settings
from hypothesis import strategies as st
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_remix.models import SudoRmRf
from speechbrain_remix.teacher import (
    EMATeacher,
    SequentialTeacher,
    StaticTeacher,
    ema_update,
)

TINY = TINY_MODEL


_NETS = {}


def _bn_net(seed, n_batches):
    """Linear + BatchNorm1d, with running statistics from ``n_batches``
    training batches (built once, then copied)."""
    key = (seed, n_batches)
    if key not in _NETS:
        g = torch.Generator().manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)
        )
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
            net.train()
            for _ in range(n_batches):
                net(torch.randn(8, 3, generator=g) * (seed + 1))
        _NETS[key] = net
    return copy.deepcopy(_NETS[key])


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_state_equal(a, b):
    a = a.state_dict() if isinstance(a, torch.nn.Module) else a
    b = b.state_dict() if isinstance(b, torch.nn.Module) else b
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _states_differ(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() != sb.keys() or any(
        not torch.equal(sa[k], sb[k]) for k in sa
    )


# --------------------------------------------------------------------------
# ema_update
# --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(gamma=st.floats(0.0, 1.0))
def test_ema_update_params_and_buffers(gamma):
    teacher, student = _bn_net(0, 1), _bn_net(1, 3)
    t0, s0 = _snapshot(teacher), _snapshot(student)
    assert t0["1.num_batches_tracked"] != s0["1.num_batches_tracked"]
    params_before = [id(p) for p in teacher.parameters()]
    ema_update(teacher, student, gamma)
    t1 = teacher.state_dict()
    assert t1.keys() == t0.keys()
    for name, value in t1.items():
        if value.is_floating_point():
            expected = gamma * s0[name] + (1 - gamma) * t0[name]
            torch.testing.assert_close(value, expected, msg=name)
        else:
            # num_batches_tracked: an integer counter, copied.
            assert value.dtype == torch.long
            assert torch.equal(value, s0[name]), name
    # Explicitly: BatchNorm running statistics are averaged too.
    torch.testing.assert_close(
        teacher[1].running_mean,
        gamma * s0["1.running_mean"] + (1 - gamma) * t0["1.running_mean"],
    )
    # In place: same parameter objects, still trainable, student untouched.
    assert [id(p) for p in teacher.parameters()] == params_before
    assert all(p.requires_grad for p in teacher.parameters())
    _assert_state_equal(student, s0)


def test_ema_update_gamma_zero_keeps_floats():
    teacher, student = _bn_net(0, 1), _bn_net(1, 3)
    t0 = _snapshot(teacher)
    ema_update(teacher, student, 0.0)
    for name, value in teacher.state_dict().items():
        if value.is_floating_point():
            assert torch.equal(value, t0[name]), name


def test_ema_update_gamma_one_copies_student():
    teacher, student = _bn_net(0, 1), _bn_net(1, 3)
    ema_update(teacher, student, 1.0)
    _assert_state_equal(teacher, student)


def test_ema_update_repeated_converges_to_student():
    teacher, student = _bn_net(0, 1), _bn_net(1, 3)
    t0, s0 = _snapshot(teacher), _snapshot(student)
    for _ in range(3):
        ema_update(teacher, student, 0.5)
    w = "0.weight"
    torch.testing.assert_close(
        teacher.state_dict()[w], 0.875 * s0[w] + 0.125 * t0[w]
    )


def test_ema_update_unwraps_wrappers():
    class Wrapper(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    teacher, student = _bn_net(0, 1), _bn_net(1, 3)
    ema_update(Wrapper(teacher), student, 1.0)
    _assert_state_equal(teacher, student)


def test_ema_update_different_architecture_raises():
    teacher = torch.nn.Linear(2, 2)
    student = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError):
        ema_update(teacher, student, 0.5)
    deeper = SudoRmRf(**TINY).with_depth(2)
    with pytest.raises(ValueError):
        ema_update(SudoRmRf(**TINY), deeper, 0.5)


def test_ema_update_shape_mismatch_raises():
    teacher, student = torch.nn.Linear(4, 4), torch.nn.Linear(1, 4)
    with pytest.raises(ValueError):
        ema_update(teacher, student, 0.5)


@pytest.mark.parametrize("gamma", [-0.01, 1.01, float("nan")])
def test_ema_update_invalid_gamma_raises(gamma):
    teacher, student = _bn_net(0, 1), _bn_net(1, 3)
    t0 = _snapshot(teacher)
    with pytest.raises(ValueError):
        ema_update(teacher, student, gamma)
    _assert_state_equal(teacher, t0)


# --------------------------------------------------------------------------
# EMATeacher / StaticTeacher
# --------------------------------------------------------------------------


class Pair:
    """The student an EMA protocol reads; the protocol holds the teacher."""

    def __init__(self, hook):
        self.student = _bn_net(1, 3)
        hook.attach(_bn_net(0, 1))


def test_attach_freezes_the_teacher():
    hook = StaticTeacher()
    teacher = hook.attach(_bn_net(0, 1).train())
    assert hook.teacher is teacher and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_ema_teacher_every_step():
    hook = EMATeacher(gamma=0.5, every="step")
    pair = Pair(hook)
    t0, s0 = _snapshot(hook.teacher), _snapshot(pair.student)
    hook.before_epoch(pair, epoch=2)  # no epoch-level update
    _assert_state_equal(hook.teacher, t0)
    assert hook.updates == 0
    hook.after_step(pair)
    assert hook.updates == 1
    torch.testing.assert_close(
        hook.teacher.state_dict()["0.weight"],
        0.5 * s0["0.weight"] + 0.5 * t0["0.weight"],
    )


def test_ema_teacher_every_epoch_applies_once_when_the_next_starts():
    hook = EMATeacher(gamma=0.25)
    pair = Pair(hook)
    assert hook.every == "epoch"
    t0, s0 = _snapshot(hook.teacher), _snapshot(pair.student)
    for _ in range(3):
        hook.after_step(pair)
    hook.before_epoch(pair, epoch=1)  # nothing is due before epoch 1
    _assert_state_equal(hook.teacher, t0)
    assert hook.updates == 0
    hook.before_epoch(pair, epoch=2)  # the update after epoch 1
    hook.before_epoch(pair, epoch=2)  # a resumed epoch 2: not again
    assert hook.updates == 1 and hook.last_update_epoch == 1
    torch.testing.assert_close(
        hook.teacher.state_dict()["1.running_var"],
        0.25 * s0["1.running_var"] + 0.75 * t0["1.running_var"],
    )


def test_ema_teacher_invalid_every():
    with pytest.raises(ValueError):
        EMATeacher(every="batch")


def test_static_teacher_never_changes():
    hook = StaticTeacher()
    pair = Pair(hook)
    teacher = hook.teacher
    t0 = _snapshot(teacher)
    for epoch in range(1, 5):
        hook.before_epoch(pair, epoch)
        hook.after_step(pair)
    assert hook.teacher is teacher
    _assert_state_equal(hook.teacher, t0)
    assert hook.updates == 0 and hook.stage == 0
    assert hook.student_blocks() is None


# --------------------------------------------------------------------------
# SequentialTeacher
# --------------------------------------------------------------------------


class FakeBrain:
    """What the sequential protocol touches: the student and
    ``start_new_student``."""

    def __init__(self, hook, num_sources=2):
        torch.manual_seed(0)
        hook.attach(SudoRmRf(**{**TINY, "num_sources": num_sources}))
        self.student = SudoRmRf(**TINY)
        self.new_students = []

    def start_new_student(self, num_blocks):
        self.new_students.append(num_blocks)
        self.student = self.student.with_depth(num_blocks)


def _train_a_bit(model, seed):
    """Stand-in for training: moves the weights."""
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=g))


def test_sequential_teacher_schedule():
    hook = SequentialTeacher(
        every_n_epochs=2, student_blocks_schedule=[1, 2, 3]
    )
    brain = FakeBrain(hook, num_sources=3)  # a MixIT teacher first
    assert hook.student_blocks() == 1 and hook.stage == 0

    # Epochs 1 and 2 start: nothing is due.
    teacher, student = hook.teacher, brain.student
    t0 = _snapshot(teacher)
    for epoch in (1, 2):
        hook.before_epoch(brain, epoch)
        _train_a_bit(brain.student, epoch)
        hook.after_step(brain)
    assert hook.teacher is teacher and brain.student is student
    _assert_state_equal(hook.teacher, t0)
    assert hook.stage == 0 and hook.updates == 0
    assert hook.stage_start_epoch == 0 and brain.new_students == []
    assert hook.ends_stage(2) and not hook.ends_stage(1)

    # Epoch 3 starts: the student of epochs 1-2 becomes the teacher (a
    # copy, 2 outputs, frozen); a new depth-2 student.
    old_student = brain.student
    s_state = _snapshot(old_student)
    hook.before_epoch(brain, 3)
    _assert_state_equal(hook.teacher, s_state)
    assert hook.teacher is not old_student  # a copy, not an alias
    assert hook.teacher.num_blocks == 1 and hook.teacher.num_sources == 2
    assert not hook.teacher.training
    assert hook.stage == 1 and hook.updates == 1
    assert hook.stage_start_epoch == 2
    assert brain.student.num_blocks == 2 and brain.new_students == [2]
    for key in TINY:
        if key != "num_blocks":
            assert brain.student.config[key] == TINY[key]
    # A resumed epoch 3 does not update again; training the new student
    # leaves the teacher alone.
    hook.before_epoch(brain, 3)
    assert hook.updates == 1 and brain.new_students == [2]
    _train_a_bit(brain.student, 3)
    _assert_state_equal(hook.teacher, s_state)

    # Epoch 4: nothing; epoch 5: depth 3.
    hook.before_epoch(brain, 4)
    assert hook.stage == 1 and brain.student.num_blocks == 2
    s_state = _snapshot(brain.student)
    hook.before_epoch(brain, 5)
    _assert_state_equal(hook.teacher, s_state)
    assert hook.teacher.num_blocks == 2 and brain.student.num_blocks == 3
    assert hook.stage == 2 and hook.stage_start_epoch == 4

    # Epoch 7: schedule exhausted, the depth stays 3.
    hook.before_epoch(brain, 6)
    hook.before_epoch(brain, 7)
    assert brain.student.num_blocks == 3 and hook.teacher.num_blocks == 3
    assert hook.stage == 3 and hook.updates == 3
    assert hook.stage_start_epoch == 6
    assert brain.new_students == [2, 3, 3]


def test_sequential_teacher_invalid_period():
    with pytest.raises(ValueError):
        SequentialTeacher(every_n_epochs=0)


def test_sequential_state_round_trip():
    hook = SequentialTeacher(2, [1, 2, 3])
    brain = FakeBrain(hook)
    for epoch in range(1, 6):
        hook.before_epoch(brain, epoch)
    state = copy.deepcopy(hook.state())
    assert state == {"updates": 2, "last_update_epoch": 4, "stage": 2}
    fresh = SequentialTeacher(2, [1, 2, 3])
    fresh.load_state(state)
    assert fresh.state() == hook.state()
    assert fresh.student_blocks() == 3 and fresh.stage_start_epoch == 4


def test_checkpoint_holds_and_rebuilds_the_replaced_teacher(tmp_path):
    """The file the protocol saves holds its current teacher (not the one
    it started with); a fresh protocol whose teacher is the pre-trained
    3-output one recovers the 2-output depth-2 teacher of stage 2."""
    hook = SequentialTeacher(1, [1, 2, 3])
    brain = FakeBrain(hook, num_sources=3)
    for epoch in range(1, 4):
        hook.before_epoch(brain, epoch)
        _train_a_bit(brain.student, epoch)
    expected = _snapshot(hook.teacher)
    assert hook.teacher.num_blocks == 2 and hook.teacher.num_sources == 2
    Checkpointer(tmp_path, recoverables={"teacher_update": hook}
                 ).save_checkpoint()

    fresh = SequentialTeacher(1, [1, 2, 3])
    fresh.attach(SudoRmRf(**{**TINY, "num_sources": 3}))
    Checkpointer(tmp_path, recoverables={"teacher_update": fresh}
                 ).recover_if_possible()
    assert fresh.state() == hook.state()
    assert fresh.teacher.num_blocks == 2 and fresh.teacher.num_sources == 2
    _assert_state_equal(fresh.teacher, expected)
    assert not fresh.teacher.training
    assert not any(p.requires_grad for p in fresh.teacher.parameters())


def test_ema_checkpoint_round_trip(tmp_path):
    hook = EMATeacher(0.1, every="step")
    pair = Pair(hook)
    for _ in range(5):
        hook.after_step(pair)
    expected = _snapshot(hook.teacher)
    ckpt = Checkpointer(tmp_path)
    ckpt.add_recoverable("teacher_hook", hook)
    ckpt.save_checkpoint()
    fresh = EMATeacher(0.1, every="step")
    fresh.attach(_bn_net(2, 1))
    recovered = Checkpointer(tmp_path, recoverables={"teacher_hook": fresh})
    recovered.recover_if_possible()
    assert fresh.updates == 5
    _assert_state_equal(fresh.teacher, expected)


def test_rebuild_needs_a_config_to_change_architecture():
    from speechbrain_remix.teacher import describe, rebuild

    saved = describe(torch.nn.Linear(2, 3))
    with pytest.raises(ValueError, match="config"):
        rebuild(saved, torch.nn.Linear(2, 2))
    same = torch.nn.Linear(2, 3)
    assert rebuild(saved, same) is same
