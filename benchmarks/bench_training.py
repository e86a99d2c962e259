#!/usr/bin/env python3
"""Where the time and memory of a RemixIT training step go, printed as
markdown tables (issue 11); nothing is asserted.

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184 PYTHONPATH=. \\
        python benchmarks/bench_training.py --threads 2 --repeats 5 --compile

(``--repeats 1 --only breakdown --configs 1`` for a quick look; the whole
run took 28 minutes on the shared 2-core machine, compilation 4 of them.)

Sections (``--only`` picks some; all by default):

* ``breakdown``: a real ``RemixITBrain.fit_batch`` at batch 2 x 8 s,
  16 kHz, timed phase by phase through small wrappers around the Brain's
  own methods and the ``separate`` it calls (no Brain code is copied):
  data loading (the project's dataset pipeline, :func:`make_dataset` and
  the Brain's loader, reading wav files), crop, teacher forward,
  bootstrapped remixing, student forward, loss, backward, optimizer step.
  Rows: the paper's Sudo rm -rf (``SudoRmRf()`` defaults), the demo model
  (``hparams/remixit_demo.yaml``) at the same batch, and the demo as it
  trains (batch 8 x 1.5 s).  Medians of ``--repeats``, configs and
  variants interleaved.
* ``loader``: the loader's throughput (samples/s) for 0, 1, 2 workers and
  prefetch factors, against what a step consumes (batch / step time).
* ``memory``: peak RSS of a RemixIT and a supervised step, each in a fresh
  subprocess (``VmHWM`` of ``/proc/self/status``, reset through
  ``/proc/self/clear_refs`` before the second step), minus the RSS once
  models, optimizer and batch are set up.
* ``variants``: the teacher forward under ``torch.inference_mode`` instead
  of ``no_grad`` and under bf16 autocast, whole steps interleaved with the
  package's; ``--compile`` adds ``torch.compile`` of the student (compile
  time reported apart).
* ``profile``: the operators that take the most time in one paper step.

The corpus (wav files of ``--file_seconds`` s and their CSV manifests in
the project's format) is generated in a temporary folder; no shipped data
is needed.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from machine import describe

from speechbrain_remix.apply import separate
from speechbrain_remix.data import make_dataset, write_manifest
from speechbrain_remix.models import SudoRmRf
from speechbrain_remix.remix import speech_and_noise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000
MODEL_KEYS = ("num_blocks", "enc_num_basis", "enc_kernel_size",
              "out_channels", "in_channels", "upsampling_depth", "groups")
#: the paper's model: ``SudoRmRf()`` defaults (U = 8, 512 bases, 41 taps)
PAPER = {k: v for k, v in SudoRmRf().config.items() if k in MODEL_KEYS}
#: rows of the breakdown: model (None: the YAML's), batch, crop seconds
CONFIGS = {
    "paper U=8, 2 x 8 s": (PAPER, 2, 8.0),
    "demo U=4, 2 x 8 s": (None, 2, 8.0),
    "demo U=4, 8 x 1.5 s (as trained)": (None, 8, 1.5),
}
HPARAMS = {"remixit": "remixit_demo.yaml",
           "supervised": "supervised_demo.yaml"}
PHASES = ("load", "crop", "teacher", "remix", "student", "loss",
          "backward", "optimizer", "other")


# ----------------------------------------------------------------------
# corpus and brains
def make_corpus(folder, n_files, seconds):
    """``n_files`` mixtures (clean + noise, 16-bit wav) and two manifests:
    ``mix.csv`` (mixtures only, as RemixIT trains) and ``supervised.csv``
    (with clean speech)."""
    rng = np.random.default_rng(0)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    rows = []
    for i in range(n_files):
        f0 = rng.uniform(100, 250)
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)
        clean = envelope * sum(np.sin(2 * np.pi * k * f0 * t) / k
                               for k in range(1, 6))
        noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, "same")
        clean, noise = 0.1 * clean, 0.05 * noise
        row = {"ID": f"utt{i:03d}", "duration": seconds}
        for key, wav in (("mix", clean + noise), ("clean", clean),
                         ("noise", noise)):
            name = f"{row['ID']}_{key}.wav"
            sf.write(os.path.join(folder, name), wav.astype("float32"),
                     RATE, subtype="PCM_16")
            row[f"{key}_wav"] = f"$data_root/{name}"
        rows.append(row)
    write_manifest(os.path.join(folder, "mix.csv"), rows,
                   ["ID", "duration", "mix_wav"])
    write_manifest(os.path.join(folder, "supervised.csv"), rows,
                   ["ID", "duration", "mix_wav", "clean_wav"])


def model_config(model, scheme):
    """The model hyperparameters of the YAML, or ``model`` instead."""
    if model is not None:
        return dict(model)
    with open(os.path.join(ROOT, "hparams", HPARAMS[scheme])) as f:
        text = f.read()
    return {k: int(re.search(rf"^{k}: (\d+)", text, re.M).group(1))
            for k in MODEL_KEYS}


def build_brain(scheme, model, batch, seconds, corpus):
    """The recipe's Brain from its demo YAML (model, batch and crop
    overridden) on the generated corpus, ready for ``fit_batch``, and its
    training dataset."""
    cfg = model_config(model, scheme)
    out = tempfile.mkdtemp(dir=corpus)
    teacher = os.path.join(out, "teacher.ckpt")
    torch.save(SudoRmRf(**cfg).state_dict(), teacher)
    manifest = os.path.join(corpus, "mix.csv" if scheme == "remixit"
                            else "supervised.csv")
    overrides = {**cfg, "data_folder": corpus, "output_folder": out,
                 "train_csv": manifest, "valid_csv": manifest,
                 "test_csv": manifest, "teacher_source": teacher,
                 "batch_size": batch, "crop_seconds": seconds}
    with open(os.path.join(ROOT, "hparams", HPARAMS[scheme])) as f:
        hparams = load_hyperpyyaml(f, {k: v for k, v in overrides.items()
                                       if k != "teacher_source"
                                       or scheme == "remixit"})
    brain = hparams["brain_class"](
        modules=hparams["modules"], opt_class=hparams["opt_class"],
        hparams=hparams, run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=None)
    data = make_dataset(manifest, corpus, RATE,
                        type(brain).train_columns(hparams))
    brain.on_fit_start()
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    return brain, data


def loader(brain, data, batch, **kwargs):
    return brain.make_dataloader(data, sb.Stage.TRAIN, batch_size=batch,
                                 shuffle=True, **kwargs)


def batches(brain, data, batch):
    """Endless training batches, each with the time it took to load."""
    while True:
        it = iter(loader(brain, data, batch))
        while True:
            start = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                break
            yield item, time.perf_counter() - start


# ----------------------------------------------------------------------
# timing the phases of the Brain's own fit_batch
class PhaseTimer:
    """Wraps a Brain's methods (instance attributes shadow the class's)
    and the ``separate`` its module calls, and sums their times."""

    def __init__(self, brain):
        self.brain = brain
        self.times = {}
        self.marks = {}

    def _wrap(self, fn, key, mark=None):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.perf_counter()
                self.times[key] = self.times.get(key, 0.0) + end - start
                if mark:
                    self.marks[mark] = end if mark == "checked" else start
        return timed

    @contextlib.contextmanager
    def installed(self):
        brain = self.brain
        module = sys.modules[type(brain).__module__]
        names = {"crop": "crop", "compute_forward": "forward",
                 "compute_objectives": "loss", "optimizers_step": "optimizer",
                 "check_loss_isfinite": "check", "fit_batch": "fit_batch"}
        if hasattr(brain, "teacher_estimates"):
            names["teacher_estimates"] = "teacher"
        saved = {n: brain.__dict__[n] for n in names if n in brain.__dict__}
        for name, key in names.items():
            mark = {"check_loss_isfinite": "checked",
                    "optimizers_step": "stepping"}.get(name)
            setattr(brain, name, self._wrap(getattr(brain, name), key, mark))
        teacher = getattr(brain, "teacher", None)
        original = module.separate

        def timed_separate(model, *args, **kwargs):
            key = "teacher_separate" if model is teacher else "student"
            return self._wrap(original, key)(model, *args, **kwargs)

        module.separate = timed_separate
        try:
            yield self
        finally:
            module.separate = original
            for name in names:  # a variant's own methods stay
                if name in saved:
                    setattr(brain, name, saved[name])
                else:
                    delattr(brain, name)

    def step(self, batch, load_time):
        """One ``fit_batch``; returns the phases' times (seconds)."""
        self.times, self.marks = {}, {}
        cpu = time.process_time()
        self.brain.fit_batch(batch)
        cpu = time.process_time() - cpu
        t = self.times
        phases = {
            "load": load_time,
            "crop": t.get("crop", 0.0),
            "teacher": t.get("teacher", 0.0),
            "student": t.get("student", 0.0),
            "loss": t["loss"],
            "backward": self.marks["stepping"] - self.marks["checked"],
            "optimizer": t["optimizer"],
        }
        phases["remix"] = t["forward"] - phases["crop"] \
            - phases["teacher"] - phases["student"]
        phases["other"] = t["fit_batch"] - sum(
            v for k, v in phases.items() if k not in ("load", "other"))
        phases["total"] = t["fit_batch"] + load_time
        phases["cpu"] = cpu  # of all threads, less sensitive to sharing
        return phases


# ----------------------------------------------------------------------
# variants of the teacher forward and of the student
def teacher_inference_mode(brain):
    """``teacher_estimates`` under ``inference_mode``; the estimates are
    cloned out of it (an inference tensor may not be saved for
    backward)."""
    def estimates(mix):
        brain.teacher.eval()
        with torch.inference_mode():
            out = speech_and_noise(separate(brain.teacher, mix,
                                            rescale=False))
        return out.clone()
    return estimates


def teacher_bf16(brain):
    """``teacher_estimates`` with the teacher's model under bf16 autocast
    (normalization and consistency stay float32)."""
    model = brain.teacher

    def bf16_model(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x).float()

    def estimates(mix):
        model.eval()
        with torch.no_grad():
            out = speech_and_noise(separate(bf16_model, mix,
                                            rescale=False))
        return out.detach()
    return estimates


def si_sdr_db(estimate, reference):
    ref = reference - reference.mean(-1, keepdim=True)
    est = estimate - estimate.mean(-1, keepdim=True)
    proj = (est * ref).sum(-1, keepdim=True) / ref.pow(2).sum(
        -1, keepdim=True) * ref
    return 10 * torch.log10(proj.pow(2).sum(-1)
                            / (est - proj).pow(2).sum(-1))


@contextlib.contextmanager
def variant(brain, name):
    """The Brain with one change applied (``package``: none)."""
    if name == "inference_mode":
        brain.teacher_estimates = teacher_inference_mode(brain)
    elif name == "bf16 teacher":
        brain.teacher_estimates = teacher_bf16(brain)
    try:
        yield
    finally:
        if name != "package":
            del brain.teacher_estimates


# ----------------------------------------------------------------------
# sections
def table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    print("\n".join(lines) + "\n", flush=True)


def fmt(seconds):
    return f"{seconds:.3f}" if seconds < 0.1 else f"{seconds:.2f}"


def run_steps(setups, variants, repeats):
    """Interleaved steps: ``repeats`` rounds of every (config, variant);
    returns ``{(config, variant): [phases, ...]}``."""
    results = {}
    for _ in range(repeats):
        for name, (brain, stream) in setups.items():
            for v in variants:
                batch, load_time = next(stream)
                with variant(brain, v), PhaseTimer(brain).installed() as pt:
                    results.setdefault((name, v), []).append(
                        pt.step(batch, load_time))
    return results


def median_phases(runs):
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def breakdown(args, corpus, setups, variants):
    print(f"## 1. Step breakdown (s, medians of {args.repeats})\n")
    results = run_steps(setups, variants, args.repeats)
    rows, steps = [], {}
    for name in setups:
        m = median_phases(results[(name, "package")])
        steps[name] = m["total"]
        rows.append([name] + [fmt(m[p]) for p in PHASES]
                    + [fmt(m["total"]), fmt(m["cpu"])])
    table(["config"] + list(PHASES) + ["step", "step CPU time"], rows)
    print("load: next() of the Brain's training loader (0 workers); crop: "
          "random crops; teacher: teacher_estimates (normalize, model, "
          "consistency); remix: usable + permutation + bootstrap_remix; "
          "student: separate(student); other: hooks, teacher update, "
          "loss.detach.\n")
    return results, steps


def loader_section(args, setups, steps):
    print("## 2. Loader throughput (samples/s)\n")
    name = next(iter(setups))
    brain, _, data = setups[name]
    cases = [(0, None), (1, 2), (1, 8), (2, 2), (2, 8)]
    rows = []
    for workers, prefetch in cases:
        kwargs = {"num_workers": workers}
        if prefetch:
            kwargs["prefetch_factor"] = prefetch
        epochs, steady = [], []
        for _ in range(max(2, args.repeats)):
            start = time.perf_counter()
            n, first = 0, None
            for batch in loader(brain, data, 2, **kwargs):
                n += len(batch.id)
                if first is None:
                    first = time.perf_counter()
            end = time.perf_counter()
            epochs.append(n / (end - start))
            steady.append((n - 2) / (end - first))
        rows.append([workers, prefetch or "-",
                     f"{statistics.median(epochs):.0f}",
                     f"{statistics.median(steady):.0f}"])
    table(["workers", "prefetch", "epoch incl. start-up",
           "after the first batch"], rows)
    print(f"{len(data)} files of {args.file_seconds:.0f} s, 16-bit wav, in "
          "the page cache; batch 2 (mixtures only, as RemixIT reads them).\n")
    demand = [[name, CONFIGS[name][1], fmt(t), f"{CONFIGS[name][1] / t:.2f}"]
              for name, t in steps.items()]
    table(["config", "batch", "step (s)", "demand (samples/s)"], demand)


def memory_case(args):
    """In a fresh process: RSS after setup, peak of the first and of the
    second step (printed as JSON)."""
    torch.set_num_threads(args.threads)
    model, batch, seconds = CONFIGS[args.config]
    brain, data = build_brain(args.memory_case, model, batch, seconds,
                              args.corpus)
    item = next(iter(loader(brain, data, batch)))

    def status():
        text = open("/proc/self/status").read()
        return {k: int(re.search(rf"{k}:\s+(\d+)", text).group(1)) / 1024
                for k in ("VmRSS", "VmHWM")}

    base = status()["VmRSS"]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    brain.fit_batch(item)
    first = status()["VmHWM"] - base
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    brain.fit_batch(item)
    second = status()["VmHWM"] - base
    print(json.dumps({"base": base, "first": first, "second": second}))


def memory_section(args):
    print("## 3. Peak memory of one step (MiB, fresh process per case)\n")
    tuned = {"MALLOC_MMAP_MAX_": "0",
             "MALLOC_TRIM_THRESHOLD_": "17179869184"}
    plain = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_")}
    envs = {"glibc default": plain, "MMAP_MAX_=0, TRIM 16G": {
        **plain, **tuned}}
    rows = []
    for config in list(CONFIGS)[:2]:
        for allocator, env in envs.items():
            if config != list(CONFIGS)[0] and env != envs[args.allocator]:
                continue  # the allocators compared on the paper model
            for scheme in ("supervised", "remixit"):
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__),
                     "--memory_case", scheme, "--config", config,
                     "--corpus", args.corpus, "--threads",
                     str(args.threads)], env=env,
                    check=True, capture_output=True, text=True).stdout
                m = json.loads(out.strip().splitlines()[-1])
                rows.append([config, allocator, scheme, f"{m['base']:.0f}",
                             f"{m['first']:.0f}", f"{m['second']:.0f}"])
    table(["config", "allocator", "scheme", "RSS after setup",
           "step 1 peak - setup", "step 2 peak - setup"], rows)
    print("Peak: VmHWM, reset (clear_refs) before each step; step 1 also "
          "allocates Adam's state and the gradients; with the tuned "
          "allocator freed memory stays mapped, so step 2 cannot peak "
          "below step 1.\n")


def variants_section(args, results, setups, variants):
    print(f"## 4. Variants (s, medians of {args.repeats}, interleaved "
          "with the package's steps)\n")
    rows = []
    for name in setups:
        base = median_phases(results[(name, "package")])
        for v in variants:
            m = median_phases(results[(name, v)])
            rows.append([name, v, fmt(m["teacher"]), fmt(m["total"]),
                         f"{m['total'] / base['total']:.3f}",
                         fmt(m["cpu"]), f"{m['cpu'] / base['cpu']:.3f}"])
    table(["config", "variant", "teacher", "step", "step / package",
           "step CPU time", "CPU / package"], rows)
    # what bf16 does to the teacher's estimates
    brain = setups[next(iter(setups))][0]
    batch, _ = next(setups[next(iter(setups))][1])
    mix = batch.mix.data[:, :int(8 * RATE)]
    with torch.no_grad():
        ref = speech_and_noise(separate(brain.teacher, mix, rescale=False))
    low = teacher_bf16(brain)(mix)
    same = teacher_inference_mode(brain)(mix)
    print("inference_mode estimates equal no_grad's: "
          f"{torch.equal(ref, same)}; bf16 teacher estimates vs float32: "
          f"SI-SDR {si_sdr_db(low, ref).min():.1f} dB (worst of "
          f"{ref.shape[0] * ref.shape[1]} signals)\n")


def compile_section(args, corpus):
    name = list(CONFIGS)[args.compile_config]
    print(f"## 4b. torch.compile of the student ({name}; s, medians of "
          f"{args.repeats})\n")
    model, batch, seconds = CONFIGS[name]
    runs = {}  # compiled first: its step 1 pays every one-time cost
    for compiled in (True, False):
        torch.manual_seed(0)
        brain, data = build_brain("remixit", model, batch, seconds, corpus)
        if compiled:
            brain.modules["student"] = torch.compile(
                brain.modules["student"])
        runs["compiled" if compiled else "eager"] = (
            brain, batches(brain, data, batch), [])
    for _ in range(args.repeats + 2):  # interleaved; step 1 compiles
        for brain, stream, times in runs.values():
            item, _ = next(stream)
            start = time.perf_counter()
            brain.fit_batch(item)
            times.append(time.perf_counter() - start)
    rows = [[name, f"{t[0]:.1f}", fmt(t[1]), fmt(statistics.median(t[2:]))]
            for name, (_, _, t) in runs.items()]
    table(["student", "step 1 (incl. compile)", "step 2", "later steps"],
          rows)


def profile_section(setups):
    print("## 5. Profile of one step (paper config, top operators by self "
          "CPU time)\n")
    name = next(iter(setups))
    brain, stream, _ = setups[name]
    batch, _ = next(stream)
    with torch.profiler.profile(activities=[
            torch.profiler.ProfilerActivity.CPU]) as prof:
        brain.fit_batch(batch)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total,
                    reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [[e.key, e.count, f"{e.self_cpu_time_total / 1e6:.2f}",
             f"{100 * e.self_cpu_time_total / total:.0f}%"]
            for e in events[:10]]
    table(["operator", "calls", "self CPU (s)", "share"], rows)


def machine(args):
    print(f"{datetime.date.today()}, Python {platform.python_version()}, "
          + describe(args.threads) + "\n", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--file_seconds", type=float, default=10.0)
    parser.add_argument("--only", default="breakdown,loader,memory,"
                        "variants,profile")
    parser.add_argument("--configs", default="0,1,2",
                        help="rows of the breakdown to run (0: paper, "
                        "1: demo 2 x 8 s, 2: demo 8 x 1.5 s)")
    parser.add_argument("--compile", action="store_true",
                        help="also torch.compile the student (minutes)")
    parser.add_argument("--compile_config", type=int, default=0,
                        help="breakdown row compiled with --compile")
    # internal: one memory case in this (fresh) process
    parser.add_argument("--memory_case", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.allocator = "MMAP_MAX_=0, TRIM 16G" if os.environ.get(
        "MALLOC_MMAP_MAX_") == "0" else "glibc default"
    if args.memory_case:
        return memory_case(args)
    torch.set_num_threads(args.threads)
    only = set(args.only.split(","))
    machine(args)
    with tempfile.TemporaryDirectory() as corpus:
        args.corpus = corpus
        make_corpus(corpus, args.files, args.file_seconds)
        if "memory" in only:  # first: nothing else in memory
            memory_section(args)
        setups = {}
        rows = [int(i) for i in args.configs.split(",")]
        for i, (name, (model, batch, seconds)) in enumerate(CONFIGS.items()):
            if i not in rows:
                continue
            torch.manual_seed(0)
            brain, data = build_brain("remixit", model, batch, seconds,
                                      corpus)
            stream = batches(brain, data, batch)
            item, _ = next(stream)
            brain.fit_batch(item)  # warm-up: optimizer state, allocator
            setups[name] = (brain, stream, data)
        variants = ["package"]
        if "variants" in only:
            variants += ["inference_mode", "bf16 teacher"]
        steps = {}
        if "breakdown" in only or "variants" in only:
            results, steps = breakdown(
                args, corpus, {k: v[:2] for k, v in setups.items()},
                variants)
        if "loader" in only:
            loader_section(args, setups, steps)
        if "variants" in only:
            variants_section(args, results, setups, variants)
        if args.compile:
            compile_section(args, corpus)
        if "profile" in only:
            profile_section(setups)


if __name__ == "__main__":
    main()
