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
    cols = [max(10, len(m) + 2) for m in metrics]
    lines = [f"{'system':<{width}}" + "".join(
        f"{m:>{c}}" for m, c in zip(metrics, cols))]
    for name, avg in summary.items():
        lines.append(f"{name:<{width}}" + "".join(
            f"{avg[m]:>{c}.3f}" for m, c in zip(metrics, cols)))
    return "\n".join(lines)


def speakers_of(manifest):
    """``{ID: speaker}`` of a manifest with a ``speaker`` column, else
    ``None``."""
    if not manifest or not os.path.isfile(manifest):
        return None
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f)
        if "speaker" not in (reader.fieldnames or []):
            return None
        return {row["ID"]: row["speaker"] for row in reader}


def by_speaker(rows, speakers, metrics=METRICS):
    """``{speaker: {"n": count, metric: mean}}`` of per-utterance ``rows``
    (the evaluation of personalized models is per test speaker: Fig. 3 of
    Sivaraman et al., 2021, shows the distribution of these means).

    Example
    -------
    >>> rows = [{"ID": "a", "x": 1.0}, {"ID": "b", "x": 3.0},
    ...         {"ID": "c", "x": 5.0}]
    >>> by_speaker(rows, {"a": "s1", "b": "s1", "c": "s2"}, ["x"])
    {'s1': {'n': 2, 'x': 2.0}, 's2': {'n': 1, 'x': 5.0}}
    """
    groups = {}
    for row in rows:
        groups.setdefault(speakers[row["ID"]], []).append(row)
    return {spk: {"n": len(group), **average(group, metrics)}
            for spk, group in sorted(groups.items())}


def write_speaker_results(path, per_system, metrics=METRICS):
    """``speaker_results.csv``: one row per system and test speaker."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["system", "speaker", "n", *metrics])
        for system, table in per_system.items():
            for speaker, avg in table.items():
                writer.writerow([system, speaker, avg["n"],
                                 *(f"{avg[m]:.4f}" for m in metrics)])


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


class TensorBoardStats:
    """The epoch statistics of ``train_log.txt`` also written for
    TensorBoard, when the YAML says ``tensorboard: True``: scalars
    ``<stat>/train``, ``<stat>/valid`` and ``lr``, per epoch, under
    ``<output_folder>/tensorboard`` (``tensorboard --logdir`` on it).

    The step of every scalar is the epoch, not a count of calls as in
    SpeechBrain's ``TensorboardLogger``, so that a resumed run continues
    its curves instead of starting them again at step 1.  The writer is
    opened at the first call (building a Brain to enhance with writes
    nothing) and only on the main process.

    Example
    -------
    >>> import tempfile
    >>> tb = TensorBoardStats(tempfile.mkdtemp())
    >>> tb.log_stats({"epoch": 1, "lr": 1e-3}, {"loss": -2.0},
    ...              {"loss": -1.5})
    >>> tb.close()
    """

    def __init__(self, folder):
        self.folder = folder
        self.writer = None

    @classmethod
    def from_hparams(cls, hparams):
        """An instance if ``hparams.tensorboard`` is true, else None."""
        if not getattr(hparams, "tensorboard", False):
            return None
        return cls(os.path.join(hparams.output_folder, "tensorboard"))

    def log_stats(self, stats_meta, train_stats=None, valid_stats=None):
        """Same arguments as SpeechBrain's ``TrainLogger.log_stats``."""
        import speechbrain as sb

        if not sb.utils.distributed.if_main_process():
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(self.folder)
        step = int(stats_meta["epoch"])
        for name, value in stats_meta.items():
            if name != "epoch":  # the step already
                self.writer.add_scalar(name, float(value), step)
        for stage, stats in (("train", train_stats), ("valid", valid_stats)):
            for name, value in (stats or {}).items():
                self.writer.add_scalar(f"{name}/{stage}", float(value), step)
        self.writer.flush()  # readable while the run goes on

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
