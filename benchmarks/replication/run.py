#!/usr/bin/env python3
"""Do the papers' claims hold?  Every claim's comparison, on the
replication corpus, over several seeds, with verdicts computed from the
spread.

One command (builds the corpus first when ``--corpus`` has none)::

    python benchmarks/replication/run.py --seeds 1 2

Each run is a ``train.py`` run of a demo recipe (``hparams/*_demo.yaml``)
pointed at the corpus, in its own folder ``<out>/<job>_s<seed>``; seed
``s`` is both the training seed and the data seed (the draws of the
mixtures, the domain split and the personal speaker's recordings), so the
spread covers both.  Jobs run ``--workers`` at a time with one thread each
(on 2 cores two 1-thread runs do more than one 2-thread run, and one
thread makes every run's arithmetic independent of the schedule).  A run
whose ``summary.csv`` exists is not repeated; an interrupted run resumes
from its last checkpoint; so the same command continues an interrupted
replication, and more ``--seeds`` add to the table.

Written to ``--out``, named for the seeds (``s1_2`` for ``--seeds 1 2``):
``results.csv`` (every system of every run and seed), ``table_s1_2.md``
(mean ± standard deviation over seeds), ``verdicts_s1_2.md`` (each
claim: the paired differences and the verdicts), ``curves_s1_2.png``
(validation loss per epoch of every job and seed) and, with ``--compare``
(another results folder, or the same one with ``--compare_seeds``),
``reproduction_s3_4_vs_s1_2.md``: whether this table reproduces that one
within its spread.

Verdict rule (per metric, paired by seed): with ``d`` the per-seed
differences (claimed better minus claimed worse) and
``noise = max(MIN_EFFECT, 2 * std(d) / sqrt(n))``: **held** when every
``d > 0`` and ``mean(d) > noise``; **did not hold** when every ``d < 0``
and ``mean(d) < -noise``; **within noise** otherwise.  ``MIN_EFFECT``
(0.1 dB SI-SDRi, 0.02 PESQ) is above the float run-to-run spread of one
configuration (0.04-0.07 dB and 0.01 measured on the demo).  Each claim is
judged on its paper's metric (SI-SDR(i), PESQ for the latent SSE of Wang
et al.); the other metric's verdict is shown beside it.
"""

import argparse
import csv
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
METRICS = ("si_sdri", "pesq", "stoi", "dnsmos_ovrl")
MIN_EFFECT = {"si_sdri": 0.1, "pesq": 0.02}

# Sizes: "full" takes about an hour per pair of seeds on 2 cores; "mini"
# checks the pipeline in CI (a minute or two), not the verdicts.  Both
# evaluate without DNSMOS unless --dnsmos is given.
SCALES = {
    "full": dict(
        n_train=120, n_valid=16, n_test=60,
        epochs=dict(supervised=12, mixit=12, remixit=10, scratch=12,
                    latent=12, predictor=30, personal=20,
                    supervised_long=24, remixit_long=20,
                    scratch_long=24),
        model={}),
    "mini": dict(
        n_train=8, n_valid=4, n_test=3,
        epochs=dict(supervised=1, mixit=1, remixit=2, scratch=1, latent=1,
                    predictor=1, personal=1, supervised_long=2,
                    remixit_long=3, scratch_long=2),
        model=dict(num_blocks=1, enc_num_basis=32, out_channels=16,
                   in_channels=32, upsampling_depth=2, groups=4)),
}
PERSONAL_SPEAKER = "asterisk_fr"


class Job:
    """One ``train.py`` run: a recipe, its overrides, the jobs whose
    ``save`` folders it reads (``{override key: job}``) and its epochs."""

    def __init__(self, name, yaml, epochs, needs=None, personal=False,
                 model=True, dnsmos=True, **overrides):
        self.name, self.yaml, self.epochs = name, yaml, epochs
        self.needs = needs or {}
        self.personal, self.model, self.dnsmos = personal, model, dnsmos
        self.overrides = overrides


# Saijo & Ogawa's MixIT (claim 4's baseline): mixtures of two observed
# mixtures, twice the outputs, every assignment, their loss (Eq. 8) and
# batch, selected and scored like the models from scratch (the last
# checkpoint; the output nearest the clean speech)
MIXIT_OF_MIXTURES = dict(mom_from_batch=True, all_assignments=True,
                         num_sources=4, batch_size=8, tau=0.001,
                         select_by="last", eval_output="closest")

JOBS = [
    Job("supervised", "supervised_demo", "supervised"),
    Job("mixit", "mixit_demo", "mixit", needs={"_data": "supervised"}),
    Job("remixit_static", "remixit_demo", "remixit",
        needs={"teacher_source": "supervised"},
        teacher_update="!new:speechbrain_remix.teacher.StaticTeacher"),
    Job("remixit_ema", "remixit_demo", "remixit",
        needs={"teacher_source": "supervised"}),
    Job("remixit_sequential", "remixit_demo", "remixit",
        needs={"teacher_source": "supervised"},
        teacher_update="SEQUENTIAL"),
    Job("remixit_pn1", "remixit_demo", "remixit",
        needs={"teacher_source": "supervised"}, p_n=1.0),
    Job("remixit_from_mixit", "remixit_demo", "remixit",
        needs={"teacher_source": "mixit"}, teacher_num_sources=3,
        student_num_sources=3),
    Job("self_remixing", "self_remixing_demo", "scratch",
        needs={"_data": "supervised"}),
    Job("remixit_scratch", "self_remixing_demo", "scratch",
        needs={"_data": "supervised"}, objective="remixit",
        constrained=True),
    # claim 4's baseline; "mixit" above is RemixIT's Table I MixIT (OOD
    # noise, speech output fixed)
    Job("mixit_scratch", "mixit_demo", "scratch",
        needs={"_data": "supervised"}, **MIXIT_OF_MIXTURES),
    Job("cae", "cae_demo", "latent", needs={"_data": "supervised"},
        model=False, dnsmos=False),
    Job("mae", "mae_demo", "latent", needs={"cae_source": "cae"},
        model=False, dnsmos=False, eval_metrics="composite"),
    Job("snr_predictor", "snr_predictor_demo", "predictor", personal=True,
        model=False, dnsmos=False, eval_metrics="snr_frames"),
    Job("pse", "personal_pse_demo", "personal", personal=True, model=False,
        needs={"_data": "snr_predictor"}),
    Job("pse_dp", "personal_pse_demo", "personal", personal=True,
        model=False, needs={"snr_predictor_source": "snr_predictor"},
        purify=True),
    Job("remixit_weighted", "remixit_weighted_demo", "remixit",
        needs={"teacher_source": "supervised",
               "snr_predictor_source": "snr_predictor"}),
]

# (claim, what is claimed, better system, worse system[, the paper's
# metric, default SI-SDRi]); a system is "<job>:<row of its summary.csv>"
CLAIMS = [
    ("1a", "RemixIT student beats its supervised out-of-domain teacher "
     "(Table I, semi-supervised)", "remixit_ema:student", "supervised:model"),
    ("1b", "RemixIT student beats its MixIT teacher (Table I, "
     "unsupervised)", "remixit_from_mixit:student", "mixit:model"),
    ("2a", "EMA teacher beats a static teacher (Fig. 2)",
     "remixit_ema:student", "remixit_static:student"),
    ("2b", "sequential teacher beats a static teacher (Fig. 2)",
     "remixit_sequential:student", "remixit_static:student"),
    ("3", "unsupervised RemixIT beats MixIT on the same in-domain mixtures "
     "(Table I)", "remixit_from_mixit:student", "mixit:model"),
    ("4a", "Self-Remixing from scratch beats MixIT from scratch (Saijo & "
     "Ogawa, Table 1)", "self_remixing:model", "mixit_scratch:model"),
    ("4b", "RemixIT from scratch beats MixIT from scratch (Saijo & Ogawa, "
     "Table 1)", "remixit_scratch:model", "mixit_scratch:model"),
    ("5", "in-domain noise remixing helps: p_n = 1 beats p_n = 0 (Eq. 17, "
     "Fig. 6)", "remixit_pn1:student", "remixit_ema:student"),
    ("6a", "latent-space SSE beats spectral subtraction (Wang et al., "
     "Table 1)", "mae:sse", "mae:spectral_subtraction", "pesq"),
    ("6b", "PSE+DP beats PSE (Sivaraman et al., Fig. 3)", "pse_dp:model",
     "pse:model"),
    ("6c", "confidence-weighted RemixIT beats plain RemixIT (beyond the "
     "papers)", "remixit_weighted:student", "remixit_ema:student"),
]


# Why a claim does not hold (``--study``): the RemixIT student from its
# supervised teacher (claim 1a) with one setting changed at a time, each
# judged against its own run's teacher and against remixit_ema; then
# claim 4 with twice the epochs and with a teacher updated every step.
STUDY_JOBS = [
    Job("supervised_long", "supervised_demo", "supervised_long"),
    Job("remixit_long_teacher", "remixit_demo", "remixit",
        needs={"teacher_source": "supervised_long"}),
    Job("remixit_lr1e-4", "remixit_demo", "remixit",
        needs={"teacher_source": "supervised"}, lr=1e-4),
    Job("remixit_gamma0.05", "remixit_demo", "remixit",
        needs={"teacher_source": "supervised"},
        teacher_update="!new:speechbrain_remix.teacher.EMATeacher "
        "{gamma: 0.05, every: epoch}"),
    Job("remixit_batch16", "remixit_demo", "remixit",
        needs={"teacher_source": "supervised"}, batch_size=16),
    Job("remixit_epochs20", "remixit_demo", "remixit_long",
        needs={"teacher_source": "supervised"}),
    # claim 4 with twice the epochs (the paper trains 600)
    Job("self_remixing_long", "self_remixing_demo", "scratch_long",
        needs={"_data": "supervised"}),
    Job("mixit_scratch_long", "mixit_demo", "scratch_long",
        needs={"_data": "supervised"}, **MIXIT_OF_MIXTURES),
    # claim 4 with the teacher updated every step: 180 EMA updates instead
    # of 12 (the paper's 600 epochs give 600); 1 - 0.8 ** (1 / 15) = 0.015
    # per step moves the teacher as far per epoch (15 steps at full scale)
    Job("self_remixing_step", "self_remixing_demo", "scratch",
        needs={"_data": "supervised"},
        teacher_update="!new:speechbrain_remix.teacher.EMATeacher "
        "{gamma: 0.015, every: step}"),
]
STUDY_CLAIMS = [
    (f"S{k}{x}", f"{job.name}: student beats " + (
        "its teacher" if x == "a" else "remixit_ema's student"),
     f"{job.name}:student",
     f"{job.name}:teacher" if x == "a" else "remixit_ema:student")
    for k, job in enumerate([j for j in STUDY_JOBS[1:]
                             if j.yaml == "remixit_demo"], 1)
    for x in "ab"
] + [("S6", "Self-Remixing beats MixIT from scratch with 24 epochs "
      "(claim 4a)", "self_remixing_long:model", "mixit_scratch_long:model"),
      ("S7", "Self-Remixing with its teacher updated every step beats "
       "MixIT from scratch (claim 4a)", "self_remixing_step:model",
       "mixit_scratch:model"),
      ("S8", "Self-Remixing: a teacher updated every step beats one "
       "updated every epoch", "self_remixing_step:model",
       "self_remixing:model")]


def job_folder(out, job, seed):
    return os.path.join(out, f"{job}_s{seed}")


def command(job, seed, args, scale):
    """The ``train.py`` command line of ``job`` for ``seed``."""
    sc = SCALES[scale]
    data = os.path.join(args.out, "data" if not job.personal
                        else "personal_data", f"s{seed}")
    cmd = [sys.executable, os.path.join(ROOT, "train.py"),
           os.path.join(ROOT, "hparams", job.yaml + ".yaml"),
           f"--output_folder={job_folder(args.out, job.name, seed)}",
           f"--demo_folder={os.path.abspath(args.corpus)}",
           f"--data_folder={data}", f"--seed={seed}", f"--data_seed={seed}",
           f"--number_of_epochs={sc['epochs'][job.epochs]}",
           "--noprogressbar"]
    if job.personal:
        cmd += [f"--speaker={args.speaker}"]
    else:
        cmd += [f"--n_train={sc['n_train']}", f"--n_valid={sc['n_valid']}",
                f"--n_test={args.n_test or sc['n_test']}"]
    for key, other in job.needs.items():
        if not key.startswith("_"):
            cmd.append(f"--{key}={job_folder(args.out, other, seed)}/save")
    overrides = dict(job.overrides)
    if overrides.get("teacher_update") == "SEQUENTIAL":
        # the teacher becomes the student halfway; a fresh student of the
        # same depth trains the second half (Fig. 2 at CPU scale)
        half = max(1, sc["epochs"][job.epochs] // 2)
        blocks = sc["model"].get("num_blocks", 4)
        overrides["teacher_update"] = (
            "!new:speechbrain_remix.teacher.SequentialTeacher "
            f"[{half}, [{blocks}]]")
    if "eval_metrics" not in overrides:
        overrides["eval_metrics"] = ("enhancement_dnsmos" if job.dnsmos and
                                     args.dnsmos else "enhancement")
    if job.model:
        overrides.update(sc["model"])
    cmd += [f"--{k}={v}" for k, v in overrides.items()]
    return cmd


def run_jobs(args, scale, jobs=JOBS):
    """Runs every (job, seed) not finished, ``args.workers`` at a time,
    each when the jobs it needs have finished."""
    todo = [(job, seed) for seed in args.seeds for job in jobs
            if not finished(args.out, job.name, seed)
            or lacks_dnsmos(args, job, seed)]
    # the jobs others wait for first (every seed's teacher, then theirs)
    todo.sort(key=lambda js: (depth(js[0], jobs), js[1]))
    running, failed = {}, []
    logs = os.path.join(args.out, "logs")
    os.makedirs(logs, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    start = time.time()
    while todo or running:
        for key, (proc, t0, log) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[key]
            status = "done" if proc.returncode == 0 else "FAILED"
            print(f"[{time.time() - start:7.0f} s] {status} {key} "
                  f"({time.time() - t0:.0f} s)", flush=True)
            if proc.returncode:
                failed.append(key)
        blocked = {k[1] for k in failed}
        for job, seed in list(todo):
            if len(running) >= args.workers:
                break
            if seed in blocked and any(
                    f[0] in job.needs.values() for f in failed):
                todo.remove((job, seed))
                continue
            if not all(finished(args.out, other, seed)
                       for other in job.needs.values()):
                continue
            todo.remove((job, seed))
            key = f"{job.name}_s{seed}"
            log = open(os.path.join(logs, key + ".log"), "a")
            proc = subprocess.Popen(command(job, seed, args, scale),
                                    cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            running[key] = (proc, time.time(), log)
            print(f"[{time.time() - start:7.0f} s] start {key}", flush=True)
        if not running and todo:  # what is left needs a failed job
            failed += [f"{j.name}_s{s}" for j, s in todo]
            break
        time.sleep(1)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}; see {logs}/")


def depth(job, jobs):
    """0 for a job that needs none, else one more than its deepest need."""
    by_name = {j.name: j for j in jobs}
    return max((1 + depth(by_name[n], jobs) for n in job.needs.values()),
               default=0)


def with_needs(names, jobs):
    """The jobs named and those they need, in ``jobs``' order."""
    by_name = {j.name: j for j in jobs}
    unknown = set(names) - set(by_name)
    if unknown:
        raise SystemExit(f"--only: no job {sorted(unknown)}; jobs: "
                         f"{', '.join(by_name)}")
    keep, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name not in keep:
            keep.add(name)
            stack += list(by_name[name].needs.values())
    return [j for j in jobs if j.name in keep]


def finished(out, job, seed):
    return os.path.isfile(os.path.join(job_folder(out, job, seed),
                                       "summary.csv"))


def lacks_dnsmos(args, job, seed):
    """With ``--dnsmos``, whether a finished run's summary has no DNSMOS:
    run again, it resumes at its last epoch and only evaluates, so DNSMOS
    is added without training anything again."""
    if not (getattr(args, "dnsmos", False) and job.dnsmos
            and finished(args.out, job.name, seed)):
        return False
    path = os.path.join(job_folder(args.out, job.name, seed), "summary.csv")
    with open(path, newline="") as f:
        return not any(row.get("dnsmos_ovrl") for row in csv.DictReader(f))


def collect(out, seeds, jobs=JOBS + STUDY_JOBS):
    """``{system: {seed: {metric: value}}}`` from every run's summary."""
    results = {}
    for job in jobs:
        for seed in seeds:
            path = os.path.join(job_folder(out, job.name, seed),
                                "summary.csv")
            if not os.path.isfile(path):
                continue
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    values = {m: float(row[m]) for m in METRICS if m in row}
                    results.setdefault(f"{job.name}:{row['ID']}", {})[
                        seed] = values
    return results


def verdict(diffs, min_effect=MIN_EFFECT["si_sdri"]):
    """``(mean, noise, verdict)`` of per-seed differences (see the module
    docstring).

    Example
    -------
    >>> verdict([0.5, 0.7])[2], verdict([0.5, -0.1])[2]
    ('held', 'within noise')
    >>> verdict([-0.4, -0.6])[2], verdict([0.05, 0.06])[2]
    ('did not hold', 'within noise')
    """
    d = np.asarray(diffs, dtype=float)
    spread = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.inf
    noise = max(min_effect, 2 * spread)
    mean = float(d.mean())
    if np.all(d > 0) and mean > noise:
        return mean, noise, "held"
    if np.all(d < 0) and mean < -noise:
        return mean, noise, "did not hold"
    return mean, noise, "within noise"


def paired(results, better, worse, seeds, metric):
    """Per-seed differences ``better - worse`` of ``metric`` (the seeds
    both have)."""
    a, b = results.get(better, {}), results.get(worse, {})
    return [a[s][metric] - b[s][metric] for s in seeds if s in a and s in b]


def tag(seeds):
    """``s1_2`` for seeds 1 and 2: the name of their tables."""
    return "s" + "_".join(map(str, seeds))


def _cell(values):
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


def write_tables(out, seeds, claims=CLAIMS):
    """``results.csv``, ``table.md`` and ``verdicts.md``; returns the
    verdict rows."""
    results = collect(out, seeds)
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["system", "seed", *METRICS])
        for system, by_seed in results.items():
            for seed, values in sorted(by_seed.items()):
                w.writerow([system, seed,
                            *[f"{values[m]:.4f}" if m in values else ""
                              for m in METRICS]])
    lines = [f"Seeds: {', '.join(map(str, seeds))}; mean ± standard "
             "deviation over seeds.", "",
             "| system | SI-SDRi (dB) | PESQ | STOI | DNSMOS OVRL | seeds |",
             "|---|---|---|---|---|---|"]
    for system, by_seed in results.items():
        cells = [_cell([v[m] for v in by_seed.values() if m in v])
                 for m in METRICS]
        lines.append(f"| {system} | " + " | ".join(cells)
                     + f" | {len(by_seed)} |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(out, f"table_{tag(seeds)}.md"), "w") as f:
        f.write(table)
    rows = []
    vlines = ["| claim | better | worse | SI-SDRi difference per seed (dB) "
              "| mean ± noise | SI-SDRi verdict | PESQ difference, mean "
              "± noise | PESQ verdict |", "|---" * 8 + "|"]
    for claim, text, better, worse, *metric in claims:
        metric = metric[0] if metric else "si_sdri"
        if not paired(results, better, worse, seeds, "si_sdri"):
            continue
        cells, judged = [], {}
        for m in ("si_sdri", "pesq"):
            d = paired(results, better, worse, seeds, m)
            mean, noise, v = verdict(d, MIN_EFFECT[m])
            judged[m] = (d, mean, noise, v)
            digits = 2 if m == "si_sdri" else 3
            cells.append(f"{mean:+.{digits}f} ± {noise:.{digits}f}")
            cells.append(f"**{v}**" if m == metric else v)
        d, mean, noise, v = judged[metric]
        rows.append((claim, text, better, worse, d, mean, noise, v))
        per_seed = ", ".join(f"{x:+.2f}" for x in judged["si_sdri"][0])
        vlines.append(f"| {claim}: {text} | {better} | {worse} | {per_seed} "
                      f"| " + " | ".join(cells) + " |")
    with open(os.path.join(out, f"verdicts_{tag(seeds)}.md"), "w") as f:
        f.write("\n".join(vlines) + "\n")
    print(table)
    print("\n".join(vlines))
    return rows


def reproduces(out, other, seeds, other_seeds=None, claims=CLAIMS):
    """Whether this table lies within the other table's spread: per system
    (SI-SDRi) and per claim (the paired difference on its metric),
    ``|mean - other mean| <= max(MIN_EFFECT, 2 * pooled std)``; the
    verdicts of both are listed too."""
    other_seeds = other_seeds or seeds
    mine, theirs = collect(out, seeds), collect(other, other_seeds)
    lines = ["| system | SI-SDRi here | there | within 2 std |",
             "|---|---|---|---|"]
    ok = True
    for system in mine:
        a = [v["si_sdri"] for v in mine[system].values() if "si_sdri" in v]
        b = [v["si_sdri"] for v in theirs.get(system, {}).values()
             if "si_sdri" in v]
        if not a or not b:  # not in both, or no SI-SDRi (the predictor)
            continue
        pooled = np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2) \
            if min(len(a), len(b)) > 1 else 0.0
        inside = abs(np.mean(a) - np.mean(b)) <= max(
            2 * pooled, MIN_EFFECT["si_sdri"])
        ok &= bool(inside)
        lines.append(f"| {system} | {_cell(a)} | {_cell(b)} | "
                     f"{'yes' if inside else 'NO'} |")
    lines += ["", "| claim | difference here | there | within 2 std | "
              "verdict here | there |", "|---" * 6 + "|"]
    for claim, _, better, worse, *metric in claims:
        m = metric[0] if metric else "si_sdri"
        a, b = (paired(r, better, worse, s, m) for r, s in
                ((mine, seeds), (theirs, other_seeds)))
        if not a or not b:
            continue
        pooled = np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2) \
            if min(len(a), len(b)) > 1 else 0.0
        inside = abs(np.mean(a) - np.mean(b)) <= max(2 * pooled,
                                                      MIN_EFFECT[m])
        ok &= bool(inside)
        lines.append(f"| {claim} ({m}) | {_cell(a)} | {_cell(b)} | "
                     f"{'yes' if inside else 'NO'} | "
                     f"{verdict(a, MIN_EFFECT[m])[2]} | "
                     f"{verdict(b, MIN_EFFECT[m])[2]} |")
    text = "\n".join(lines) + "\n"
    name = f"reproduction_{tag(seeds)}_vs_{tag(other_seeds or seeds)}.md"
    with open(os.path.join(out, name), "w") as f:
        f.write(text)
    print(text)
    return ok


def plot_curves(out, seeds, jobs=JOBS):
    """Validation loss per epoch of every job (one line per seed)."""
    from speechbrain_remix.plots import _pyplot, read_train_log

    plt = _pyplot()
    cols = 4
    rows = (len(jobs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows),
                             squeeze=False)
    for ax, job in zip(axes.flat, jobs):
        for seed in seeds:
            log = os.path.join(job_folder(out, job.name, seed),
                               "train_log.txt")
            if os.path.isfile(log):
                curves = read_train_log(log)
                if "valid loss" in curves:
                    ax.plot(curves["epoch"][:len(curves["valid loss"])],
                            curves["valid loss"], label=f"seed {seed}")
        ax.set_title(job.name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
    for ax in axes.flat[len(jobs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("validation loss (each recipe's own loss)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"curves_{tag(seeds)}.png"), dpi=80)
    plt.close(fig)


def ensure_corpus(corpus):
    if os.path.isfile(os.path.join(corpus, "sources.csv")):
        return
    print(f"{corpus}: no corpus yet; building it", flush=True)
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import tempfile

    from build_offline_corpus import build

    with tempfile.TemporaryDirectory(prefix="offline_debs_") as debs:
        build(corpus, debs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--corpus", default=os.path.join(ROOT, "data",
                                                         "offline"))
    parser.add_argument("--out", default=os.path.join(ROOT, "results",
                                                      "replication"))
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--speaker", default=PERSONAL_SPEAKER,
                        help="the personalized runs' test speaker "
                        "(fillets_v on the demo corpus)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dnsmos", action="store_true",
                        help="also DNSMOS P.835 of every enhancement system "
                        "(about 1.2 s per file and system on one thread: "
                        "more than the training at the full scale); "
                        "finished runs without it are evaluated again")
    parser.add_argument("--study", action="store_true",
                        help="also the settings study of claim 1a "
                        "(STUDY_JOBS: teacher epochs, lr, EMA weight, "
                        "batch, student epochs) and of claim 4 (epochs, "
                        "EMA updates every step)")
    parser.add_argument("--n_test", type=int, default=None,
                        help="test mixtures (default: the scale's; the "
                        "demo corpus has speech for 53)")
    parser.add_argument("--only", nargs="+", default=None,
                        help="run only these jobs (and those they need)")
    parser.add_argument("--compare", default=None,
                        help="another results folder: does this table "
                        "reproduce its table?")
    parser.add_argument("--compare_seeds", type=int, nargs="+", default=None)
    args = parser.parse_args(argv)
    args.out = os.path.abspath(args.out)
    ensure_corpus(args.corpus)
    t0 = time.time()
    jobs, claims = JOBS, CLAIMS
    if args.study:
        jobs, claims = JOBS + STUDY_JOBS, CLAIMS + STUDY_CLAIMS
    if args.only:
        jobs = with_needs(args.only, jobs)
    run_jobs(args, args.scale, jobs)
    print(f"runs: {time.time() - t0:.0f} s", flush=True)
    rows = write_tables(args.out, args.seeds, claims)
    plot_curves(args.out, args.seeds, jobs)
    if args.compare:
        reproduces(args.out, os.path.abspath(args.compare), args.seeds,
                   args.compare_seeds, claims)
    return rows


if __name__ == "__main__":
    main()
