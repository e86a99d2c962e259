"""Training manifests for the mixture autoencoder with noise-only clips
(Wang et al., 2020, Sec. 2.2 and Tables 1-2: 0, 30 or 50 % of the training
data).

* :func:`noise_only_manifest`: noisy mixtures get ``noise_only = 0``;
  recordings of the noise alone (a ``noise_wav`` or ``mix_wav`` manifest)
  are added with ``noise_only = 1`` until they make up ``share`` of the
  rows, drawn without replacement (then cycled) by a seeded generator.
* :func:`label_by_energy`: for a user's own recordings, where nobody says
  which clips hold no speech, "a simple thresholding operation on the
  energy of the signals" (Sec. 2.2) labels them.
"""

import csv
import logging
import math
import os
import random

from speechbrain_remix.data import DataError, read_audio

logger = logging.getLogger(__name__)


def _read(path):
    if not os.path.isfile(path):
        raise DataError(f"{path}: manifest not found; run its preparation "
                        "first")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def noise_only_manifest(mix_csv, noise_csv, share, out_csv, seed=1234):
    """Writes ``out_csv``: ``mix_csv``'s rows and noise-only rows.

    Arguments
    ---------
    mix_csv : str
        Noisy mixtures (``ID, duration, mix_wav``).
    noise_csv : str
        Noise recordings (``noise_wav`` or ``mix_wav``); read only if
        ``share > 0``.
    share : float
        Share of noise-only rows in the output, in ``[0, 1)``.
    out_csv : str
        Output manifest (``ID, duration, mix_wav, noise_only``).
    seed : int
        Which noise recordings are drawn.

    Returns
    -------
    int
        The number of noise-only rows.

    Example
    -------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> rows = ["ID,duration,mix_wav"] + [f"m{i},1.0,m{i}.wav"
    ...                                   for i in range(7)]
    >>> _ = open(f"{d}/mix.csv", "w").write("\\n".join(rows))
    >>> noise = ["ID,duration,noise_wav"] + [f"n{i},1.0,n{i}.wav"
    ...                                      for i in range(2)]
    >>> _ = open(f"{d}/noise.csv", "w").write("\\n".join(noise))
    >>> noise_only_manifest(f"{d}/mix.csv", f"{d}/noise.csv", 0.3,
    ...                     f"{d}/out.csv")
    3
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"noise_only_share must lie in [0, 1), got {share}")
    mixtures = _read(mix_csv)
    rows = [{"ID": r["ID"], "duration": r["duration"],
             "mix_wav": r["mix_wav"], "noise_only": 0} for r in mixtures]
    count = round(share / (1.0 - share) * len(rows))
    if count:
        pool = _read(noise_csv)
        if not pool:
            raise DataError(f"{noise_csv}: no noise recordings for "
                            "noise_only_share > 0")
        rng = random.Random(seed)
        order = []
        while len(order) < count:  # without replacement, then cycled
            order += rng.sample(pool, len(pool))
        for k, row in enumerate(order[:count]):
            rows.append({"ID": f"noise_only_{k:05d}_{row['ID']}",
                         "duration": row["duration"],
                         "mix_wav": row.get("noise_wav") or row["mix_wav"],
                         "noise_only": 1})
    tmp = out_csv + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, ["ID", "duration", "mix_wav",
                                    "noise_only"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out_csv)  # never a half-written manifest
    logger.info("%s: %d mixtures and %d noise-only clips (%.0f %%)",
                out_csv, len(mixtures), count, 100 * count / len(rows))
    return count


def prepare_with_noise_only(prepare, mix_csv, noise_csv, share, out_csv,
                            seed=1234, skip_prep=False):
    """Runs a dataset's preparation (``prepare``, called with
    ``skip_prep``), then writes the noise-only training manifest (cheap:
    always rewritten, so it follows ``share``)."""
    prepare(skip_prep=skip_prep)
    noise_only_manifest(mix_csv, noise_csv, share, out_csv, seed)


def label_by_energy(manifest, out_csv, data_root, sample_rate=16000,
                    below_db=-10.0):
    """Labels as noise-only the clips of ``manifest`` whose energy is more
    than ``-below_db`` dB under the median clip's (Sec. 2.2: recordings of
    one place share its noise; those without speech are the quiet ones).

    Arguments
    ---------
    manifest : str
        Clips (``ID, duration, mix_wav``), paths as ``$data_root/...``.
    out_csv : str
        The same rows with a ``noise_only`` column.
    data_root : str
        What ``$data_root`` stands for.
    sample_rate : int
        Rate the clips are read at.
    below_db : float
        Threshold relative to the median clip energy, in dB.

    Returns
    -------
    int
        The number of clips labelled noise-only.
    """
    rows = _read(manifest)
    levels = []
    for row in rows:
        wav = read_audio(row["mix_wav"].replace("$data_root", data_root),
                         sample_rate)
        levels.append(10 * math.log10(float(wav.pow(2).mean()) + 1e-20))
    median = sorted(levels)[len(levels) // 2]
    for row, level in zip(rows, levels):
        row["noise_only"] = int(level < median + below_db)
    tmp = out_csv + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out_csv)
    count = sum(r["noise_only"] for r in rows)
    logger.info("%s: %d of %d clips labelled noise-only (energy more than "
                "%.0f dB under the median clip's)", out_csv, count, len(rows),
                -below_db)
    return count
