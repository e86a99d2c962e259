#!/usr/bin/env python3
"""Build the demo corpus shipped in ``data/demo`` from Debian packages.

The demo needs real human speech and two clearly different real noise
domains, small enough to ship (at most 10 MB).  Debian carries such audio
under free licenses:

* speech: the Dutch voice acting of *Fish Fillets NG* (two speakers, ``m``
  and ``v``), the letter/syllable recordings of *KLettres* (one voice per
  language) and the LibriVox excerpts of ``pocketsphinx-testdata``;
* noise domain ``music``: loops and ambient pads of ``sonic-pi-samples``;
* noise domain ``env``: environmental game sounds of ``minetest-data``
  (water, lava, fire, footsteps, digging, doors, carts).

Speakers are disjoint between the ``train`` and ``test`` splits: the
``m`` fish and one half of the KLettres languages train, the ``v`` fish,
the other languages and the LibriVox reader test.  Noise recordings are
split by source file, so no test noise was heard in training.

Every output file is 16 kHz mono Ogg/Vorbis; ``data/demo/sources.csv``
records, for each file, the package, the original path(s) and the license,
and ``data/demo/licenses/`` holds the packages' copyright files.

Usage (needs ``apt-get``; run ``apt-get update`` once first)::

    python tools/build_demo_data.py --out data/demo
"""

import argparse
import csv
import glob
import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
PACKAGES = {
    "fillets-ng-data-nl": "GPL-2+",
    "klettres-data": "GPL-2+",
    "pocketsphinx-testdata": "BSD-2 (CMU); LibriVox recordings: public domain",
    "sonic-pi-samples": "per file, mostly CC0 (see licenses/sonic-pi-samples)",
    "minetest-data": "CC-BY-SA-3.0 (see licenses/minetest-data)",
}
TRAIN_LANGS = ["cs", "da", "de", "es", "hu", "lt", "pt_BR"]
TEST_LANGS = ["fr", "it", "nl", "ru", "en_GB"]


def fetch_packages(workdir, packages=PACKAGES):
    """Download and unpack the Debian packages; returns {package: root}.

    A package already unpacked in ``workdir`` is reused."""
    roots = {}
    for pkg in packages:
        root = os.path.join(workdir, pkg)
        if os.path.isdir(root):
            roots[pkg] = root
            continue
        try:
            subprocess.run(["apt-get", "download", pkg], cwd=workdir,
                           check=True)
        except (OSError, subprocess.CalledProcessError) as err:
            raise SystemExit(
                f"apt-get download {pkg} failed ({err}); on Debian or Ubuntu "
                "run `apt-get update` once, or unpack the package yourself "
                f"(dpkg-deb -x {pkg}_*.deb {os.path.join(workdir, pkg)}) "
                "and pass --debs " + workdir
            ) from err
        deb = glob.glob(os.path.join(workdir, f"{pkg}_*.deb"))[0]
        # unpack beside, then rename: an interrupted unpack is not reused
        subprocess.run(["dpkg-deb", "-x", deb, root + ".part"], check=True)
        os.rename(root + ".part", root)
        roots[pkg] = root
    return roots


def load_mono_16k(path):
    """Reads any file libsndfile knows (or raw G.722, through PyAV),
    downmixes and resamples to 16 kHz."""
    if path.endswith(".g722"):
        wav, sr = _read_g722(path), SAMPLE_RATE
    else:
        wav, sr = sf.read(path, dtype="float64", always_2d=True)
        wav = wav.mean(axis=1)
    if sr != SAMPLE_RATE:
        g = np.gcd(sr, SAMPLE_RATE)
        wav = resample_poly(wav, SAMPLE_RATE // g, sr // g)
    return wav


def _read_g722(path):
    """Decodes a raw G.722 file (16 kHz wide-band telephone prompts)."""
    try:
        import av
    except ImportError as err:
        raise SystemExit(
            f"{path}: G.722 needs PyAV; pip install av (or pip install -e "
            '".[corpus]")'
        ) from err
    with av.open(path, format="g722") as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    if not frames:  # a few prompts are empty files: skipped as too short
        return np.zeros(0)
    return np.concatenate(frames).astype(np.float64) / 32768.0


def trim_silence(wav, frame=320, rel_db=-40.0):
    """Cuts leading/trailing frames quieter than ``rel_db`` below the peak."""
    n = len(wav) // frame
    if n == 0:
        return wav
    energy = (wav[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    active = np.flatnonzero(energy > energy.max() * 10 ** (rel_db / 10))
    return wav[active[0] * frame : (active[-1] + 1) * frame]


def normalize(wav, rms_db):
    rms = np.sqrt(np.mean(wav**2)) + 1e-12
    wav = wav * 10 ** (rms_db / 20) / rms
    peak = np.abs(wav).max()
    return wav * 0.99 / peak if peak > 0.99 else wav


def speech_sources(roots):
    """Lists (split, speaker, path, package) for every speech recording."""
    fillets = os.path.join(
        roots["fillets-ng-data-nl"], "usr/share/games/fillets-ng/sound"
    )
    kl = os.path.join(roots["klettres-data"], "usr/share/klettres")
    ps = os.path.join(roots["pocketsphinx-testdata"], "usr/share/pocketsphinx")
    rows = []
    for split, fish in (("train", "m"), ("test", "v")):
        for p in sorted(glob.glob(f"{fillets}/*/nl/*-{fish}-*.ogg")):
            rows.append((split, f"fillets_{fish}", p, "fillets-ng-data-nl"))
    for split, langs in (("train", TRAIN_LANGS), ("test", TEST_LANGS)):
        for lang in langs:
            for p in sorted(glob.glob(f"{kl}/{lang}/syllab/*.ogg")):
                rows.append((split, f"klettres_{lang}", p, "klettres-data"))
    for p in sorted(glob.glob(f"{ps}/**/librivox/*.wav", recursive=True)):
        rows.append(("test", "librivox", p, "pocketsphinx-testdata"))
    return rows


def noise_sources(roots):
    """Lists (domain, path, package) for every noise recording."""
    sp = os.path.join(roots["sonic-pi-samples"], "usr/share/sonic-pi/samples")
    mt = os.path.join(
        roots["minetest-data"], "usr/share/games/minetest/games/minetest_game"
    )
    rows = []
    for pat in ("loop_*", "ambi_*", "guit_*", "bass_*"):
        for p in sorted(glob.glob(f"{sp}/{pat}.flac")):
            rows.append(("music", p, "sonic-pi-samples"))
    for p in sorted(glob.glob(f"{mt}/mods/*/sounds/*.ogg")):
        rows.append(("env", p, "minetest-data"))
    return rows


def write(path, wav):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, wav.astype(np.float32), SAMPLE_RATE, format="OGG",
             subtype="VORBIS")


def build_speech(roots, out, rng, per_speaker, min_s, max_s, records,
                 sources=None):
    """Up to ``per_speaker[split][speaker]`` (or ``[family]``, the name's
    first ``_`` part) random clips of every speaker of ``sources`` (rows
    ``(split, speaker, path, package)``; default: the demo's), trimmed,
    at least ``min_s`` and at most ``max_s`` seconds, at -25 dB RMS."""
    by_speaker = {}
    for split, spk, path, pkg in sources or speech_sources(roots):
        by_speaker.setdefault((split, spk), []).append((path, pkg))
    for (split, spk), items in sorted(by_speaker.items()):
        order = rng.permutation(len(items))
        kept = 0
        for i in order:
            cap = per_speaker[split]
            if kept >= cap.get(spk, cap.get(spk.split("_")[0], 0)):
                break
            path, pkg = items[i]
            wav = trim_silence(load_mono_16k(path))
            if len(wav) < min_s * SAMPLE_RATE:
                continue
            wav = normalize(wav[: int(max_s * SAMPLE_RATE)], -25.0)
            name = f"{spk}_{os.path.splitext(os.path.basename(path))[0]}"
            rel = f"speech/{split}/{name}.ogg"
            write(os.path.join(out, rel), wav)
            records.append((rel, spk, pkg, _pkg_rel(path, roots[pkg])))
            kept += 1


def build_noise(roots, out, rng, seg_s, n_segments, records, sources=None):
    """Noise segments of ``seg_s`` seconds, concatenating random clips of one
    domain (test segments only use held-out source files, a quarter of the
    domain's files); ``sources``: rows ``(domain, path, package)``, default
    the demo's."""
    by_domain = {}
    for domain, path, pkg in sources or noise_sources(roots):
        by_domain.setdefault(domain, []).append((path, pkg))
    seg = int(seg_s * SAMPLE_RATE)
    for domain, items in sorted(by_domain.items()):
        order = rng.permutation(len(items))
        n_test = max(2, len(items) // 4)
        splits = {"test": order[:n_test], "train": order[n_test:]}
        cache = {}
        for split, idx in splits.items():
            for k in range(n_segments[split]):
                parts, used = [], []
                while sum(len(p) for p in parts) < seg:
                    i = idx[rng.integers(len(idx))]
                    path, pkg = items[i]
                    if path not in cache:
                        cache[path] = trim_silence(
                            load_mono_16k(path), rel_db=-50
                        )
                    clip = cache[path]
                    if len(clip) > seg:
                        start = rng.integers(len(clip) - seg)
                        clip = clip[start : start + seg]
                    gain = 10 ** (rng.uniform(-6, 6) / 20)
                    parts.append(gain * clip / (np.abs(clip).max() + 1e-9))
                    used.append(_pkg_rel(path, roots[pkg]))
                wav = normalize(np.concatenate(parts)[:seg], -25.0)
                rel = f"noise/{domain}/{split}/{domain}_{split}_{k:03d}.ogg"
                write(os.path.join(out, rel), wav)
                records.append((rel, domain, pkg, ";".join(used)))


def _pkg_rel(path, root):
    return "/" + os.path.relpath(path, root)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/demo")
    parser.add_argument("--debs", default=None,
                        help="folder for the .deb files (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    workdir = args.debs or tempfile.mkdtemp(prefix="demo_debs_")
    os.makedirs(workdir, exist_ok=True)
    roots = fetch_packages(workdir)
    rng = np.random.default_rng(args.seed)
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    records = []
    per_speaker = {
        "train": {"fillets": 260, "klettres": 12},
        "test": {"fillets": 40, "klettres": 4, "librivox": 10},
    }
    build_speech(roots, args.out, rng, per_speaker, 1.5, 4.0, records)
    build_noise(roots, args.out, rng, 4.0, {"train": 60, "test": 20}, records)

    write_sources(args.out, records, roots, PACKAGES)
    print(f"wrote {len(records)} files to {args.out}")


def write_sources(out, records, roots, licenses):
    """``sources.csv`` (every file: speaker or noise domain, package,
    license, original path(s)) and the packages' copyright files."""
    with open(os.path.join(out, "sources.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "speaker_or_domain", "package", "license",
                    "origin"])
        for rel, who, pkg, origin in records:
            w.writerow([rel, who, pkg, licenses[pkg], origin])
    lic = os.path.join(out, "licenses")
    os.makedirs(lic, exist_ok=True)
    for pkg, root in roots.items():
        shutil.copy(os.path.join(root, "usr/share/doc", pkg, "copyright"),
                    os.path.join(lic, pkg))


if __name__ == "__main__":
    main()
