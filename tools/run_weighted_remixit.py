#!/usr/bin/env python3
"""Confidence-weighted against plain RemixIT on the demo corpus, with the
same seeds, teacher and settings (``hparams/remixit_demo.yaml`` and
``hparams/remixit_weighted_demo.yaml`` differ only in the weighting).

The supervised teacher (``--teacher``, a ``save`` folder) and the SNR
predictor (``--predictor``) are trained beforehand; each RemixIT run goes
to its own folder under ``--out`` and is skipped when it already finished.
Written to ``--out``: ``results.csv`` (student and teacher test metrics of
every run) and ``summary.md`` (mean and standard deviation over seeds).

    python tools/run_weighted_remixit.py --seeds 1234 1235
"""

import argparse
import csv
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ("si_sdr", "si_sdri", "pesq", "stoi")
VARIANTS = {"plain": "remixit_demo.yaml",
            "weighted": "remixit_weighted_demo.yaml"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234, 1235])
    parser.add_argument("--teacher", default="results/demo/supervised/save")
    parser.add_argument("--predictor",
                        default="results/demo/snr_predictor/save")
    parser.add_argument("--out", default="results/demo/weighting")
    args, overrides = parser.parse_known_args(argv)  # others: train.py's
    rows = []
    for seed in args.seeds:
        for variant, yaml in VARIANTS.items():
            out = os.path.join(args.out, f"{variant}_s{seed}")
            extra = [f"--seed={seed}", f"--teacher_source={args.teacher}"]
            if variant == "weighted":
                extra.append(f"--snr_predictor_source={args.predictor}")
            if not os.path.isfile(os.path.join(out, "summary.csv")):
                cmd = [sys.executable, os.path.join(ROOT, "train.py"),
                       os.path.join(ROOT, "hparams", yaml),
                       f"--output_folder={out}", "--noprogressbar", *extra,
                       *overrides]
                print("+", " ".join(cmd), flush=True)
                subprocess.run(cmd, check=True, cwd=ROOT)
            with open(os.path.join(out, "summary.csv"), newline="") as f:
                for row in csv.DictReader(f):
                    rows.append({"variant": variant, "seed": seed,
                                 "system": row["ID"],
                                 **{m: float(row[m]) for m in METRICS}})
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, ["variant", "seed", "system", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| variant | system | " + " | ".join(METRICS) + " | SI-SDRi "
             "per seed |", "|---" * (len(METRICS) + 3) + "|"]
    for variant in VARIANTS:
        for system in ("teacher", "student"):
            sel = [r for r in rows if r["variant"] == variant
                   and r["system"] == system]
            cells = [f"{np.mean([r[m] for r in sel]):.2f} ± "
                     f"{np.std([r[m] for r in sel]):.2f}" for m in METRICS]
            per_seed = ", ".join(f"{r['si_sdri']:.2f}" for r in sel)
            lines.append(f"| {variant} | {system} | " + " | ".join(cells)
                         + f" | {per_seed} |")
    table = "\n".join(lines)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
