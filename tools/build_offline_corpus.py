#!/usr/bin/env python3
"""Build the replication corpus: real speech and two real noise domains
that the demo corpus never used, from Debian packages, in the demo's
layout (so every demo recipe runs on it with ``--demo_folder``).

Speech (16 kHz, trimmed, 1.5 to 4 s, -25 dB RMS):

* ``train`` speakers: the Czech voice cast of *Fish Fillets NG*
  (``fillets-ng-data-cs``: the two fish, ``m`` and ``v``, and the other
  characters as one group), and the Asterisk telephone prompts (G.722,
  16 kHz wide-band) of Allison in US English and Mexican Spanish and of
  Carlo in Italian;
* ``test`` speakers, disjoint: June's Canadian French and the Russian
  prompts of Asterisk, and the English cast of *Fish Fillets NG*
  (``fillets-ng-data``: its own actors, not the Czech or Dutch ones).

So there are 4 languages in training and 3 in the test, none of them the
demo's Dutch fish or KLettres voices.

Noise, 4 s segments that concatenate random clips of one domain at random
gains, test segments from held-out source files only (a quarter):

* ``music`` (domain A, the supervised teacher's): the orchestral
  soundtrack of *The Battle for Wesnoth* and the music of *Fish Fillets
  NG*;
* ``env`` (domain B, RemixIT's target): sound effects of *Wesnoth*
  (weapons, magic, creatures, ambience; the units' hit and death cries
  are left out, being voices) and of *Hedgewars* (explosions, water,
  tools).

Every output file is listed in ``sources.csv`` with its package, original
path(s) and license; ``licenses/`` holds the packages' copyright files.
Nothing is shipped: the corpus is built on demand (about 600 MB of
packages, downloaded with ``apt-get download``, unpacked with
``dpkg-deb -x``, no root needed; a minute or two)::

    python tools/build_offline_corpus.py --out data/offline

G.722 decoding needs PyAV (``pip install av``, or the ``corpus`` extra).
"""

import argparse
import glob
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_demo_data import (  # noqa: E402
    build_noise,
    build_speech,
    fetch_packages,
    write_sources,
)

ASTERISK = "usr/share/asterisk/sounds"
PACKAGES = {
    "fillets-ng-data-cs": "GPL-2+",
    "fillets-ng-data": "GPL-2+",
    "asterisk-core-sounds-en-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-es-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-it-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-fr-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-ru-g722": "CC-BY-SA-3.0",
    "wesnoth-1.16-music": "GPL-2+",
    "wesnoth-1.16-data": "GPL-2+",
    "hedgewars-data": "per file, mostly GFDL-1.3 (see licenses/hedgewars-data)",
}
# (split, speaker, package, voice folder) of the Asterisk prompts
PROMPTS = [
    ("train", "asterisk_en", "asterisk-core-sounds-en-g722", "en_US_f_Allison"),
    ("train", "asterisk_es", "asterisk-core-sounds-es-g722", "es_MX_f_Allison"),
    ("train", "asterisk_it", "asterisk-core-sounds-it-g722", "it_IT_m_Carlo"),
    ("test", "asterisk_fr", "asterisk-core-sounds-fr-g722", "fr_CA_f_June"),
    ("test", "asterisk_ru", "asterisk-core-sounds-ru-g722",
     "ru_RU_f_IvrvoiceRU"),
]
# clips per speaker (or per family: the name's first "_" part)
PER_SPEAKER = {
    "train": {"fillets_cs_m": 160, "fillets_cs_v": 160,
              "fillets_cs_other": 80, "asterisk": 80},
    "test": {"fillets_en": 60, "asterisk": 60},
}
VOICES = ("die", "hit", "laugh", "scream", "groan", "yell", "shout", "cry",
          "grunt", "ugg")


def speech_sources(roots):
    """Lists (split, speaker, path, package) for every speech recording."""
    rows = []
    cs = os.path.join(roots["fillets-ng-data-cs"],
                      "usr/share/games/fillets-ng/sound")
    for path in sorted(glob.glob(f"{cs}/**/cs/*.ogg", recursive=True)):
        # "<level>-<role>-<line>.ogg": m and v are the two fish
        roles = set(os.path.basename(path)[:-4].split("-")) & {"m", "v"}
        who = roles.pop() if len(roles) == 1 else "other"
        rows.append(("train", f"fillets_cs_{who}", path,
                     "fillets-ng-data-cs"))
    en = os.path.join(roots["fillets-ng-data"],
                      "usr/share/games/fillets-ng/sound")
    names = set()  # a few lines recur in two levels: one file each
    for path in sorted(glob.glob(f"{en}/**/en/*.ogg", recursive=True)):
        if os.path.basename(path) not in names:
            names.add(os.path.basename(path))
            rows.append(("test", "fillets_en", path, "fillets-ng-data"))
    for split, speaker, pkg, voice in PROMPTS:
        folder = os.path.join(roots[pkg], ASTERISK, voice)
        # top-level prompts are sentences; digits/letters are single words
        for path in sorted(glob.glob(f"{folder}/*.g722")):
            rows.append((split, speaker, path, pkg))
    return rows


def noise_sources(roots):
    """Lists (domain, path, package) for every noise recording."""
    wes = "usr/share/games/wesnoth/1.16/data/core"
    rows = []
    for path in sorted(glob.glob(os.path.join(
            roots["wesnoth-1.16-music"], wes, "music", "*.ogg"))):
        rows.append(("music", path, "wesnoth-1.16-music"))
    for path in sorted(glob.glob(os.path.join(
            roots["fillets-ng-data"], "usr/share/games/fillets-ng/music",
            "*.ogg"))):
        rows.append(("music", path, "fillets-ng-data"))
    sounds = os.path.join(roots["wesnoth-1.16-data"], wes, "sounds")
    for path in sorted(glob.glob(f"{sounds}/*.ogg")
                       + glob.glob(f"{sounds}/*.wav")
                       + glob.glob(f"{sounds}/ambient/*.ogg")):
        if not any(v in os.path.basename(path) for v in VOICES):
            rows.append(("env", path, "wesnoth-1.16-data"))
    hw = os.path.join(roots["hedgewars-data"],
                      "usr/share/games/hedgewars/Data/Sounds")
    for path in sorted(glob.glob(f"{hw}/*.ogg")):
        rows.append(("env", path, "hedgewars-data"))
    return rows


def build(out, workdir, seed=1234, n_noise=(150, 50)):
    """Downloads, unpacks and writes the corpus to ``out`` (replaced);
    written to ``out + ".part"`` first, so an interrupted build never
    leaves a corpus that looks complete."""
    roots = fetch_packages(workdir, PACKAGES)
    rng = np.random.default_rng(seed)
    part = out.rstrip("/") + ".part"
    shutil.rmtree(part, ignore_errors=True)
    records = []
    build_speech(roots, part, rng, PER_SPEAKER, 1.5, 4.0, records,
                 sources=speech_sources(roots))
    build_noise(roots, part, rng, 4.0,
                {"train": n_noise[0], "test": n_noise[1]}, records,
                sources=noise_sources(roots))
    write_sources(part, records, roots, PACKAGES)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(part, out)
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/offline")
    parser.add_argument("--debs", default=None,
                        help="folder for the .deb files (default: a temp "
                        "dir); kept and reused when given")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    workdir = args.debs or tempfile.mkdtemp(prefix="offline_debs_")
    os.makedirs(workdir, exist_ok=True)
    records = build(args.out, workdir, args.seed)
    speakers = sorted({who for rel, who, _, _ in records
                       if rel.startswith("speech/")})
    print(f"wrote {len(records)} files to {args.out} "
          f"(speakers: {', '.join(speakers)})")
    if not args.debs:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
