#!/usr/bin/env python3
"""Speed of RemixIT training steps and of inference, printed as a table.

Measures, in one process and interleaved (medians of ``--repeats``):

* a supervised step (Eq. 2) and a RemixIT step (teacher inference,
  remixing, student step; Algorithm 1) at batch 2 x 8 s, and their ratio;
* the real-time factor of enhancing a 10 s file.

for the paper's Sudo rm -rf (U = 8, 512 bases, 41 taps, hop 20) and the
demo's scaled-down model.  Timings on these CPUs swing with glibc's malloc;
run with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=16G`` for stable
figures (the allocator setting is printed with the results).

    python benchmarks/bench_remixit.py --threads 2 --repeats 3
"""

import argparse
import os
import statistics
import time

import torch

from speechbrain_remix.apply import separate
from speechbrain_remix.losses import source_loss
from speechbrain_remix.models import SudoRmRf
from speechbrain_remix.remix import (
    bootstrap_remix,
    random_permutation,
    speech_and_noise,
)

CONFIGS = {
    "paper U=8": {},
    "demo U=4": dict(num_blocks=4, enc_num_basis=256, out_channels=128,
                     in_channels=256, groups=8),
}


def supervised_step(model, opt, mix, clean):
    est = separate(model, mix)
    loss = source_loss(est, torch.stack([clean, mix - clean], 1)).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def remixit_step(teacher, student, opt, mix, generator):
    with torch.no_grad():
        pseudo = speech_and_noise(separate(teacher, mix, rescale=False))
    perm = random_permutation(mix.shape[0], generator)
    remixed, targets = bootstrap_remix(pseudo[:, 0], pseudo[:, 1], perm)
    loss = source_loss(separate(student, remixed), targets).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    rate = 16000
    mix = torch.randn(2, int(args.seconds * rate))
    clean = 0.5 * mix
    ten_s = torch.randn(1, 10 * rate)
    allocator = "MALLOC_MMAP_MAX_={} MALLOC_TRIM_THRESHOLD_={}".format(
        os.environ.get("MALLOC_MMAP_MAX_", "unset"),
        os.environ.get("MALLOC_TRIM_THRESHOLD_", "unset"),
    )
    print(f"threads={args.threads} repeats={args.repeats} {allocator}")
    print(f"{'model':<11}{'params':>8}{'sup step':>10}{'remixit':>10}"
          f"{'ratio':>7}{'RTF 10s':>9}")
    for name, cfg in CONFIGS.items():
        teacher, student = SudoRmRf(**cfg).eval(), SudoRmRf(**cfg)
        opt = torch.optim.Adam(student.parameters(), lr=1e-3)
        sup, rem, rtf = [], [], []
        timed(supervised_step, student, opt, mix, clean)  # warm-up
        for _ in range(args.repeats):  # interleaved A/B/C
            sup.append(timed(supervised_step, student, opt, mix, clean))
            rem.append(timed(remixit_step, teacher, student, opt, mix,
                             generator))
            with torch.no_grad():
                rtf.append(timed(separate, teacher, ten_s) / 10.0)
        s, r = statistics.median(sup), statistics.median(rem)
        params = sum(p.numel() for p in student.parameters()) / 1e6
        print(f"{name:<11}{params:>7.2f}M{s:>9.2f}s{r:>9.2f}s{r / s:>7.2f}"
              f"{statistics.median(rtf):>9.3f}")


if __name__ == "__main__":
    main()
