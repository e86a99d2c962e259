"""The teacher-update protocols inside real RemixIT runs, checked by their
weights: after every update the teacher is what the paper's rule gives,
every checkpoint holds the teacher and student the run had, a run killed
and resumed at several points ends bitwise equal to an uninterrupted one,
and the student that is evaluated is the one that was trained (for a
sequential run, the trained student of every stage).

Tiny runs of ``hparams/remixit_demo.yaml``: 8 mixtures, batches of 4, so
two optimizer steps per epoch, 3 epochs."""

import os

import pytest
import torch
from conftest import ROOT, argv
from speechbrain.utils.checkpoints import Checkpointer

import train
from speechbrain_remix.brains import RemixITBrain
from speechbrain_remix.brains.base import EnhancementBrain
from speechbrain_remix.brains.teacher_student import TeacherStudentBrain
from speechbrain_remix.teacher import EMATeacher, StaticTeacher, unwrap

GAMMA = 0.3
PROTOCOLS = {
    "static": "StaticTeacher",
    "ema_epoch": f"EMATeacher\n    gamma: {GAMMA}\n    every: epoch",
    "ema_step": f"EMATeacher\n    gamma: {GAMMA}\n    every: step",
    "sequential": "SequentialTeacher\n    every_n_epochs: 1\n"
                  "    student_blocks_schedule: [1, 2, 3]",
}
EPOCHS = 3


def protocol_yaml(tmp_path, name, every=1):
    """remixit_demo.yaml with another teacher-update protocol (a
    sequential one updating every ``every`` epochs)."""
    with open(os.path.join(ROOT, "hparams", "remixit_demo.yaml")) as f:
        text = f.read()
    ema = ("teacher_update: !new:speechbrain_remix.teacher.EMATeacher\n"
           "    gamma: 0.2\n    every: epoch")
    assert ema in text
    path = str(tmp_path / f"remixit_{name}.yaml")
    with open(path, "w") as f:
        protocol = PROTOCOLS[name].replace("every_n_epochs: 1",
                                           f"every_n_epochs: {every}")
        f.write(text.replace(ema, "teacher_update: !new:"
                             f"speechbrain_remix.teacher.{protocol}"))
    return path


def state(module):
    return {k: v.detach().clone().cpu()
            for k, v in unwrap(module).state_dict().items()}


def assert_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class Probe:
    """Records, through the classes' own methods, every teacher update
    (teacher and student before, teacher after), every checkpoint written
    (with the live teacher and student at that moment) and the student
    that evaluation uses; kills the run (KeyboardInterrupt) at chosen
    points: ``(epoch, step)`` after an optimizer step, or ``("update",
    epoch)`` right after the update applied when ``epoch`` starts."""

    def __init__(self, monkeypatch, kills=()):
        self.updates, self.saves, self.evaluated = [], [], []
        self.kills = set(kills)
        before_epoch = StaticTeacher.before_epoch
        after_step = EMATeacher.after_step
        save = EnhancementBrain.save_checkpoint
        batch_end = TeacherStudentBrain.on_fit_batch_end
        systems = RemixITBrain.systems

        def record(hook, brain, original, *args):
            t0, s0, n = state(hook.teacher), state(brain.student), \
                hook.updates
            original(hook, brain, *args)
            if hook.updates > n:
                self.updates.append(dict(
                    kind=original.__name__, epoch=args[0] if args else None,
                    teacher_before=t0, student_before=s0,
                    teacher_after=state(hook.teacher),
                    student_after=state(brain.student),
                    stage=hook.stage))
            return hook.updates > n

        def patched_before_epoch(hook, brain, epoch):
            if record(hook, brain, before_epoch, epoch) and \
                    ("update", epoch) in self.kills:
                self.kills.discard(("update", epoch))
                raise KeyboardInterrupt

        def patched_after_step(hook, brain):
            record(hook, brain, after_step)

        def patched_save(brain, epoch, valid_loss):
            save(brain, epoch, valid_loss)
            ckpt = brain.checkpointer.find_checkpoint()
            saved = torch.load(ckpt.paramfiles["teacher_update"])
            self.saves.append(dict(
                epoch=epoch, meta=ckpt.meta,
                teacher=state(brain.teacher), student=state(brain.student),
                disk_teacher=saved["teacher"]["state_dict"],
                disk_student=torch.load(ckpt.paramfiles["student"])))

        def patched_batch_end(brain, batch, outputs, loss, should_step):
            batch_end(brain, batch, outputs, loss, should_step)
            key = (brain.hparams.epoch_counter.current, brain.step)
            if key in self.kills:
                self.kills.discard(key)
                raise KeyboardInterrupt

        def patched_systems(brain):
            self.evaluated.append(state(brain.student))
            return systems(brain)

        for cls, name, fn in [
            (StaticTeacher, "before_epoch", patched_before_epoch),
            (EMATeacher, "after_step", patched_after_step),
            (EnhancementBrain, "save_checkpoint", patched_save),
            (TeacherStudentBrain, "on_fit_batch_end", patched_batch_end),
            (RemixITBrain, "systems", patched_systems),
        ]:
            monkeypatch.setattr(cls, name, fn)


@pytest.fixture(scope="module")
def teacher(demo_data, tmp_path_factory):
    """A tiny supervised teacher (2 outputs), trained once (the 3-output
    MixIT case is the DNS test below)."""
    sup = str(tmp_path_factory.mktemp("sup"))
    train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                    output_folder=sup))
    return os.path.join(sup, "save")


def run(hparams, out, demo_data, teacher, extra=(), **overrides):
    """train.main of a tiny run; returns the test summary."""
    options = {**dict(data_folder=demo_data, output_folder=out,
                      teacher_source=teacher, number_of_epochs=EPOCHS,
                      n_train=8, batch_size=4), **overrides}
    return train.main(argv(hparams, **options) + list(extra))


def final_states(out):
    """Teacher and student of the last checkpoint on disk."""
    ckpt = Checkpointer(os.path.join(out, "save")).find_checkpoint()
    saved = torch.load(ckpt.paramfiles["teacher_update"])
    return saved["teacher"]["state_dict"], torch.load(
        ckpt.paramfiles["student"]), saved["protocol"]


def check_checkpoints_hold_the_live_models(probe):
    for save in probe.saves:
        assert_equal(save["disk_teacher"], save["teacher"])
        assert_equal(save["disk_student"], save["student"])


def check_rule(name, probe):
    """Every recorded update against the paper's rule (Sec. III-C)."""
    expected_updates = {"static": 0, "ema_epoch": EPOCHS - 1,
                        "ema_step": 2 * EPOCHS, "sequential": EPOCHS - 1}
    assert len(probe.updates) == expected_updates[name]
    for i, up in enumerate(probe.updates):
        if name.startswith("ema"):
            # theta_T <- gamma theta_S + (1 - gamma) theta_T
            for key, after in up["teacher_after"].items():
                t, s = up["teacher_before"][key], up["student_before"][key]
                if after.is_floating_point():
                    torch.testing.assert_close(
                        after, GAMMA * s + (1 - GAMMA) * t)
                else:
                    assert torch.equal(after, s)
            assert up["kind"] == ("before_epoch" if name == "ema_epoch"
                                  else "after_step")
        else:
            # theta_T := theta_S, and a new, deeper student (1 -> 2 -> 3)
            assert_equal(up["teacher_after"], up["student_before"])
            assert up["epoch"] == i + 2  # when epochs 2 and 3 start
            assert up["stage"] == i + 1
            depth = max(int(k.split(".")[1]) for k in up["student_after"]
                        if k.startswith("blocks.")) + 1
            assert depth == i + 2


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_protocol_updates_checkpoints_and_exact_resume(
        name, teacher, demo_data, tmp_path, monkeypatch):
    hparams = protocol_yaml(tmp_path, name)
    common = dict(student_init="scratch" if name == "sequential" else
                  "teacher")

    straight = Probe(monkeypatch)
    out = str(tmp_path / "straight")
    summary = run(hparams, out, demo_data, teacher, **common)
    check_rule(name, straight)
    assert len(straight.saves) == EPOCHS
    check_checkpoints_hold_the_live_models(straight)
    if name == "static":  # the pre-trained teacher throughout
        best = Checkpointer(teacher).find_checkpoint(min_key="valid_loss")
        pretrained = torch.load(best.paramfiles["model"])
        for save in straight.saves:
            assert_equal(save["teacher"], pretrained)
    # the student evaluated is the one the last epoch trained
    assert_equal(straight.evaluated[-1], straight.saves[-1]["student"])
    assert set(summary) == {"mixture", "teacher", "student"}

    # killed mid-epoch 1, right after the update when epoch 2 starts, in
    # epoch 2 after an intra-epoch checkpoint, and in epoch 3 (stage 3 of
    # the sequential protocol): each time resumed by running it again
    kills = [(1, 1), ("update", 2), (2, 2), (3, 1)]
    resumed = Probe(monkeypatch, kills)
    out_r = str(tmp_path / "resumed")
    interruptions = 0
    while True:
        try:
            again = run(hparams, out_r, demo_data, teacher,
                        ckpt_interval_steps=1, **common)
            break
        except KeyboardInterrupt:
            interruptions += 1
    no_epoch_update = name in ("static", "ema_step")
    assert resumed.kills == ({("update", 2)} if no_epoch_update else set())
    assert interruptions == len(kills) - no_epoch_update
    a, b = final_states(out), final_states(out_r)
    assert_equal(a[0], b[0])  # teacher
    assert_equal(a[1], b[1])  # student
    assert a[2] == b[2]  # protocol state
    for system, metrics in summary.items():
        assert again[system] == pytest.approx(metrics)


def test_sequential_dns_from_a_mixit_teacher_evaluates_every_stage(
        tmp_path, monkeypatch):
    """``remixit_dns.yaml`` (3-output MixIT teacher, students 1 -> 2 -> 3
    blocks, K = 1, 3 epochs) on a fake DNS tree: the trained third-stage
    student is evaluated, ``--test_only --test_stage=k`` evaluates the
    trained student of every stage, and a run killed at stages 2 and 3
    (after the teacher became a 2-output student) resumes exactly."""
    from conftest import TINY_RUN
    from fake_datasets import make_dns

    from speechbrain_remix.models import SudoRmRf

    root = make_dns(str(tmp_path / "dns"))
    model_keys = ("num_blocks", "enc_num_basis", "enc_kernel_size",
                  "out_channels", "in_channels", "upsampling_depth",
                  "groups")
    torch.manual_seed(0)
    mixit = SudoRmRf(num_sources=3, **{k: TINY_RUN[k] for k in model_keys})
    torch.save(mixit.state_dict(), tmp_path / "mixit.ckpt")

    def dns(out, *extra, **overrides):
        options = dict(data_folder=root, output_folder=out, n_valid=2,
                       teacher_source=str(tmp_path / "mixit.ckpt"),
                       student_schedule="[1, 2, 3]", teacher_update_every=1,
                       number_of_epochs=3, **overrides)
        return train.main(argv("remixit_dns.yaml", base=TINY_RUN, **options)
                          + list(extra))

    probe = Probe(monkeypatch)
    out = str(tmp_path / "run")
    dns(out)
    assert [u["stage"] for u in probe.updates] == [1, 2]
    for up in probe.updates:  # theta_T := theta_S (Sec. III-C)
        assert_equal(up["teacher_after"], up["student_before"])
    # stage 1's teacher is the 3-output MixIT model, then 2-output students
    assert probe.updates[0]["teacher_before"]["mask.1.weight"].shape[0] == \
        3 * probe.updates[0]["teacher_after"]["mask.1.weight"].shape[0] // 2
    trained = {1: probe.updates[0]["student_before"],
               2: probe.updates[1]["student_before"],
               3: probe.saves[-1]["student"]}
    assert_equal(probe.evaluated[-1], trained[3])
    assert [s["meta"]["stage"] for s in probe.saves] == [1, 2, 3]
    check_checkpoints_hold_the_live_models(probe)
    assert [s["meta"]["end_of_stage"] for s in probe.saves] == [True] * 3
    for stage in (1, 2, 3):
        # stage 1 without --test_only: the finished run's optimizer exists
        # (a deeper student's) when the shallower student is loaded
        dns(out, *(["--test_only"] if stage > 1 else []), test_stage=stage)
        assert_equal(probe.evaluated[-1], trained[stage])
        assert os.path.isfile(os.path.join(out, f"stage{stage}",
                                           "test_results.csv"))
    with pytest.raises(ValueError, match="no checkpoint of that stage"):
        dns(out, "--test_only", test_stage=4)

    resumed = Probe(monkeypatch, [(2, 2), ("update", 3), (3, 1)])
    out_r = str(tmp_path / "resumed")
    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            dns(out_r, ckpt_interval_steps=1)
    assert not resumed.kills
    dns(out_r, ckpt_interval_steps=1)
    # on disk: the final student of each stage, no stale intra-epoch one
    kept = Checkpointer(os.path.join(out_r, "save")).find_checkpoints()
    assert sorted(c.meta.get("stage") for c in kept) == [1, 2, 3]
    a, b = final_states(out), final_states(out_r)
    assert_equal(a[0], b[0])
    assert_equal(a[1], b[1])
    assert a[2] == b[2]


def test_sequential_selection_by_valid_loss_stays_in_the_last_stage(
        teacher, demo_data, tmp_path, monkeypatch):
    """Validation losses of different stages (different teachers) are not
    compared: earlier stages keep only their final student, and the
    student evaluated is the last stage's best by validation loss."""
    hparams = protocol_yaml(tmp_path, "sequential", every=2)
    probe = Probe(monkeypatch)
    out = str(tmp_path / "run")
    run(hparams, out, demo_data, teacher, student_init="scratch",
        select_by="valid_loss", number_of_epochs=6)
    assert [s["meta"]["stage"] for s in probe.saves] == [1, 1, 2, 2, 3, 3]
    kept = Checkpointer(os.path.join(out, "save")).find_checkpoints()
    assert sorted(c.meta["epoch"] for c in kept if c.meta["stage"] < 3) \
        == [2, 4]  # the final students of stages 1 and 2 only
    last = [s for s in probe.saves if s["meta"]["stage"] == 3]
    best = min(last, key=lambda s: s["meta"]["valid_loss"])
    assert_equal(probe.evaluated[-1], best["student"])
