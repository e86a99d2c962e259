#!/usr/bin/env python3
"""CPU inference time of an enhancer in PyTorch and in onnxruntime.

Exports the demo-size Sudo rm -rf (U = 4, 256 bases, 41 taps, hop 20:
``hparams/supervised_demo.yaml``) with
:func:`speechbrain_remix.onnx_export.export_onnx` and times the whole
inference path (normalization, model, mixture consistency, speech slot)
on one 10 s mixture at 16 kHz, both runtimes with ``--threads`` threads,
interleaved, medians of ``--repeats`` (after one warm-up call each).
Run with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=16G`` for stable
figures (printed with the results, with the load average: on a busy
machine several threads per process slow PyTorch far more than
onnxruntime, and ``--threads 1`` compares more fairly).

    python benchmarks/bench_onnx.py --threads 2 --repeats 5
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import onnxruntime
import torch

from speechbrain_remix.models import SudoRmRf
from speechbrain_remix.onnx_export import SpeechEnhancer, export_onnx

DEMO = dict(num_blocks=4, enc_num_basis=256, enc_kernel_size=41,
            out_channels=128, in_channels=256, upsampling_depth=5, groups=8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rate = 16000
    model = SudoRmRf(**DEMO).eval()
    path = os.path.join(tempfile.mkdtemp(), "demo.onnx")
    start = time.perf_counter()
    exporter = export_onnx(model, path, rate)
    export_s = time.perf_counter() - start
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"])
    enhancer = SpeechEnhancer(model).eval()
    mixture = torch.randn(1, int(args.seconds * rate)) * 0.1

    def run_torch():
        with torch.inference_mode():
            return enhancer(mixture).numpy()

    def run_onnx():
        return session.run(["speech"], {"mixture": mixture.numpy()})[0]

    ref, got = run_torch(), run_onnx()  # warm-up, and the agreement
    times = {"pytorch": [], "onnxruntime": []}
    for _ in range(args.repeats):  # interleaved: drifts hit both alike
        for name, fn in (("pytorch", run_torch), ("onnxruntime", run_onnx)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    malloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"demo Sudo rm -rf ({sum(p.numel() for p in model.parameters())} "
          f"parameters), {args.seconds:g} s at {rate} Hz, batch 1, "
          f"{args.threads} threads, medians of {args.repeats}; "
          f"allocator: {malloc or 'glibc defaults'}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"export ({exporter}): {export_s:.1f} s; max |onnx - torch| / "
          f"peak = {np.abs(got - ref).max() / np.abs(ref).max():.1e}")
    medians = {name: statistics.median(v) for name, v in times.items()}
    for name, median in medians.items():
        print(f"{name:12s} {median * 1000:8.1f} ms   RTF "
              f"{median / args.seconds:.4f}")
    print("onnxruntime speed-up: "
          f"{medians['pytorch'] / medians['onnxruntime']:.2f}x")


if __name__ == "__main__":
    main()
