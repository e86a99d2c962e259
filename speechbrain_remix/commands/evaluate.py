"""``speechbrain-remix evaluate ENHANCED --out DIR`` scores enhanced files.

::

    speechbrain-remix evaluate ENHANCED [--references CLEAN] [--noisy NOISY]
                               [--manifest CSV [--data_folder DIR]]
                               --out DIR [--metrics NAME ...]

* With references (``--references`` or a manifest's ``clean_wav``): the
  intrusive metrics of :mod:`speechbrain_remix.metrics.enhancement`
  (SI-SDR, SI-SDR improvement, PESQ, STOI) and DNSMOS P.835.  The
  improvement needs the noisy input (``--noisy`` or ``mix_wav``); without
  it ``si_sdri`` is left empty (NaN), the other metrics are computed.
* Without references: DNSMOS P.835 only (SIG, BAK, OVRL: reference-free,
  :mod:`speechbrain_remix.metrics.dnsmos`).
* With the noisy inputs, they are scored too (``results_noisy.csv``, and
  a ``noisy`` row in the table next to ``enhanced``): what the enhancement
  changed.

Files are matched by their path under each folder without the extension
(an ``enhance`` output folder mirrors its input folder), or else by file
name alone when only one file has that name; the extension's case and
the format do not matter (any format libsndfile reads).  With a manifest
(``ID, mix_wav[, clean_wav]``, as ``train.py`` manifests; ``$data_root``
is ``--data_folder``, by default the manifest's folder) an enhanced file
is matched to the row whose ``ID`` is its name, as ``train.py`` names its
enhanced files.

Intrusive metrics compare signals at the reference's rate (the enhanced
and noisy files are resampled to it), or at 16 kHz when that rate is
neither 8 nor 16 kHz (PESQ is defined at those two); pairs are cut to the
shorter length, and pairs whose lengths differ by more than 0.1 s are not
the same recording: skipped.  DNSMOS resamples to 16 kHz itself.
References or manifest rows without an enhanced file are counted and
listed in ``not_enhanced.txt``, not an error (``train.py`` writes only
``save_enhanced`` files of a test set).

Writes ``results.csv`` (one row per file and an ``avg`` row),
``results_noisy.csv``, ``summary.csv`` and, when files were skipped,
``skipped.txt`` to ``--out``, and prints the summary table.  Unreadable,
empty, multi-channel or non-finite files, and files without their
counterpart, are skipped and listed at the end; the exit status is then
1 (2 for a command line that cannot run).
"""

import csv
import math
import os

import numpy as np
import soundfile as sf
import torch

from speechbrain_remix.commands.enhance import audio_extensions
from speechbrain_remix.metrics.dnsmos import DNSMOS_METRICS
from speechbrain_remix.metrics.enhancement import METRICS as INTRUSIVE

ALL_METRICS = (*INTRUSIVE, *DNSMOS_METRICS, "dnsmos_p808")
#: rates at which PESQ is defined (wide and narrow band)
PESQ_RATES = (16000, 8000)
#: pairs whose lengths differ by more are not the same recording
MAX_LENGTH_GAP = 0.1  # seconds


class Skip(Exception):
    """A file that cannot be scored; the message says why."""


def add_arguments(parser):
    parser.add_argument("enhanced", help="folder of enhanced files")
    parser.add_argument("--references", metavar="CLEAN_DIR",
                        help="clean references, same file names")
    parser.add_argument("--noisy", metavar="NOISY_DIR",
                        help="the noisy inputs, same file names (for "
                        "SI-SDR improvement, and scored themselves)")
    parser.add_argument("--manifest", metavar="CSV",
                        help="a manifest (ID, mix_wav[, clean_wav]) instead "
                        "of --references and --noisy")
    parser.add_argument("--data_folder", metavar="DIR",
                        help="$data_root of the manifest (default: its "
                        "folder)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--metrics", nargs="+", choices=ALL_METRICS,
                        metavar="NAME",
                        help="metrics to compute (default: SI-SDR, SI-SDRi, "
                        "PESQ, STOI with references, and DNSMOS SIG, BAK, "
                        f"OVRL); any of {', '.join(ALL_METRICS)}")


def index(folder):
    """Audio files under ``folder`` by key (relative path without the
    extension, ``/``-separated), and the keys held by several files.

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> for name in ("a.WAV", "a.flac", "sub/b.ogg", "notes.txt"):
    ...     os.makedirs(os.path.dirname(os.path.join(root, name)),
    ...                 exist_ok=True)
    ...     open(os.path.join(root, name), "w").close()
    >>> files, ambiguous = index(root)
    >>> sorted(files), sorted(ambiguous)
    (['sub/b'], ['a'])
    """
    exts = audio_extensions()
    found = {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            stem, ext = os.path.splitext(name)
            if ext[1:].lower() not in exts:
                continue  # not audio (notes, manifests, images)
            rel = os.path.relpath(os.path.join(root, stem), folder)
            found.setdefault(rel.replace(os.sep, "/"), []).append(
                os.path.join(root, name))
    files = {k: v[0] for k, v in found.items() if len(v) == 1}
    ambiguous = {k: v for k, v in found.items() if len(v) > 1}
    return files, ambiguous


def match(key, files):
    """The key in ``files`` of ``key``: the same relative path, else the
    only one with the same file name; None when there is none."""
    if key in files:
        return key
    name = key.rsplit("/", 1)[-1]
    same = [k for k in files if k.rsplit("/", 1)[-1] == name]
    return same[0] if len(same) == 1 else None


def read_manifest(path, data_folder):
    """``{ID: {"clean": path or None, "noisy": path or None}}``."""
    root = data_folder or os.path.dirname(os.path.abspath(path))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "ID" not in rows[0]:
        raise Skip(f"{path}: no rows with an ID column")

    def resolve(value):
        return value.replace("$data_root", root) if value else None

    return {row["ID"]: {"clean": resolve(row.get("clean_wav")),
                        "noisy": resolve(row.get("mix_wav"))}
            for row in rows}


def read(path, what=None):
    """Mono float32 samples and rate of ``path``; :class:`Skip` if it is
    unreadable, empty, multi-channel or not finite (the message names
    the file as ``what`` when it is not the enhanced file itself)."""
    where = f"{what} {path}: " if what else ""
    try:
        wav, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:
        raise Skip(f"{where}cannot read audio "
                   f"({str(err).splitlines()[0]})") from None
    if wav.shape[1] != 1:
        raise Skip(f"{where}{wav.shape[1]} channels, expected mono")
    if not len(wav):
        raise Skip(f"{where}empty")
    if not np.isfinite(wav).all():
        raise Skip(f"{where}NaN or inf samples")
    return torch.from_numpy(wav[:, 0].copy()), rate


def resample(wav, rate, target):
    if rate == target:
        return wav
    import torchaudio.functional as AF

    return AF.resample(wav, rate, target)


def score(enhanced, clean, noisy, metrics):
    """The metrics of one enhanced file (and of its noisy input)."""
    from speechbrain_remix.metrics.dnsmos import dnsmos
    from speechbrain_remix.metrics.enhancement import enhancement_metrics

    signals = {"enhanced": read(enhanced)}
    if noisy:
        signals["noisy"] = read(noisy, "its noisy input")
    out = {name: {} for name in signals}
    if any(m in INTRUSIVE for m in metrics):
        ref, rate = read(clean, "its reference")
        if rate not in PESQ_RATES:
            ref, rate = resample(ref, rate, 16000), 16000
        cut = {k: resample(w, r, rate) for k, (w, r) in signals.items()}
        gap = max(abs(len(w) - len(ref)) for w in cut.values()) / rate
        if gap > MAX_LENGTH_GAP:
            raise Skip(f"{gap:.2f} s longer or shorter than its reference "
                       f"{clean}: not the same recording")
        n = min(len(ref), *(len(w) for w in cut.values()))
        for name, wav in cut.items():
            mixture = cut["noisy"] if noisy else wav
            values = enhancement_metrics(wav[:n], ref[:n], mixture[:n], rate)
            if not noisy:  # no input, no improvement
                values["si_sdri"] = math.nan
            out[name].update(values)
    if any(m.startswith("dnsmos") for m in metrics):
        for name, (wav, rate) in signals.items():
            out[name].update(dnsmos(wav, rate))
    return {name: {m: values[m] for m in metrics}
            for name, values in out.items()}


def pairs_of(args):
    """``[(key, enhanced, clean, noisy)]`` to score, ``[(path, why)]``
    skipped already (ambiguous names, missing counterparts) and the
    references or manifest rows that no enhanced file matched."""
    files, ambiguous = index(args.enhanced)
    skipped = [(p, f"several files named {k} (with other extensions)")
               for k, paths in ambiguous.items() for p in paths]
    if args.manifest:
        rows = read_manifest(args.manifest, args.data_folder)
        sources = {"clean": {k: r["clean"] for k, r in rows.items()
                             if r["clean"]},
                   "noisy": {k: r["noisy"] for k, r in rows.items()
                             if r["noisy"]}}
        where = {name: args.manifest for name in sources}
    else:
        sources, where = {}, {}
        for name, folder in (("clean", args.references),
                             ("noisy", args.noisy)):
            if folder:
                sources[name], more = index(folder)
                where[name] = folder
                skipped += [(p, f"several files named {k} in {folder}")
                            for k, paths in more.items() for p in paths]
                sources[name] = {k: v for k, v in sources[name].items()
                                 if k not in more}
    items, used = [], {name: set() for name in sources}
    for key, path in sorted(files.items()):
        found, missing = {}, []
        for name, table in sources.items():
            k = match(key, table)
            if k is None:
                missing.append(f"no {name} file of that name in "
                               f"{where[name]}")
            else:
                found[name] = table[k]
                used[name].add(k)
        if missing:
            skipped.append((path, "; ".join(missing)))
        else:
            items.append((key, path, found.get("clean"), found.get("noisy")))
    unmatched = set()  # e.g. train.py writes only save_enhanced files
    for name, table in sources.items():
        unmatched |= set(table) - used[name]
    return items, skipped, sorted(unmatched)


def run(args):
    from tqdm import tqdm

    from speechbrain_remix import reporting

    if args.manifest and (args.references or args.noisy):
        print("error: --manifest replaces --references and --noisy; give "
              "one or the other")
        return 2
    for folder in (args.enhanced, args.references, args.noisy):
        if folder and not os.path.isdir(folder):
            print(f"error: {folder}: folder not found")
            return 2
    try:
        items, skipped, unmatched = pairs_of(args)
    except (OSError, Skip) as err:
        print(f"error: {err}")
        return 2
    has_refs = any(clean for _, _, clean, _ in items)
    metrics = list(args.metrics or (
        (*INTRUSIVE, *DNSMOS_METRICS) if has_refs or args.references
        else DNSMOS_METRICS))
    if any(m in INTRUSIVE for m in metrics) and not (has_refs or
                                                     args.references):
        print(f"error: {', '.join(m for m in metrics if m in INTRUSIVE)} "
              "need references: --references CLEAN_DIR, or a manifest "
              "with clean_wav; DNSMOS needs none")
        return 2
    rows = {"enhanced": [], "noisy": []}
    for key, path, clean, noisy in tqdm(items, desc="scoring", unit="file"):
        try:
            scores = score(path, clean, noisy, metrics)
        except Skip as err:
            skipped.append((path, str(err)))
            continue
        for name, values in scores.items():
            rows[name].append({"ID": key, **values})
    os.makedirs(args.out, exist_ok=True)
    summary = {}
    for name, found in rows.items():
        if found or name == "enhanced":
            fname = "results.csv" if name == "enhanced" \
                else f"results_{name}.csv"
            summary[name] = reporting.write_results(
                os.path.join(args.out, fname), found, metrics)
    if "noisy" in summary:  # the input first, as train.py's "mixture"
        summary = {"noisy": summary["noisy"],
                   "enhanced": summary["enhanced"]}
    reporting.write_summary(os.path.join(args.out, "summary.csv"), summary,
                            metrics)
    print(f"\nscored {len(rows['enhanced'])} file(s) ({args.out})\n"
          + reporting.format_table(summary, metrics), flush=True)
    listed = os.path.join(args.out, "not_enhanced.txt")
    if os.path.exists(listed):  # from an earlier run into the same --out
        os.remove(listed)
    if unmatched:  # not an error: one may score some of a test set
        with open(listed, "w") as f:
            f.writelines(f"{k}\n" for k in unmatched)
        print(f"{len(unmatched)} reference(s) or manifest row(s) without an "
              "enhanced file, not scored (listed in not_enhanced.txt)")
    path = os.path.join(args.out, "skipped.txt")
    if skipped:
        with open(path, "w") as f:
            f.writelines(f"{p}\t{why}\n" for p, why in skipped)
        print(f"skipped {len(skipped)} file(s) (listed in {path}):")
        for p, why in skipped:
            print(f"  {p}: {why}")
        return 1
    if os.path.exists(path):  # from an earlier run into the same --out
        os.remove(path)
    return 0 if rows["enhanced"] else 1
