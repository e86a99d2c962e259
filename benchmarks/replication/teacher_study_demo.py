#!/usr/bin/env python3
"""The RemixIT teacher update on the second corpus: the demo's.

The replication's ``--study`` compares teacher updates on its own corpus;
before a default changes it must hold on the demo corpus too (issue 12:
defaults that hold up across seeds *and* corpora).  This trains
``hparams/remixit_demo.yaml`` (16 epochs, the quick start's student) from
the quick start's supervised teacher with each teacher update and
training seed, two runs at a time with one thread each, and prints
SI-SDRi, PESQ and STOI per run and each update's paired difference from
the YAML's::

    python train.py hparams/supervised_demo.yaml   # the teacher, once
    python benchmarks/replication/teacher_study_demo.py --seeds 1 2 1234

Runs go to ``<out>/<update>_s<seed>``; a finished run (its
``summary.csv``) is not repeated.  The data (the demo's mixtures, data
seed 1234) is the same for every run: the seed varies the student's
training only.
"""

import argparse
import csv
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EMA = "!new:speechbrain_remix.teacher.EMATeacher {{gamma: {}, every: epoch}}"
#: name -> teacher_update override (None: the YAML's, EMA 0.2 per epoch)
UPDATES = {"ema0.2": None, "ema0.05": EMA.format(0.05),
           "static": "!new:speechbrain_remix.teacher.StaticTeacher"}
METRICS = ("si_sdri", "pesq", "stoi")


def command(name, seed, args):
    """The ``train.py`` command line of update ``name`` and ``seed``."""
    cmd = [sys.executable, os.path.join(ROOT, "train.py"),
           os.path.join(ROOT, "hparams", "remixit_demo.yaml"),
           f"--seed={seed}", f"--teacher_source={args.teacher}",
           f"--output_folder={os.path.join(args.out, f'{name}_s{seed}')}",
           "--noprogressbar"]
    if UPDATES[name]:
        cmd.append(f"--teacher_update={UPDATES[name]}")
    return cmd


def summary(args, name, seed):
    """``{row: {metric: value}}`` of a finished run, else ``None``."""
    path = os.path.join(args.out, f"{name}_s{seed}", "summary.csv")
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as f:
        return {row["ID"]: {m: float(row[m]) for m in METRICS}
                for row in csv.DictReader(f)}


def run_all(args):
    """Trains every (update, seed) not finished, ``args.workers`` at a
    time; a failed run stops the others and exits naming its log."""
    todo = [(n, s) for s in args.seeds for n in args.updates
            if summary(args, n, s) is None]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    os.makedirs(args.out, exist_ok=True)
    running = []
    while todo or running:
        while todo and len(running) < args.workers:
            name, seed = todo.pop(0)
            log = open(os.path.join(args.out, f"{name}_s{seed}.log"), "w")
            print(f"start {name} seed {seed}", flush=True)
            running.append((name, seed, log, subprocess.Popen(
                command(name, seed, args), stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=ROOT)))
        name, seed, log, proc = running.pop(0)
        if proc.wait() != 0:
            for *_, other in running:
                other.kill()
            sys.exit(f"{name} seed {seed} failed: see {log.name}")
        log.close()


def table(args):
    """Markdown: each run's student, then each update's differences from
    the YAML's (``ema0.2``), paired by seed (STOI: their mean)."""
    lines = ["| update | seed | teacher SI-SDRi | student SI-SDRi | PESQ |"
             " STOI |", "|---|---|---|---|---|---|"]
    diffs = {}
    for name in args.updates:
        for seed in args.seeds:
            res = summary(args, name, seed)
            if res is None:
                continue
            st = res["student"]
            lines.append(f"| {name} | {seed} | "
                         f"{res['teacher']['si_sdri']:.2f} | "
                         f"{st['si_sdri']:.2f} | {st['pesq']:.2f} | "
                         f"{st['stoi']:.3f} |")
            base = summary(args, "ema0.2", seed)
            if name != "ema0.2" and base is not None:
                diffs.setdefault(name, []).append(
                    [st[m] - base["student"][m] for m in METRICS])
    lines += ["", "| update minus ema0.2 | seeds | SI-SDRi (per seed) |"
              " PESQ (per seed) | STOI (mean) |", "|---|---|---|---|---|"]
    for name, d in diffs.items():
        per = [", ".join(f"{x[i]:+.2f}" for x in d) for i in range(2)]
        stoi = sum(x[2] for x in d) / len(d)
        lines.append(f"| {name} | {len(d)} | {per[0]} | {per[1]} | "
                     f"{stoi:+.3f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 1234])
    parser.add_argument("--updates", nargs="+", default=list(UPDATES),
                        choices=list(UPDATES))
    parser.add_argument("--teacher", default=os.path.join(
        ROOT, "results", "demo", "supervised", "save"))
    parser.add_argument("--out", default=os.path.join(
        ROOT, "results", "demo", "teacher_study"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not os.path.isdir(args.teacher):
        sys.exit(f"{args.teacher}: no supervised teacher; train it first "
                 "with python train.py hparams/supervised_demo.yaml (or "
                 "give --teacher SAVE_FOLDER)")
    run_all(args)
    print(table(args))


if __name__ == "__main__":
    main()
