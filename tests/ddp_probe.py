"""``train.py`` with recording probes, for multi-process (DDP) tests:
run it under ``torchrun`` instead of ``train.py``, with the same
arguments.

Every process writes, under the folder ``$DDP_PROBE_DIR``, files named
``r<rank>_<event>.pt``:

* ``update<n>_e<epoch>_s<step>``: after every teacher update (``n``: the
  protocol's update count), the teacher and the unwrapped student;
* ``save_e<epoch>_s<step>`` (intra-epoch) and ``save_e<epoch>_end``: right
  after every checkpoint save, the live teacher, student (and its wrapper's
  class) and random-generator state, and, on the main process, what the
  checkpoint on disk holds (teacher, student, every rank's random state).

``$DDP_PROBE_KILL=<epoch>,<step>`` ends every process (exit code
:data:`KILLED`, after a ``killed_r<rank>`` marker and a barrier) right
after that optimizer step, before its intra-epoch checkpoint: a run killed
at the same point on every rank, to be resumed by launching it again.

Not a test module (no ``test_`` prefix): ``tests/test_ddp.py`` launches it.
"""

import os
import sys

#: exit code of a process the probe killed
KILLED = 17


def _state(module):
    from speechbrain_remix.teacher import unwrap

    return {k: v.detach().clone().cpu()
            for k, v in unwrap(module).state_dict().items()}


def install(folder, kill=None):
    """Class-level patches that record updates and saves under ``folder``
    and kill the run after optimizer step ``kill = (epoch, step)``."""
    import torch

    from speechbrain_remix.brains.base import EnhancementBrain
    from speechbrain_remix.brains.teacher_student import TeacherStudentBrain
    from speechbrain_remix.teacher import EMATeacher, StaticTeacher

    rank = int(os.environ.get("RANK", 0))
    os.makedirs(folder, exist_ok=True)

    def dump(name, record):
        torch.save(record, os.path.join(folder, f"r{rank}_{name}.pt"))

    def recorded(original):
        def patched(hook, brain, *args):
            before = hook.updates
            original(hook, brain, *args)
            if hook.updates > before:
                epoch = brain.hparams.epoch_counter.current
                dump(f"update{hook.updates:02d}_e{epoch}_s{brain.step}", {
                    "teacher": _state(hook.teacher),
                    "student": _state(brain.student),
                    "stage": hook.stage,
                })
        return patched

    def saved(original, end_of_epoch):
        def patched(brain, *args):
            original(brain, *args)
            epoch = brain.hparams.epoch_counter.current
            where = "end" if end_of_epoch else f"s{brain.step}"
            record = {
                "teacher": _state(brain.teacher),
                "student": _state(brain.student),
                "student_wrapper": type(brain.student).__name__,
                "rng": brain.rng.generator.get_state(),
            }
            if rank == 0:  # the process that wrote the checkpoint
                ckpt = brain.checkpointer.find_checkpoint()
                files = ckpt.paramfiles
                record["disk"] = {
                    "teacher": torch.load(files["teacher_update"])[
                        "teacher"]["state_dict"],
                    "student": torch.load(files["student"]),
                    "rng": [state["generator"] for state in
                            torch.load(files["rng"])["rank_states"]],
                    "meta": ckpt.meta,
                }
            dump(f"save_e{epoch}_{where}", record)
        return patched

    batch_end = TeacherStudentBrain.on_fit_batch_end

    def killing_batch_end(brain, batch, outputs, loss, should_step):
        batch_end(brain, batch, outputs, loss, should_step)
        if kill == (brain.hparams.epoch_counter.current, brain.step):
            open(os.path.join(folder, f"killed_r{rank}"), "w").close()
            torch.distributed.barrier()  # every rank at the same point
            os._exit(KILLED)

    StaticTeacher.before_epoch = recorded(StaticTeacher.before_epoch)
    EMATeacher.after_step = recorded(EMATeacher.after_step)
    EnhancementBrain.save_checkpoint = saved(
        EnhancementBrain.save_checkpoint, end_of_epoch=True)
    EnhancementBrain._save_intra_epoch_ckpt = saved(
        EnhancementBrain._save_intra_epoch_ckpt, end_of_epoch=False)
    TeacherStudentBrain.on_fit_batch_end = killing_batch_end


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)  # for ``import train``
    kill = os.environ.get("DDP_PROBE_KILL")
    install(os.environ["DDP_PROBE_DIR"],
            tuple(int(x) for x in kill.split(",")) if kill else None)
    import train

    train.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
