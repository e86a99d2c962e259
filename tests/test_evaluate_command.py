"""``speechbrain-remix evaluate``: enhanced files scored against references
(intrusive metrics and DNSMOS) or without them (DNSMOS), matched by name,
with bad and unmatched files listed and a non-zero exit status."""

import csv
import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from test_dnsmos import demo_noise, demo_speech

from speechbrain_remix.cli import main
from speechbrain_remix.losses import si_sdr
from speechbrain_remix.metrics.dnsmos import dnsmos

RATE = 16000
DNSMOS = ["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"]
INTRUSIVE = ["si_sdr", "si_sdri", "pesq", "stoi"]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two 9.5 s utterances (one window of DNSMOS each: fast): clean (wav),
    noisy at 0 dB (flac) and "enhanced", the noise at a fifth (upper-case
    .WAV; the second at 48 kHz), plus an unreadable file and a note."""
    root = tmp_path_factory.mktemp("evaluate")
    speech = demo_speech(19.0)
    noise = demo_noise(len(speech))
    signals = {}
    for k, name in enumerate(("utt_a", "utt_b")):
        clean = speech[k * len(speech) // 2:(k + 1) * len(speech) // 2]
        n = noise[: len(clean)] * np.sqrt(np.sum(clean**2) /
                                          np.sum(noise[: len(clean)]**2))
        signals[name] = (clean, clean + n, clean + 0.2 * n)
    for sub in ("clean", "noisy", "enhanced"):
        os.makedirs(root / sub)
    for name, (clean, noisy, enhanced) in signals.items():
        sf.write(root / "clean" / f"{name}.wav", clean, RATE)
        sf.write(root / "noisy" / f"{name}.flac", noisy, RATE)
        if name == "utt_b":  # another rate: resampled to the reference's
            enhanced = torch.from_numpy(enhanced.astype(np.float32))
            import torchaudio.functional as AF

            sf.write(root / "enhanced" / f"{name}.WAV",
                     AF.resample(enhanced, RATE, 48000).numpy(), 48000,
                     subtype="FLOAT")
        else:
            sf.write(root / "enhanced" / f"{name}.WAV", enhanced, RATE,
                     subtype="FLOAT")
    (root / "enhanced" / "notes.txt").write_text("not audio: ignored")
    return root, signals


def run(*argv):
    return main(["evaluate", *map(str, argv)])


def test_with_references_and_noisy_inputs(folders, tmp_path, capsys):
    root, signals = folders
    # a third pair whose enhanced file is unreadable
    folder = {sub: tmp_path / sub for sub in ("clean", "noisy")}
    for path in folder.values():
        path.mkdir()
    for sub, ext in (("clean", "wav"), ("noisy", "flac")):
        for name in ("utt_a", "utt_b"):
            os.link(root / sub / f"{name}.{ext}",
                    folder[sub] / f"{name}.{ext}")
        os.link(root / sub / f"utt_a.{ext}", folder[sub] / f"broken.{ext}")
    enhanced = tmp_path / "enh"
    enhanced.mkdir()
    for name in ("utt_a.WAV", "utt_b.WAV", "notes.txt"):
        os.link(root / "enhanced" / name, enhanced / name)
    (enhanced / "broken.wav").write_bytes(b"RIFF not really")
    out = tmp_path / "out"
    status = run(enhanced, "--references", folder["clean"], "--noisy",
                 folder["noisy"], "--out", out)
    assert status == 1  # the unreadable file
    printed = capsys.readouterr().out
    assert "broken.wav: cannot read audio" in printed
    assert "enhanced" in printed and "noisy" in printed
    assert "broken.wav" in (out / "skipped.txt").read_text()
    results = rows(out / "results.csv")
    assert list(results[0]) == ["ID", *INTRUSIVE, *DNSMOS]
    assert [r["ID"] for r in results] == ["utt_a", "utt_b", "avg"]
    noisy = {r["ID"]: r for r in rows(out / "results_noisy.csv")}
    clean, mix, est = (torch.from_numpy(np.asarray(x, np.float32))
                       for x in signals["utt_a"])
    a = results[0]
    assert float(a["si_sdr"]) == pytest.approx(si_sdr(est, clean).item(),
                                               abs=1e-3)
    assert float(a["si_sdri"]) == pytest.approx(
        si_sdr(est, clean).item() - si_sdr(mix, clean).item(), abs=1e-3)
    assert float(a["dnsmos_ovrl"]) == pytest.approx(
        dnsmos(est, RATE)["dnsmos_ovrl"], abs=1e-4)
    assert abs(float(noisy["utt_a"]["si_sdri"])) < 1e-3  # input vs itself
    for r in results[:2]:  # the 48 kHz file too: resampled, and better
        assert float(r["si_sdri"]) > 10
        assert float(r["dnsmos_bak"]) > float(noisy[r["ID"]]["dnsmos_bak"])
    summary = rows(out / "summary.csv")
    assert [r["ID"] for r in summary] == ["noisy", "enhanced"]


def test_without_references_scores_dnsmos_only(folders, tmp_path, capsys):
    root, signals = folders
    out = tmp_path / "out"
    assert run(root / "enhanced", "--out", out) == 0
    results = rows(out / "results.csv")
    assert list(results[0]) == ["ID", *DNSMOS]
    assert [r["ID"] for r in results] == ["utt_a", "utt_b", "avg"]
    assert not (out / "results_noisy.csv").exists()
    assert not (out / "skipped.txt").exists()
    assert "scored 2 file(s)" in capsys.readouterr().out


def test_references_without_noisy_leave_the_improvement_empty(folders,
                                                              tmp_path):
    root, _ = folders
    out = tmp_path / "out"
    assert run(root / "enhanced", "--references", root / "clean", "--out",
               out, "--metrics", "si_sdr", "si_sdri", "stoi") == 0
    results = rows(out / "results.csv")
    assert list(results[0]) == ["ID", "si_sdr", "si_sdri", "stoi"]
    assert float(results[0]["si_sdr"]) > 10
    assert all(math.isnan(float(r["si_sdri"])) for r in results)


def test_manifest_and_unmatched_files(folders, tmp_path, capsys):
    root, _ = folders
    data = tmp_path / "data"  # a train.py-style manifest with $data_root
    os.makedirs(data)
    for sub in ("clean", "noisy"):
        os.symlink(root / sub, data / sub)
    with open(data / "test.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", "duration", "mix_wav", "clean_wav"])
        for uid in ("utt_a", "utt_b", "utt_c"):  # utt_c: never enhanced
            writer.writerow([uid, "9.5", f"$data_root/noisy/{uid}.flac",
                             f"$data_root/clean/{uid}.wav"])
    out = tmp_path / "out"
    status = run(root / "enhanced", "--manifest", data / "test.csv", "--out",
                 out, "--metrics", "si_sdr", "si_sdri")
    assert status == 0  # a row not enhanced is counted, not an error
    assert "1 reference(s) or manifest row(s) without an enhanced file" in \
        capsys.readouterr().out
    assert (out / "not_enhanced.txt").read_text() == "utt_c\n"
    results = rows(out / "results.csv")
    assert [r["ID"] for r in results] == ["utt_a", "utt_b", "avg"]
    assert float(results[0]["si_sdri"]) > 10  # mix_wav found: improvement
    # a reference missing for an enhanced file is listed too
    (tmp_path / "clean").mkdir()
    os.link(root / "clean" / "utt_a.wav", tmp_path / "clean" / "utt_a.wav")
    assert run(root / "enhanced", "--references", tmp_path / "clean",
               "--out", tmp_path / "o2", "--metrics", "si_sdr") == 1
    assert "utt_b.WAV: no clean file" in capsys.readouterr().out
    assert len(rows(tmp_path / "o2" / "results.csv")) == 1 + 1


def test_command_lines_that_cannot_run(folders, tmp_path, capsys):
    root, _ = folders
    assert run(root / "enhanced", "--out", tmp_path, "--metrics",
               "pesq") == 2
    assert "need references" in capsys.readouterr().out
    assert run(root / "enhanced", "--manifest", "x.csv", "--references",
               root / "clean", "--out", tmp_path) == 2
    assert run(tmp_path / "nothing", "--out", tmp_path) == 2
    assert "folder not found" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: an unknown metric
        run(root / "enhanced", "--out", tmp_path, "--metrics", "mos")
