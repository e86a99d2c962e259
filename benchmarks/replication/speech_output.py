#!/usr/bin/env python3
"""Which output of a trained model holds the speech, file by file.

A model trained with a speech output (supervised, RemixIT, MixIT of
Eq. 3) should have it at output 0 on every file; a model trained from
scratch (Self-Remixing, RemixIT from scratch, MixIT of two mixtures) has
its outputs in no fixed order, which its evaluation hides by scoring the
output closest to the clean speech (``eval_output: closest``).  This
counts, over a run's test set, how often each output is the closest::

    python benchmarks/replication/speech_output.py \\
        results/replication/self_remixing_s1 results/replication/supervised_s1

prints ``{output: files}`` per run (the run's own ``test_csv``; it needs
clean references).  ``--dnsmos`` also counts the files on which each
reference-free DNSMOS score (highest SIG, BAK, OVRL or P.808 among the
outputs) picks that same output: whether the speech output could be
chosen without the clean speech.
"""

import argparse
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def closest_outputs(run_dir, dnsmos=False):
    """``{output index: number of test files where it is the closest to
    the clean speech}`` for the model a run's evaluation selected; with
    ``dnsmos``, also ``{DNSMOS score: files where its highest output is
    that closest one}``."""
    from speechbrain_remix.apply import closest_index, separate
    from speechbrain_remix.data import make_dataset
    from speechbrain_remix.metrics.dnsmos import dnsmos as score
    from speechbrain_remix.runs import load_run

    model, hparams, _ = load_run(run_dir)
    if getattr(model, "outputs_speech", False):
        raise SystemExit(f"{run_dir}: its model outputs speech only")
    test = make_dataset(hparams["test_csv"], hparams["data_folder"],
                        hparams["sample_rate"], ("mix_wav", "clean_wav"))
    counts, picks = {}, {}
    with torch.no_grad():
        for item in test:
            estimates = separate(model, item["mix"][None])
            k = int(closest_index(estimates, item["clean"][None]))
            counts[k] = counts.get(k, 0) + 1
            if dnsmos:
                scores = [score(e, hparams["sample_rate"])
                          for e in estimates[0]]
                for key in scores[0]:
                    best = max(range(len(scores)),
                               key=lambda j: scores[j][key])
                    picks[key] = picks.get(key, 0) + (best == k)
    counts = dict(sorted(counts.items()))
    return (counts, picks) if dnsmos else counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="train.py output folders")
    parser.add_argument("--dnsmos", action="store_true",
                        help="also: how often each DNSMOS score picks it")
    args = parser.parse_args(argv)
    for run in args.runs:
        print(f"{run}: {closest_outputs(run, args.dnsmos)}", flush=True)


if __name__ == "__main__":
    main()
