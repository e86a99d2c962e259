#!/usr/bin/env python3
"""Inference speed of the paper's Sudo rm -rf on the CPU, printed as
markdown tables (never asserted).

Three parts, each table headed by the machine, torch version, threads and
allocator setting (``MALLOC_*``) it was measured with:

* ``rtf``: real-time factor (compute seconds / audio seconds) of
  enhancing one 10 s mixture at 16 kHz as the enhancer does (mean/std
  normalization, model, mixture consistency, speech slot:
  :class:`~speechbrain_remix.onnx_export.SpeechEnhancer`), for eager
  PyTorch under ``torch.no_grad`` and ``torch.inference_mode``,
  ``torch.compile`` (inductor; compile and warm-up time reported apart
  from the steady state), onnxruntime on the graph
  :func:`~speechbrain_remix.onnx_export.export_onnx` writes
  (``intra_op_num_threads`` = the thread count), and "chunk batching":
  the mixture cut into overlapping windows stacked as one batch and
  joined by the enhancer's crossfade.  Every thread count of
  ``--threads`` runs in a fresh process; in it the variants are timed
  interleaved, medians of ``--repeats`` after one warm-up call each.
* ``length``: RTF and peak memory of ``RemixEnhancer.enhance_file``
  (windows of 20 s, 1 s crossfade: the streaming of long recordings)
  against the recording's length, each point in a fresh process (peak
  RSS only grows).  ``--whole`` adds whole-file enhancement
  (``enhance_batch`` on the entire recording) for comparison.
* ``profile``: ``torch.profiler`` (CPU) of one forward on ``--seconds``:
  the top ``--top`` operators by self time, and the share of TAC,
  U-ConvBlocks and the rest (forward hooks, outside the profiler).

Random weights (speed and memory do not depend on them) unless
``--model`` names an exported or run folder.  Timings on these CPUs swing
with glibc's malloc (run the RTF and profile parts with
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184``); peak memory
of long files is measured with glibc's defaults (``enhance_file``
returns free heap pages after each window; the tuned setting keeps
freed memory mapped).  The
figures in ``benchmarks/README.md``::

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184 \\
        python benchmarks/bench_inference.py --part rtf --threads 1 2 \\
        --repeats 5
    python benchmarks/bench_inference.py --part length --threads 2 \\
        --lengths 1 10 60 600
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184 \\
        python benchmarks/bench_inference.py --part profile --threads 2 \\
        --repeats 3

Quick checks: ``--part rtf --repeats 1 --variants no_grad onnx``,
``--part length --lengths 1 10``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
from machine import describe as context

RATE = 16000
VARIANTS = ("no_grad", "inference_mode", "compile", "onnx", "chunks")
CONFIGS = {
    "paper": {},  # U = 8, 512 bases of 41 taps, hop 20, 16 groups
    "demo": dict(num_blocks=4, enc_num_basis=256, out_channels=128,
                 in_channels=256, groups=8),
}


# ----------------------------------------------------------------------
# context printed beside every table
def enhancer_and_mixture(args, threads):
    """The model, the enhancer's inference path around it and a mixture
    of ``args.seconds``, with ``threads`` torch threads."""
    import torch

    from speechbrain_remix.onnx_export import SpeechEnhancer

    torch.set_num_threads(threads)
    model = build_model(args)
    mixture = 0.1 * torch.randn(
        1, int(args.seconds * RATE),
        generator=torch.Generator().manual_seed(1))
    return model, SpeechEnhancer(model).eval(), mixture


def build_model(args):
    """The model (``SudoRmRf`` of ``--config``, or ``--model``'s) in
    eval mode."""
    import torch

    if args.model:
        from speechbrain_remix.inference import RemixEnhancer

        return RemixEnhancer.load(args.model).mods.model.eval()
    from speechbrain_remix.models import SudoRmRf

    torch.manual_seed(0)
    return SudoRmRf(**CONFIGS[args.config]).eval()


# ----------------------------------------------------------------------
# part 1: RTF of 10 s per variant, one process per thread count
def chunked(enhancer, window, overlap):
    """``mixture [1, T] -> speech [1, T]`` through windows of ``window``
    samples overlapping by ``overlap``, enhanced as one batch (the last
    window zero-padded) and joined by the enhancer's crossfade."""
    import torch

    from speechbrain_remix.overlap_add import OverlapAdd, window_starts

    def run(mixture):
        total = mixture.shape[-1]
        starts = window_starts(total, window, overlap)
        batch = torch.zeros(len(starts), window)
        for i, start in enumerate(starts):
            piece = mixture[0, start:start + window]
            batch[i, :piece.shape[-1]] = piece
        speech = enhancer(batch)
        join = OverlapAdd(overlap)
        parts = [join.push(speech[i, :min(window, total - start)],
                           last=i == len(starts) - 1)
                 for i, start in enumerate(starts)]
        return torch.cat(parts, -1)[None]

    return run


def rtf_worker(args):
    """Times every variant at ``args.threads[0]`` threads; prints one
    JSON object."""
    import torch

    from speechbrain_remix.onnx_export import export_onnx

    threads = args.threads[0]
    model, enhancer, mixture = enhancer_and_mixture(args, threads)
    fns, setup, notes, failed = {}, {}, {}, {}

    def no_grad(x):
        with torch.no_grad():
            return enhancer(x)

    def inference_mode(x):
        with torch.inference_mode():
            return enhancer(x)

    if "no_grad" in args.variants:
        fns["eager, no_grad"] = no_grad
    if "inference_mode" in args.variants:
        fns["eager, inference_mode"] = inference_mode
    if "compile" in args.variants:
        compiled = torch.compile(enhancer, backend="inductor")

        def compiled_fn(x):
            with torch.no_grad():
                return compiled(x)

        try:
            start = time.perf_counter()
            compiled_fn(mixture)
            first = time.perf_counter() - start
            start = time.perf_counter()
            compiled_fn(mixture)
            setup["torch.compile (inductor)"] = (
                f"compile (1st call) {first:.1f} s, 2nd call "
                f"{time.perf_counter() - start:.2f} s")
            fns["torch.compile (inductor)"] = compiled_fn
        except Exception as error:  # inductor's failures are many kinds
            failed["torch.compile (inductor)"] = error
    if "onnx" in args.variants:
        import onnxruntime

        path = os.path.join(tempfile.mkdtemp(), "enhancer.onnx")
        start = time.perf_counter()
        exporter = export_onnx(model, path, RATE)
        exported = time.perf_counter() - start
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        start = time.perf_counter()
        session = onnxruntime.InferenceSession(
            path, options, providers=["CPUExecutionProvider"])
        opened = time.perf_counter() - start
        name = f"onnxruntime {onnxruntime.__version__}"
        setup[name] = (f"export ({exporter}) {exported:.1f} s, session "
                       f"{opened:.1f} s")

        def onnx_fn(x):
            out = session.run(["speech"], {"mixture": x.numpy()})[0]
            return torch.from_numpy(out)

        fns[name] = onnx_fn
    if "chunks" in args.variants:
        for spec in args.chunks:
            window, overlap = (float(v) for v in spec.split(":"))
            run = chunked(inference_mode, int(window * RATE),
                          int(overlap * RATE))
            name = (f"chunk batching, {window:g} s windows, "
                    f"{overlap:g} s overlap")
            from speechbrain_remix.overlap_add import window_starts

            n = len(window_starts(mixture.shape[-1], int(window * RATE),
                                  int(overlap * RATE)))
            notes[name] = f"batch {n} (inference_mode)"
            fns[name] = run
    ref = no_grad(mixture)
    peak = float(ref.abs().max())
    times, dev = {name: [] for name in fns}, {}
    for name, fn in fns.items():  # warm-up, and the agreement
        dev[name] = float((fn(mixture) - ref).abs().max()) / peak
    for _ in range(args.repeats):  # interleaved: drifts hit all alike
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(mixture)
            times[name].append(time.perf_counter() - start)
    rows = [dict(variant=name, median=statistics.median(t),
                 spread=[min(t), max(t)], dev=dev[name],
                 setup=setup.get(name, notes.get(name, "")))
            for name, t in times.items()]
    rows += [dict(variant=name, failed=f"{type(e).__name__}: "
                  f"{str(e).strip().splitlines()[0][:200]}")
             for name, e in failed.items()]
    print(json.dumps(dict(context=context(threads), rows=rows)))


def rtf_table(args):
    results = []
    for threads in args.threads:
        cmd = [sys.executable, os.path.abspath(__file__), "--part", "rtf",
               "--worker", "--threads", str(threads), "--repeats",
               str(args.repeats), "--seconds", str(args.seconds),
               "--config", args.config, "--variants", *args.variants,
               "--chunks", *args.chunks]
        if args.model:
            cmd += ["--model", args.model]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            print(f"threads {threads}: worker failed:\n{out.stderr[-3000:]}")
            continue
        results.append((threads, json.loads(out.stdout.splitlines()[-1])))
    what = args.model or f"SudoRmRf {args.config} config, random weights"
    print(f"\n### RTF of enhancing {args.seconds:g} s at {RATE} Hz "
          f"({what}; medians of {args.repeats}, interleaved)\n")
    for threads, result in results:
        print(result["context"] + "\n")
        print("| variant | threads | RTF (median) | min-max | max abs "
              "dev / peak | setup |")
        print("|---|---|---|---|---|---|")
        for row in result["rows"]:
            if "failed" in row:
                print(f"| {row['variant']} | {threads} | failed | | | "
                      f"{row['failed']} |")
                continue
            lo, hi = (t / args.seconds for t in row["spread"])
            print(f"| {row['variant']} | {threads} | "
                  f"{row['median'] / args.seconds:.4f} | {lo:.4f}-{hi:.4f} "
                  f"| {row['dev']:.1e} | {row['setup']} |")
        print()


# ----------------------------------------------------------------------
# part 2: RTF and peak memory against the recording's length
PROBE = textwrap.dedent("""
    import json, resource, sys, time, soundfile as sf, torch
    from speechbrain_remix.inference import RemixEnhancer
    from speechbrain_remix.models import SudoRmRf
    model, config, path, mode, threads = sys.argv[1:6]
    torch.set_num_threads(int(threads))
    configs = json.loads(sys.argv[6])
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if model:
        enh = RemixEnhancer.load(model)
    else:
        torch.manual_seed(0)
        enh = RemixEnhancer(
            modules={"model": SudoRmRf(**configs[config])},
            hparams={"sample_rate": 16000}, run_opts={"device": "cpu"})
    base = rss()
    enh.enhance_batch(torch.zeros(1, 16000))  # one-off set-up costs
    start = time.perf_counter()
    if mode == "whole":
        wav = torch.from_numpy(sf.read(path, dtype="float32")[0])
        enh.enhance_batch(wav[None])
    else:
        enh.enhance_file(path, path + ".out.wav")
    seconds = time.perf_counter() - start
    print(json.dumps([base, rss(), seconds]))
""")


def length_table(args):
    threads = args.length_threads or max(args.threads)
    rng = np.random.default_rng(0)
    modes = ["windowed", "whole"] if args.whole else ["windowed"]
    what = args.model or f"SudoRmRf {args.config} config, random weights"
    rows = []
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.lengths:
            path = os.path.join(tmp, f"{seconds:g}.wav")
            samples = int(seconds * RATE)
            with sf.SoundFile(path, "w", RATE, 1, subtype="FLOAT") as f:
                for start in range(0, samples, 10 * RATE):  # 10 s at a time
                    n = min(10 * RATE, samples - start)
                    f.write((0.1 * rng.standard_normal(n)).astype("float32"))
            for mode in modes:
                out = subprocess.run(
                    [sys.executable, "-c", PROBE, args.model or "",
                     args.config, path, mode, str(threads),
                     json.dumps(CONFIGS)], capture_output=True, text=True)
                if out.returncode:
                    rows.append((seconds, mode, None, out.stderr[-300:]))
                else:
                    rows.append((seconds, mode,
                                 json.loads(out.stdout.splitlines()[-1]),
                                 ""))
                print(f"  ({seconds:g} s, {mode}: done)", file=sys.stderr,
                      flush=True)
    print(f"\n### enhance_file against recording length ({what}; one "
          f"fresh process per point)\n")
    print(context(threads, "; windows of 20 s, 1 s crossfade "
                  "(enhance_file's defaults)") + "\n")
    print("| length | mode | compute s | RTF | peak RSS MB | above model "
          "load MB |")
    print("|---|---|---|---|---|---|")
    for seconds, mode, result, err in rows:
        label = f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
        if result is None:
            first = err.strip().splitlines()[-1:] or ["?"]
            print(f"| {label} | {mode} | failed: {first[0]} | | | |")
            continue
        base, peak, spent = result
        print(f"| {label} | {mode} | {spent:.2f} | {spent / seconds:.4f} | "
              f"{peak:.0f} | {peak - base:.0f} |")
    print()


# ----------------------------------------------------------------------
# part 3: where the time of one forward goes
def profile_table(args):
    """torch.profiler (CPU) of the enhancer on ``--seconds`` at the
    largest of ``--threads``: the top operators by self time, and the
    time of each kind of module (TAC, U-ConvBlock, the rest) by hooks
    outside the profiler, whose own overhead inflates small ops."""
    import collections

    import torch
    from torch.profiler import ProfilerActivity, profile

    threads = max(args.threads)
    model, enhancer, mixture = enhancer_and_mixture(args, threads)
    spent = collections.defaultdict(float)

    def pre(module, _):
        module._bench_start = time.perf_counter()

    def post(module, *_):
        spent[type(module).__name__] += (time.perf_counter()
                                         - module._bench_start)

    with torch.inference_mode():
        for _ in range(2):  # warm-up
            enhancer(mixture)
        hooks = []
        for module in model.modules():
            if type(module).__name__ in ("TAC", "UConvBlock"):
                hooks += [module.register_forward_pre_hook(pre),
                          module.register_forward_hook(post)]
        start = time.perf_counter()
        for _ in range(args.repeats):
            enhancer(mixture)
        total = (time.perf_counter() - start) / args.repeats
        for hook in hooks:
            hook.remove()
        with profile(activities=[ProfilerActivity.CPU],
                     record_shapes=True) as prof:
            for _ in range(args.repeats):
                enhancer(mixture)
    what = args.model or f"SudoRmRf {args.config} config, random weights"
    print(f"\n### Where the time of one {args.seconds:g} s forward goes "
          f"({what}; inference_mode, means of {args.repeats})\n")
    print(context(threads) + "\n")
    print("| part (forward hooks, no profiler) | ms | share |")
    print("|---|---|---|")
    parts = {name: t / args.repeats for name, t in spent.items()}
    parts["rest (encoder, norm, bottleneck, mask, decoder, "
          "normalization, consistency)"] = total - sum(parts.values())
    for name, t in parts.items():
        print(f"| {name} | {t * 1000:.0f} | {t / total:.0%} |")
    print(f"| total | {total * 1000:.0f} | RTF {total / args.seconds:.4f} "
          "|\n")
    events = prof.key_averages(group_by_input_shape=True)
    events = sorted(events, key=lambda e: e.self_cpu_time_total,
                    reverse=True)
    whole = sum(e.self_cpu_time_total for e in events)
    print("| operator (torch.profiler) | input shapes | calls / forward | "
          "self ms / forward | share of self time |")
    print("|---|---|---|---|---|")
    for event in events[:args.top]:
        shapes = str(event.input_shapes)[:70].replace("|", "/")
        print(f"| {event.key} | {shapes} | {event.count // args.repeats} | "
              f"{event.self_cpu_time_total / 1000 / args.repeats:.1f} | "
              f"{event.self_cpu_time_total / whole:.0%} |")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["rtf", "length", "profile",
                                           "all"], default="all")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch.set_num_threads (and onnxruntime's "
                        "intra-op threads); one process per count")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="mixture length of the RTF part")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS),
                        choices=VARIANTS)
    parser.add_argument("--chunks", nargs="+", default=["2:0.25", "4:0.5"],
                        help="WINDOW:OVERLAP seconds of chunk batching")
    parser.add_argument("--lengths", type=float, nargs="+",
                        default=[1, 10, 60, 600],
                        help="recording lengths (s) of the length part")
    parser.add_argument("--length-threads", type=int, default=None,
                        help="threads of the length part (default: the "
                        "largest of --threads)")
    parser.add_argument("--whole", action="store_true",
                        help="length part: also whole-file enhancement")
    parser.add_argument("--config", choices=sorted(CONFIGS),
                        default="paper")
    parser.add_argument("--model", default=None,
                        help="exported or run folder instead of random "
                        "weights")
    parser.add_argument("--top", type=int, default=15,
                        help="operators listed by the profile part")
    parser.add_argument("--worker", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return rtf_worker(args)
    if args.part in ("rtf", "all"):
        rtf_table(args)
    if args.part in ("length", "all"):
        length_table(args)
    if args.part in ("profile", "all"):
        profile_table(args)


if __name__ == "__main__":
    main()
