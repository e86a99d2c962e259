#!/usr/bin/env python3
"""Streaming enhancement with causal models: algorithmic latency (stated
and measured), compute time per block and real-time factor on 1 and 2
threads, and the deviation of the streamed output from the offline one,
printed as a markdown table.

    python benchmarks/bench_streaming.py --threads 1 2 --seconds 10

Models (random weights: time does not depend on them):

* ``causal demo``: the student of hparams/remixit_causal_demo.yaml
  (Sudo rm -rf, 4 blocks, 256 bases, 41 taps, hop 20, depth 4);
* ``causal paper``: the paper's configuration (8 blocks, 512 bases,
  depth 5) made causal, and with depth 4 (blocks of 10 ms);
* ``causal GRU``: the personalized-enhancement masker (2 x 64 units) on
  a 320-point STFT with hop 160 (20 ms of latency).

``--model`` adds a trained causal model (an exported or run folder).
The latency is measured by feeding one sample at a time and recording
when each output sample leaves; the compute time excludes it.  Per block
figures are medians (and 95th percentiles) over the whole recording.
"""

import argparse
import statistics
import time

import torch
from machine import describe

from speechbrain_remix.apply import separate
from speechbrain_remix.models import GRUMasker, SudoRmRf
from speechbrain_remix.streaming import StreamingSeparator

RATE = 16000
DEMO = dict(num_blocks=4, enc_num_basis=256, out_channels=128,
            in_channels=256, groups=8, upsampling_depth=4, causal=True)
MODELS = {
    "causal demo (U=4, depth 4)": lambda: SudoRmRf(**DEMO),
    "causal paper (U=8, depth 5)": lambda: SudoRmRf(causal=True),
    "causal paper (U=8, depth 4)": lambda: SudoRmRf(upsampling_depth=4,
                                                     causal=True),
    "causal GRU (2 x 64, STFT 320/160)": lambda: GRUMasker(
        hidden=64, n_fft=320, hop=160, causal=True),
}


def measured_latency(model, block, samples=None):
    """Feeds one sample at a time; the longest wait, in samples, between a
    sample coming in and its estimate going out."""
    separator = StreamingSeparator(model, block)
    samples = samples or 3 * separator.latency
    x = torch.randn(1, samples)
    worst, out_count = 0, 0
    for i in range(samples):
        n = separator.push(x[:, i:i + 1]).shape[-1]
        if n:  # samples out_count .. out_count + n - 1 leave now
            worst = max(worst, i + 1 - out_count)
            out_count += n
    return worst


@torch.inference_mode()
def run(model, block, seconds):
    """Per-block compute times (s) and the max deviation from offline."""
    x = 0.1 * torch.randn(1, int(seconds * RATE))
    separator = StreamingSeparator(model, block)
    for i in range(0, 10 * block, block):  # warm-up
        separator.push(x[:, i:i + block])
    separator.reset()
    times, parts = [], []
    for i in range(0, x.shape[-1], block):
        start = time.perf_counter()
        parts.append(separator.push(x[:, i:i + block]))
        times.append(time.perf_counter() - start)
    parts.append(separator.flush())
    deviation = (torch.cat(parts, -1) - separate(model, x)).abs().max()
    return times, float(deviation / x.abs().max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4],
                        help="block sizes, in multiples of the model's")
    parser.add_argument("--model", help="a trained causal model folder")
    args = parser.parse_args()
    models = dict(MODELS)
    if args.model:
        from speechbrain_remix.inference import RemixEnhancer

        models[args.model] = lambda: RemixEnhancer.load(args.model).mods.model

    print(describe(args.threads))
    print(f"{args.seconds:g} s of audio at {RATE} Hz, batch 1, "
          "torch.inference_mode\n")
    print("| model | params | block | latency stated (measured) | threads "
          "| compute per block, median (p95) | RTF | max deviation |")
    print("|---|---|---|---|---|---|---|---|")
    for name, build in models.items():
        torch.manual_seed(0)
        model = build().eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        for multiple in args.blocks:
            block = multiple * model.stream_block
            stated = block + model.stream_delay
            measured = measured_latency(model, block)
            for threads in args.threads:
                torch.set_num_threads(threads)
                times, deviation = run(model, block, args.seconds)
                median = statistics.median(times)
                p95 = sorted(times)[int(0.95 * (len(times) - 1))]
                ms = 1000 / RATE
                print(f"| {name} | {params:.2f} M | {block * ms:g} ms "
                      f"| {stated * ms:.1f} ms ({measured * ms:.1f} ms) "
                      f"| {threads} | {1000 * median:.2f} ms "
                      f"({1000 * p95:.2f} ms) | {median * RATE / block:.3f} "
                      f"| {deviation:.1e} |", flush=True)


if __name__ == "__main__":
    main()
