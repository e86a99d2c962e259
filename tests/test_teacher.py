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
    """The two members an EMA protocol touches."""

    def __init__(self):
        self.teacher = _bn_net(0, 1)
        self.student = _bn_net(1, 3)


def test_ema_teacher_every_step():
    pair, hook = Pair(), EMATeacher(gamma=0.5, every="step")
    t0, s0 = _snapshot(pair.teacher), _snapshot(pair.student)
    hook.after_epoch(pair, epoch=1)
    _assert_state_equal(pair.teacher, t0)
    assert hook.updates == 0
    hook.after_step(pair)
    assert hook.updates == 1
    torch.testing.assert_close(
        pair.teacher.state_dict()["0.weight"],
        0.5 * s0["0.weight"] + 0.5 * t0["0.weight"],
    )


def test_ema_teacher_every_epoch():
    pair, hook = Pair(), EMATeacher(gamma=0.25)
    assert hook.every == "epoch"
    t0, s0 = _snapshot(pair.teacher), _snapshot(pair.student)
    for _ in range(3):
        hook.after_step(pair)
    _assert_state_equal(pair.teacher, t0)
    assert hook.updates == 0
    hook.after_epoch(pair, epoch=1)
    assert hook.updates == 1
    torch.testing.assert_close(
        pair.teacher.state_dict()["1.running_var"],
        0.25 * s0["1.running_var"] + 0.75 * t0["1.running_var"],
    )


def test_ema_teacher_invalid_every():
    with pytest.raises(ValueError):
        EMATeacher(every="batch")


def test_static_teacher_never_changes():
    pair, hook = Pair(), StaticTeacher()
    t0 = _snapshot(pair.teacher)
    teacher = pair.teacher
    for epoch in range(1, 4):
        hook.after_step(pair)
        hook.after_epoch(pair, epoch)
    assert pair.teacher is teacher
    _assert_state_equal(pair.teacher, t0)
    assert hook.updates == 0
    assert hook.student_blocks() is None and hook.teacher_blocks() is None


# --------------------------------------------------------------------------
# SequentialTeacher
# --------------------------------------------------------------------------


class FakeBrain:
    def __init__(self):
        torch.manual_seed(0)
        self.teacher = SudoRmRf(**TINY)
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
    brain = FakeBrain()
    hook = SequentialTeacher(
        every_n_epochs=2, student_blocks_schedule=[1, 2, 3]
    )
    assert hook.student_blocks() == 1 and hook.teacher_blocks() is None

    # Epoch 1: nothing happens.
    _train_a_bit(brain.student, 1)
    teacher, student = brain.teacher, brain.student
    t0 = _snapshot(teacher)
    hook.after_step(brain)
    hook.after_epoch(brain, 1)
    assert brain.teacher is teacher and brain.student is student
    _assert_state_equal(brain.teacher, t0)
    assert hook.stage == 0 and hook.updates == 0
    assert hook.stage_start_epoch == 0
    assert brain.new_students == []

    # Epoch 2: the student becomes the teacher; a new depth-2 student.
    _train_a_bit(brain.student, 2)
    old_student = brain.student
    s_state = _snapshot(old_student)
    hook.after_epoch(brain, 2)
    _assert_state_equal(brain.teacher, s_state)
    assert brain.teacher is not old_student  # a copy, not an alias
    assert brain.teacher.num_blocks == 1
    assert hook.stage == 1 and hook.updates == 1
    assert hook.stage_start_epoch == 2
    assert brain.student.num_blocks == 2
    assert brain.new_students == [2]
    assert hook.student_blocks() == 2 and hook.teacher_blocks() == 1
    # The new student is a fresh model of the same configuration.
    assert brain.student is not old_student
    for key in TINY:
        if key != "num_blocks":
            assert brain.student.config[key] == TINY[key]
    # Training the new student leaves the teacher alone.
    _train_a_bit(brain.student, 3)
    _assert_state_equal(brain.teacher, s_state)

    # Epoch 3: nothing; epoch 4: depth 3.
    hook.after_epoch(brain, 3)
    assert hook.stage == 1 and brain.student.num_blocks == 2
    s_state = _snapshot(brain.student)
    hook.after_epoch(brain, 4)
    _assert_state_equal(brain.teacher, s_state)
    assert brain.teacher.num_blocks == 2
    assert brain.student.num_blocks == 3
    assert hook.stage == 2 and hook.stage_start_epoch == 4
    assert hook.teacher_blocks() == 2

    # Epochs 5, 6: schedule exhausted, the depth stays 3.
    hook.after_epoch(brain, 5)
    hook.after_epoch(brain, 6)
    assert brain.student.num_blocks == 3
    assert brain.teacher.num_blocks == 3
    assert hook.stage == 3 and hook.updates == 3
    assert hook.stage_start_epoch == 6
    assert hook.student_blocks() == 3 and hook.teacher_blocks() == 3
    assert brain.new_students == [2, 3, 3]


def test_sequential_teacher_invalid_period():
    with pytest.raises(ValueError):
        SequentialTeacher(every_n_epochs=0)


def test_sequential_state_round_trip():
    hook = SequentialTeacher(2, [1, 2, 3])
    brain = FakeBrain()
    for epoch in range(1, 5):
        hook.after_epoch(brain, epoch)
    state = copy.deepcopy(hook.state())
    assert state == {"updates": 2, "stage_start_epoch": 4, "stage": 2}
    fresh = SequentialTeacher(2, [1, 2, 3])
    fresh.load_state(state)
    assert fresh.state() == hook.state()
    assert fresh.student_blocks() == 3 and fresh.teacher_blocks() == 2


def test_ema_state_round_trip():
    hook = EMATeacher(0.5, every="step")
    pair = Pair()
    for _ in range(3):
        hook.after_step(pair)
    fresh = EMATeacher(0.5, every="step")
    fresh.load_state(hook.state())
    assert (
        fresh.state()
        == hook.state()
        == {
            "updates": 3,
            "stage_start_epoch": 0,
        }
    )


def test_sequential_checkpoint_round_trip(tmp_path):
    hook = SequentialTeacher(2, [1, 2, 3])
    brain = FakeBrain()
    for epoch in range(1, 5):
        hook.after_epoch(brain, epoch)
    ckpt = Checkpointer(tmp_path, recoverables={"teacher_hook": hook})
    ckpt.save_checkpoint()

    fresh = SequentialTeacher(2, [1, 2, 3])
    assert fresh.state() != hook.state()
    recovered = Checkpointer(tmp_path)
    recovered.add_recoverable("teacher_hook", fresh)
    assert recovered.recover_if_possible() is not None
    assert fresh.state() == hook.state()
    assert fresh.stage == 2 and fresh.stage_start_epoch == 4


def test_ema_checkpoint_round_trip(tmp_path):
    hook = EMATeacher(0.1, every="step")
    pair = Pair()
    for _ in range(5):
        hook.after_step(pair)
    ckpt = Checkpointer(tmp_path)
    ckpt.add_recoverable("teacher_hook", hook)
    ckpt.save_checkpoint()
    fresh = EMATeacher(0.1, every="step")
    recovered = Checkpointer(tmp_path, recoverables={"teacher_hook": fresh})
    recovered.recover_if_possible()
    assert fresh.updates == 5
