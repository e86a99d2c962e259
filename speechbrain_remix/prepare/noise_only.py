"""Training manifests for the mixture autoencoder with a share of
noise-only clips (Wang et al., 2020, Sec. 2.2 and Tables 1-2: 0, 30 or 50 %
of the training data).

Noisy mixtures get ``noise_only = 0``; recordings of the noise alone (a
``noise_wav`` or ``mix_wav`` manifest) are added with ``noise_only = 1``
until they make up ``share`` of the rows, drawn without replacement (then
cycled) by a seeded generator.
"""

import csv
import logging
import os
import random

from speechbrain_remix.data import DataError

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
