"""What an evaluation writes for people: the per-utterance results CSV
with its ``avg`` row, ``summary.csv``, the printed table and the figures."""

import csv
import os

import numpy as np

from speechbrain_remix import plots
from speechbrain_remix.metrics import METRICS


def average(rows, metrics=METRICS):
    """Mean of each metric over utterances (NaN values skipped: undefined
    PESQ, or metrics that do not apply to an utterance)."""
    out = {}
    for m in metrics:
        values = np.array([r[m] for r in rows], dtype=float)
        out[m] = float(np.nanmean(values)) if np.isfinite(values).any() \
            else float("nan")
    return out


def write_results(path, rows, metrics=METRICS):
    """Per-utterance results CSV (``ID`` + metrics) with a final ``avg``."""
    avg = average(rows, metrics)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["ID", *metrics])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row[k]) for k in ["ID", *metrics]})
        writer.writerow({"ID": "avg", **{m: _fmt(v) for m, v in avg.items()}})
    return avg


def _fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else value


def format_table(summary, metrics=METRICS):
    """A fixed-width text table of ``{system: {metric: value}}``.

    Example
    -------
    >>> print(format_table({"mixture": {"pesq": 1.1},
    ...                     "spectral_subtraction": {"pesq": 1.25}},
    ...                    ["pesq"]))
    system                    pesq
    mixture                  1.100
    spectral_subtraction     1.250
    """
    width = max(len("system"), *(len(name) for name in summary)) + 1
    lines = [f"{'system':<{width}}" + "".join(f"{m:>10}" for m in metrics)]
    for name, avg in summary.items():
        lines.append(
            f"{name:<{width}}" + "".join(f"{avg[m]:>10.3f}" for m in metrics)
        )
    return "\n".join(lines)


def write_summary(path, summary, metrics=METRICS):
    """``summary.csv``: one row of averages per system."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", *metrics])
        for name, avg in summary.items():
            writer.writerow([name, *(f"{avg[m]:.4f}" for m in metrics)])


def write_figures(folder, train_log, results, examples, sample_rate,
                  metrics=METRICS):
    """Training curves, SI-SDRi histogram and example spectrograms (the
    latter two for enhancement metrics only) in ``folder``."""
    if os.path.isfile(train_log):
        plots.plot_training_curves(train_log,
                                   os.path.join(folder, "training.png"))
    if "si_sdri" not in metrics:
        return
    systems = {k: v for k, v in results.items() if k != "mixture"}
    plots.plot_sisdri_histogram(systems, os.path.join(folder, "si_sdri.png"))
    if not all(k in examples for k in ["clean", *results]):
        return  # separated sources: no single enhanced signal to show
    plots.plot_spectrograms({k: examples[k] for k in ["clean", *results]},
                            sample_rate,
                            os.path.join(folder, "spectrograms.png"))
