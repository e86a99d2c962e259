#!/usr/bin/env python3
"""Every configuration of personalized speech enhancement (Sec. 3.1 of
Sivaraman et al., 2021) for every test speaker, model size and seed, then
a table and a box plot like the paper's Fig. 3.

For each seed (training draws; with ``--redraw_data`` also the data: the
speaker's split, premixtures and test mixtures): the SNR predictor (once,
with the first seed), then for
each GRU size the generalist SE, and for each test speaker (``speakers.csv``
of the preparation) PSE, PSE+DP, SE->PSE and SE->PSE+DP, each a
``train.py`` run in its own folder under ``--out``.  A run whose
``summary.csv`` exists is not repeated, so an interrupted experiment
continues where it stopped.  Written to ``--out``:

* ``results.csv``: one row per configuration, size, seed and speaker (the
  speaker's mean SI-SDR, SI-SDRi, PESQ, STOI over its test mixtures);
* ``summary.md``: per configuration and size, the mean over speakers of
  SI-SDRi, averaged over seeds with its spread (standard deviation over
  seeds), and the parameter count;
* ``fig3.png``: a box per configuration and size over the speakers' mean
  SI-SDRi (over seeds); with one test speaker, over seeds.

Demo corpus (one test speaker)::

    python tools/run_personalized.py --seeds 1234 1235 --sizes 64 \
        --redraw_data
"""

import argparse
import csv
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from speechbrain_remix.plots import plot_config_boxes  # noqa: E402

CONFIGS = {  # name: (YAML role, purify, from SE)
    "SE": ("se", False, False),
    "PSE": ("pse", False, False),
    "PSE+DP": ("pse", True, False),
    "SE->PSE": ("pse", False, True),
    "SE->PSE+DP": ("pse", True, True),
}
PARAMS = {64: 169473, 128: 412161, 256: 1118721}  # GRUMasker, 2 layers
PAPER_PARAMS = {64: "169 k", 128: "412 k", 256: "-"}


def train(yaml, out, extra):
    """One ``train.py`` run, unless it already finished."""
    if os.path.isfile(os.path.join(out, "summary.csv")):
        return
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), yaml,
           f"--output_folder={out}", "--noprogressbar", *extra]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def prepare(yaml, extra):
    """The YAML's data preparation with these options (skipped when done
    with them), as ``train.py`` runs it first: a finished run is skipped,
    but its data must be there for the next one."""
    import speechbrain as sb

    from train import load_hparams

    _, _, overrides = sb.parse_arguments([yaml, *extra])
    load_hparams(yaml, overrides)["prepare"](skip_prep=False)


def speaker_rows(folder):
    with open(os.path.join(folder, "speaker_results.csv"), newline="") as f:
        return [r for r in csv.DictReader(f) if r["system"] == "model"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="demo",
                        help="hparams suffix: demo or librispeech")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--out", default="results/demo/personalized")
    parser.add_argument("--data_folder", default=None)
    parser.add_argument(
        "--redraw_data", action="store_true",
        help="each seed also draws the data (a speaker's split, "
        "premixtures, test mixtures); only where the test speakers are "
        "fixed (the demo): drawn ones (LibriSpeech) could be speakers the "
        "SNR predictor, trained once, has heard")
    # any other option goes to every train.py run (--number_of_epochs=2)
    args, overrides = parser.parse_known_args(argv)
    hp = lambda name: os.path.join(  # noqa: E731
        ROOT, "hparams", f"{name}_{args.dataset}.yaml")
    common = list(overrides)
    if args.data_folder:
        common.append(f"--data_folder={args.data_folder}")
    predictor = os.path.join(args.out, "snr_predictor")
    train(hp("snr_predictor"), predictor, common + [
        f"--seed={args.seeds[0]}", f"--data_seed={args.seeds[0]}"])
    data_folder = args.data_folder or _data_folder(predictor)
    rows = []
    for seed in args.seeds:
        for size in args.sizes:
            data_seed = seed if args.redraw_data else args.seeds[0]
            base = common + [f"--seed={seed}", f"--data_seed={data_seed}",
                             f"--hidden={size}",
                             f"--snr_predictor_source={predictor}/save"]
            se = os.path.join(args.out, f"SE_{size}_s{seed}")
            prepare(hp("personal_se"), base)  # this seed's data
            train(hp("personal_se"), se, base)
            with open(os.path.join(data_folder, "speakers.csv"),
                      newline="") as f:
                speakers = [row["speaker"] for row in csv.DictReader(f)]
            for name, (role, purify, from_se) in CONFIGS.items():
                for spk in speakers:
                    if role == "se":
                        folder, extra = se, []
                    else:
                        folder = os.path.join(
                            args.out, f"{name.replace('->', '-')}_{size}_"
                            f"s{seed}_{spk}")
                        extra = [f"--speaker={spk}", f"--purify={purify}"]
                        if from_se:
                            extra.append(f"--init_source={se}/save")
                        train(hp("personal_pse"), folder, base + extra)
                    for r in speaker_rows(folder):
                        if r["speaker"] == spk:
                            rows.append({"config": name, "hidden": size,
                                         "seed": seed, **r})
    write_outputs(rows, args.out)


def _data_folder(run):
    """The data folder a finished run used (from its hyperparams.yaml)."""
    with open(os.path.join(run, "hyperparams.yaml")) as f:
        for line in f:
            if line.startswith("data_folder:"):
                return os.path.join(ROOT, line.split(":", 1)[1].strip())
    raise SystemExit(f"{run}: no data_folder in hyperparams.yaml")


def write_outputs(rows, out):
    fields = ["config", "hidden", "seed", "speaker", "n", "si_sdr",
              "si_sdri", "pesq", "stoi"]
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| configuration | hidden | parameters (paper) | SI-SDRi (dB) "
             "mean ± sd over seeds | per seed | PESQ | STOI |",
             "|---|---|---|---|---|---|---|"]
    groups = {}
    for size in sorted({r["hidden"] for r in rows}):
        for name in CONFIGS:
            sel = [r for r in rows if r["config"] == name
                   and r["hidden"] == size]
            if not sel:
                continue
            seeds = sorted({r["seed"] for r in sel})
            per_seed = [np.mean([float(r["si_sdri"]) for r in sel
                                 if r["seed"] == s]) for s in seeds]
            pesq = np.nanmean([float(r["pesq"]) for r in sel])
            stoi = np.mean([float(r["stoi"]) for r in sel])
            lines.append(
                f"| {name} | {size} | {PARAMS.get(size, '?'):,} "
                f"({PAPER_PARAMS.get(size, '-')}) | {np.mean(per_seed):.2f}"
                f" ± {np.std(per_seed):.2f} | "
                + ", ".join(f"{v:.2f}" for v in per_seed)
                + f" | {pesq:.2f} | {stoi:.3f} |")
            speakers = sorted({r["speaker"] for r in sel})
            if len(speakers) > 1:  # Fig. 3: one value per speaker
                groups[f"{name} ({size})"] = [np.mean(
                    [float(r["si_sdri"]) for r in sel if r["speaker"] == k])
                    for k in speakers]
            else:  # one speaker (the demo): its value per seed
                groups[f"{name} ({size})"] = per_seed
    table = "\n".join(lines)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    plot_config_boxes(groups, os.path.join(out, "fig3.png"))


if __name__ == "__main__":
    main()
