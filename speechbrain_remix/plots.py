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
