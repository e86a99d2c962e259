"""Multi-process training (PyTorch DDP, gloo backend on CPU) through
``torchrun``, as a user would launch it on several GPUs, checked by the
weights every process holds.

Two processes run ``tests/ddp_probe.py`` (``train.py`` with probes that
dump, per rank, the teacher and the unwrapped student after every teacher
update and at every checkpoint save, and can kill every rank at the same
step).  Tiny RemixIT runs: 8 mixtures, batches of 2 per rank, so two
optimizer steps per epoch on each rank.

* EMA per step: after every update, teacher and student are bitwise the
  same on both ranks; every checkpoint holds them and the random state of
  each rank (two different streams, ``seed + rank``).
* Sequential (K = 1, students 1 -> 2 -> 3 blocks, from scratch): the same
  after each teacher swap and new student, which is DDP-wrapped; a run
  killed in the middle of stage 2 and launched again saves, at every later
  checkpoint, on each rank, the teacher, student and random state of the
  uninterrupted run, and ends bitwise equal to it.
"""

import glob
import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, argv
from test_protocols import assert_equal, final_states, protocol_yaml

import train

pytestmark = pytest.mark.skipif(shutil.which("torchrun") is None,
                                reason="no torchrun")

PROBE = os.path.join(ROOT, "tests", "ddp_probe.py")
RANKS = (0, 1)
STEPS = 2  # optimizer steps per epoch on each rank: 8 / 2 ranks / 2


@pytest.fixture(scope="module")
def teacher(demo_data, tmp_path_factory):
    """A tiny supervised teacher, trained once (single process)."""
    sup = str(tmp_path_factory.mktemp("sup"))
    train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                    output_folder=sup))
    return os.path.join(sup, "save")


def launch(hparams, out, probe, demo_data, teacher, kill=None,
           **overrides):
    """``torchrun --nproc_per_node=2 tests/ddp_probe.py`` of a tiny run;
    returns the finished process and the records of both ranks."""
    args = argv(hparams, data_folder=demo_data, output_folder=out,
                teacher_source=teacher, skip_prep=True, n_train=8,
                batch_size=2, **overrides)
    env = dict(os.environ, OMP_NUM_THREADS="1", DDP_PROBE_DIR=probe,
               DDP_PROBE_KILL=kill or "")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc_per_node=2", PROBE, *args, "--distributed_backend=gloo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    return result, records(probe)


def records(probe):
    """``{event: {rank: record}}`` of one launch (see ddp_probe.py)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(probe, "r*_*.pt"))):
        rank, event = os.path.basename(path)[1:-3].split("_", 1)
        out.setdefault(event, {})[int(rank)] = torch.load(path)
    return out


def check_ranks_agree(recs):
    """Every rank recorded every event, with the same teacher and
    student."""
    for event, per_rank in recs.items():
        assert set(per_rank) == set(RANKS), event
        for rank in RANKS[1:]:
            assert_equal(per_rank[rank]["teacher"], per_rank[0]["teacher"])
            assert_equal(per_rank[rank]["student"], per_rank[0]["student"])


def check_checkpoints(recs):
    """At every save: the checkpoint just written holds the live teacher
    and student, and each rank's own random state (two different streams);
    the student is DDP-wrapped on every rank."""
    saves = {e: r for e, r in recs.items() if e.startswith("save")}
    assert saves
    for event, per_rank in saves.items():
        disk = per_rank[0]["disk"]  # the checkpoint just written:
        epoch, where = event[len("save_e"):].split("_")
        if where == "end":
            assert disk["meta"]["epoch"] == int(epoch), event
        else:
            assert disk["meta"].get("brain_intra_epoch_ckpt"), event
        assert_equal(disk["teacher"], per_rank[0]["teacher"])
        assert_equal(disk["student"], per_rank[0]["student"])
        assert len(disk["rng"]) == len(RANKS), event
        for rank in RANKS:
            assert torch.equal(disk["rng"][rank], per_rank[rank]["rng"])
            assert per_rank[rank]["student_wrapper"] == \
                "DistributedDataParallel"
        assert not torch.equal(disk["rng"][0], disk["rng"][1])


def depth(state):
    return 1 + max(int(k.split(".")[1]) for k in state
                   if k.startswith("blocks."))


def events(recs, kind):
    return sorted(e for e in recs if e.startswith(kind))


def test_ema_per_step_ranks_agree(teacher, demo_data, tmp_path):
    out = str(tmp_path / "ema")
    result, recs = launch(protocol_yaml(tmp_path, "ema_step"), out,
                          str(tmp_path / "probe"), demo_data, teacher,
                          number_of_epochs=2, student_init="teacher")
    assert result.returncode == 0, result.stderr[-3000:]
    # one update per optimizer step: both ranks took STEPS steps per epoch
    updates = events(recs, "update")
    assert updates == [f"update{n + 1:02d}_e{n // STEPS + 1}_s"
                       f"{n % STEPS + 1}" for n in range(2 * STEPS)]
    assert events(recs, "save") == ["save_e1_end", "save_e2_end"]
    check_ranks_agree(recs)
    check_checkpoints(recs)
    for a, b in zip(updates, updates[1:]):  # the teacher does move
        assert not torch.equal(*[
            next(iter(recs[e][0]["teacher"].values())) for e in (a, b)])
    with open(os.path.join(out, "summary.csv")) as f:
        assert [line.split(",")[0] for line in f][1:] == [
            "mixture", "teacher", "student"]
    log = open(os.path.join(out, "train_log.txt")).read()
    assert "epoch: 2" in log


def test_sequential_ranks_agree_and_resume_exactly(teacher, demo_data,
                                                   tmp_path):
    hparams = protocol_yaml(tmp_path, "sequential")
    options = dict(number_of_epochs=3, student_init="scratch",
                   ckpt_interval_steps=1)

    out = str(tmp_path / "straight")
    result, straight = launch(hparams, out, str(tmp_path / "probe"),
                              demo_data, teacher, **options)
    assert result.returncode == 0, result.stderr[-3000:]
    # the teacher swaps when epochs 2 and 3 start, for the student of the
    # epoch before; the new student is deeper
    assert events(straight, "update") == ["update01_e2_s0",
                                          "update02_e3_s0"]
    for n, epoch in [(1, 2), (2, 3)]:
        update = straight[f"update{n:02d}_e{epoch}_s0"][0]
        assert update["stage"] == n
        assert_equal(update["teacher"],
                     straight[f"save_e{epoch - 1}_end"][0]["student"])
        assert depth(update["student"]) == n + 1
    # a checkpoint after every step and at the end of every epoch
    saves = [f"save_e{e}_{s}" for e in (1, 2, 3)
             for s in ["s1", "s2", "end"]]
    assert events(straight, "save") == sorted(saves)
    check_ranks_agree(straight)
    check_checkpoints(straight)

    # killed on both ranks after step 2 of epoch 2 (stage 2), before its
    # checkpoint, then launched again: it resumes from step 1 of epoch 2
    out_r = str(tmp_path / "resumed")
    killed, before = launch(hparams, out_r, str(tmp_path / "probe_k"),
                            demo_data, teacher, kill="2,2", **options)
    assert killed.returncode != 0
    for rank in RANKS:
        assert os.path.exists(tmp_path / "probe_k" / f"killed_r{rank}")
    assert events(before, "save") == sorted(saves[:4])  # to e2_s1
    result, after = launch(hparams, out_r, str(tmp_path / "probe_r"),
                           demo_data, teacher, **options)
    assert result.returncode == 0, result.stderr[-3000:]
    assert events(after, "update") == ["update02_e3_s0"]
    assert events(after, "save") == sorted(saves[4:])
    for recs in (before, after):
        check_ranks_agree(recs)
        check_checkpoints(recs)
        # every rank, at every point, where the uninterrupted run was
        for event, per_rank in recs.items():
            for rank in RANKS:
                want = straight[event][rank]
                assert_equal(per_rank[rank]["teacher"], want["teacher"])
                assert_equal(per_rank[rank]["student"], want["student"])
                if "rng" in want:
                    assert torch.equal(per_rank[rank]["rng"], want["rng"])
    a, b = final_states(out), final_states(out_r)
    assert_equal(a[0], b[0])  # teacher
    assert_equal(a[1], b[1])  # student
    assert a[2] == b[2]  # protocol state
