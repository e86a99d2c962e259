"""Figures written at the end of a run: training curves, the distribution
of SI-SDR improvements per system, and spectrograms of one test utterance.

Only matplotlib's file backend is used, so this works without a display.
"""

import csv
import re

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_train_log(path):
    """Parses SpeechBrain's ``train_log.txt`` into ``{column: [values]}``.

    Example
    -------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "log.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("epoch: 1, lr: 1.00e-03 - train loss: -1.5e+00 - "
    ...                 "valid loss: -2.0e+00\\n")
    >>> read_train_log(path)["valid loss"]
    [-2.0]
    """
    columns = {}
    with open(path) as f:
        for line in f:
            for key, value in re.findall(r"([a-z_ ]+): ([-+.\deE]+)", line):
                columns.setdefault(key.strip(), []).append(float(value))
    return columns


def plot_training_curves(train_log, out_png):
    """Train and validation loss per epoch."""
    log = read_train_log(train_log)
    if "epoch" not in log:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in ("train loss", "valid loss"):
        if key in log:
            ax.plot(log["epoch"][: len(log[key])], log[key], marker="o",
                    label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (negative SI-SDR, dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png


def plot_sisdri_histogram(results, out_png):
    """Histogram of per-utterance SI-SDR improvements.

    Arguments
    ---------
    results : dict
        ``{system: path to its test_results CSV}``.
    out_png : str
        Output file.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = {}
    for name, path in results.items():
        with open(path, newline="") as f:
            values[name] = [float(r["si_sdri"]) for r in csv.DictReader(f)
                            if r["ID"] != "avg"]
    every = np.concatenate([v for v in values.values()])
    bins = np.linspace(every.min() - 0.5, every.max() + 0.5, 25)
    for name, v in values.items():
        ax.hist(v, bins=bins, alpha=0.5,
                label=f"{name} (mean {np.mean(v):.2f} dB)")
    ax.set_xlabel("SI-SDR improvement (dB)")
    ax.set_ylabel("utterances")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png


def plot_spectrograms(signals, sample_rate, out_png):
    """Log-magnitude spectrograms of ``{name: 1-D array}``, stacked."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(signals), 1, sharex=True,
                             figsize=(7, 1.8 * len(signals)))
    axes = np.atleast_1d(axes)
    for ax, (name, wav) in zip(axes, signals.items()):
        ax.specgram(np.asarray(wav, dtype=np.float64) + 1e-9, NFFT=512,
                    Fs=sample_rate, noverlap=384, cmap="magma")
        ax.set_ylabel("Hz")
        ax.set_title(name, fontsize=9)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_config_boxes(groups, out_png, ylabel="SI-SDRi (dB)", notch=True):
    """A box plot per configuration, as Fig. 3 of Sivaraman et al. (2021):
    ``groups`` is ``{label: [values]}`` (e.g. each test speaker's mean
    SI-SDR improvement), drawn in its order with notches (the 95 %
    confidence interval of the median) and the mean as a dot."""
    plt = _pyplot()
    labels = list(groups)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels)), 4))
    data = [np.asarray(groups[k], dtype=float) for k in labels]
    ax.boxplot(data, notch=notch and min(len(d) for d in data) >= 10,
               showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=45,
                  ha="right")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def plot_snr_tracks(mixture, true_db, predicted_db, sample_rate, hop,
                    out_png):
    """Like Fig. 2 of Sivaraman et al. (2021): a test mixture, its true
    and predicted segmental SNR, and the frame weights
    ``sigmoid(predicted)`` that purification would use."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
    t = np.arange(len(mixture)) / sample_rate
    frames_t = np.arange(len(true_db)) * hop / sample_rate
    axes[0].plot(t, mixture, lw=0.5)
    axes[0].set_ylabel("mixture")
    axes[1].plot(frames_t, true_db, label="true SegSNR")
    axes[1].plot(frames_t, predicted_db, label="predicted")
    axes[1].set_ylabel("dB")
    axes[1].legend(loc="lower right")
    axes[2].plot(frames_t, 1 / (1 + np.exp(-np.asarray(predicted_db))))
    axes[2].set_ylim(-0.05, 1.05)
    axes[2].set_ylabel("weight p")
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


#: teacher SI-SDR bracket edges (dB) of :func:`teacher_brackets`; the paper
#: (Fig. 3 of RemixIT) discusses the [-30, -10] dB and above-15 dB brackets
TEACHER_EDGES = (-10.0, 0.0, 5.0, 10.0, 15.0)


def _bracket_label(lo, hi):
    if lo == -np.inf:
        return f"< {hi:g}"
    if hi == np.inf:
        return f">= {lo:g}"
    return f"[{lo:g}, {hi:g})"


def teacher_brackets(teacher, student, edges=TEACHER_EDGES, by=None):
    """The student's SI-SDR gain over its teacher per teacher-quality
    bracket, as in Fig. 3 of RemixIT (Tzinis et al., 2022).

    Utterances are grouped by ``by`` (default: the teacher's own SI-SDR,
    the paper's x axis; e.g. the input mixture's SI-SDR instead) into the
    brackets ``(-inf, e0), [e0, e1), ..., [e_last, inf)``; in each,
    ``delta = student - teacher`` (dB) per utterance.

    Arguments
    ---------
    teacher, student : dict
        ``{utterance ID: SI-SDR (dB)}``; only IDs in both are used.
    edges : sequence of float
        Increasing bracket boundaries (dB).
    by : dict, optional
        ``{utterance ID: value}`` to bracket on (default ``teacher``).

    Returns
    -------
    list of dict
        One per bracket, in order: ``label``, ``lo``, ``hi``, ``n``,
        ``mean`` and ``median`` of the deltas (NaN when empty) and
        ``deltas`` (a list).

    Example
    -------
    >>> t = {"a": -12.0, "b": 3.0, "c": 4.0, "d": 20.0}
    >>> s = {"a": -13.0, "b": 5.0, "c": 7.0, "d": 20.5, "e": 1.0}
    >>> for b in teacher_brackets(t, s, edges=(-10, 0, 15)):
    ...     print(b["label"], b["n"], b["mean"], b["median"])
    < -10 1 -1.0 -1.0
    [-10, 0) 0 nan nan
    [0, 15) 2 2.5 2.5
    >= 15 1 0.5 0.5
    """
    by = teacher if by is None else by
    bounds = [-np.inf, *map(float, edges), np.inf]
    if any(lo >= hi for lo, hi in zip(bounds, bounds[1:])):
        raise ValueError(f"bracket edges must increase: {edges}")
    ids = [u for u in teacher if u in student and u in by]
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        deltas = [student[u] - teacher[u] for u in ids if lo <= by[u] < hi]
        out.append({
            "label": _bracket_label(lo, hi), "lo": lo, "hi": hi,
            "n": len(deltas),
            "mean": float(np.mean(deltas)) if deltas else float("nan"),
            "median": float(np.median(deltas)) if deltas else float("nan"),
            "deltas": deltas,
        })
    return out


def plot_teacher_brackets(brackets, out_png, xlabel="teacher SI-SDR (dB)"):
    """Box plots of :func:`teacher_brackets` (empty brackets left out),
    drawn like Fig. 3 of RemixIT: the median as a green line, the mean as
    an orange star, the number of utterances under each bracket."""
    plt = _pyplot()
    shown = [b for b in brackets if b["n"]]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(shown)), 3.8))
    ax.boxplot([b["deltas"] for b in shown], showmeans=True,
               medianprops={"color": "tab:green", "linewidth": 2},
               meanprops={"marker": "*", "markerfacecolor": "tab:orange",
                          "markeredgecolor": "tab:orange",
                          "markersize": 10})
    ax.axhline(0.0, color="0.5", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(1, len(shown) + 1),
                  [f"{b['label']}\nn={b['n']}" for b in shown])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("student - teacher SI-SDR (dB)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png
