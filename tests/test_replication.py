"""The replication: its corpus builder (on fake package trees, no
download), its verdict rule, and a miniature of the whole command on the
shipped demo corpus (the pipeline, not the verdicts)."""

import argparse
import csv
import importlib.util
import os
import sys

import numpy as np
import pytest
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import build_offline_corpus as corpus  # noqa: E402


def _load_runner(name="run"):
    spec = importlib.util.spec_from_file_location(
        f"replication_{name}",
        os.path.join(ROOT, "benchmarks", "replication", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = _load_runner()
SR = 16000


def _voice(rng, seconds=2.0):
    """Noise with a syllable-like envelope: not silent, not stationary."""
    t = np.arange(int(seconds * SR)) / SR
    return 0.3 * rng.standard_normal(len(t)) * (0.6 + 0.4 * np.sin(
        2 * np.pi * 4 * t)) ** 2


def _g722(path, wav):
    av = pytest.importorskip("av")
    pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16)[None]
    with av.open(path, "w", format="g722") as container:
        stream = container.add_stream("g722", rate=SR)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SR
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def _fake_packages(workdir):
    """The packages' trees as ``dpkg-deb -x`` unpacks them (tiny)."""
    rng = np.random.default_rng(0)

    def ogg(pkg, rel, seconds=2.0):
        path = os.path.join(workdir, pkg, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sf.write(path, _voice(rng, seconds), SR, format="OGG",
                 subtype="VORBIS")

    sound = "usr/share/games/fillets-ng/sound"
    for name in ("lvl-m-a", "lvl-m-b", "lvl-v-a", "lvl-x-a", "m-zkus"):
        ogg("fillets-ng-data-cs", f"{sound}/lvl/cs/{name}.ogg")
    for level in ("one", "two"):  # the same line in two levels: kept once
        ogg("fillets-ng-data", f"{sound}/{level}/en/same-x-line.ogg")
    ogg("fillets-ng-data", f"{sound}/one/en/one-z-other.ogg")
    for k in range(4):
        ogg("fillets-ng-data", f"usr/share/games/fillets-ng/music/m{k}.ogg",
            6.0)
    wes = "usr/share/games/wesnoth/1.16/data/core"
    for k in range(4):
        ogg("wesnoth-1.16-music", f"{wes}/music/track{k}.ogg", 6.0)
    for name in ("sword", "fire", "orc-die", "elf-hit-1", "ambient/wind"):
        ogg("wesnoth-1.16-data", f"{wes}/sounds/{name}.ogg", 3.0)
    for name in ("Explosion", "Splash", "Pickhammer"):
        ogg("hedgewars-data", f"usr/share/games/hedgewars/Data/Sounds/"
            f"{name}.ogg", 3.0)
    for split, spk, pkg, voice in corpus.PROMPTS:
        folder = os.path.join(workdir, pkg, corpus.ASTERISK, voice)
        os.makedirs(os.path.join(folder, "digits"), exist_ok=True)
        _g722(os.path.join(folder, "prompt.g722"), _voice(rng))
        _g722(os.path.join(folder, "digits", "1.g722"), _voice(rng))
        open(os.path.join(folder, "empty.g722"), "wb").close()
    for pkg in corpus.PACKAGES:
        doc = os.path.join(workdir, pkg, "usr/share/doc", pkg)
        os.makedirs(doc, exist_ok=True)
        with open(os.path.join(doc, "copyright"), "w") as f:
            f.write(f"{pkg}: {corpus.PACKAGES[pkg]}\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("offline")
    workdir = str(base / "debs")
    _fake_packages(workdir)
    out = str(base / "corpus")
    corpus.build(out, workdir, seed=7, n_noise=(3, 2))
    return out


def _sources(out):
    with open(os.path.join(out, "sources.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_corpus_speakers_disjoint_and_licensed(built):
    rows = _sources(built)
    files = {os.path.relpath(p, built).replace(os.sep, "/")
             for p in _walk(built, (".ogg",))}
    assert {r["file"] for r in rows} == files  # every file, listed once
    speakers = {}
    for r in rows:
        if r["file"].startswith("speech/"):
            speakers.setdefault(r["file"].split("/")[1], set()).add(
                r["speaker_or_domain"])
        assert r["license"] == corpus.PACKAGES[r["package"]]
        assert os.path.isfile(os.path.join(built, "licenses", r["package"]))
    assert speakers["train"] == {"fillets_cs_m", "fillets_cs_v",
                                 "fillets_cs_other", "asterisk_en",
                                 "asterisk_es", "asterisk_it"}
    assert speakers["test"] == {"fillets_en", "asterisk_fr", "asterisk_ru"}
    # G.722 prompts decoded; the empty one and the unit cries left out
    assert any(r["origin"].endswith("prompt.g722") for r in rows)
    assert not any("empty" in r["origin"] or "die" in r["origin"]
                   or "-hit" in r["origin"] for r in rows)
    english = [r for r in rows if r["speaker_or_domain"] == "fillets_en"]
    assert len(english) == 2  # the repeated line once


def test_corpus_noise_test_files_held_out(built):
    rows = _sources(built)
    for domain in ("music", "env"):
        used = {split: {o for r in rows
                        if r["file"].startswith(f"noise/{domain}/{split}/")
                        for o in r["origin"].split(";")}
                for split in ("train", "test")}
        assert used["train"] and used["test"]
        assert not used["train"] & used["test"]
    packages = {r["package"] for r in rows if "/music/" in r["file"]}
    assert packages <= {"wesnoth-1.16-music", "fillets-ng-data"}


def test_corpus_audio_and_demo_layout(built, tmp_path):
    for path in _walk(built, (".ogg",)):
        info = sf.info(path)
        assert (info.samplerate, info.channels) == (SR, 1)
        if "/speech/" in path:
            wav, _ = sf.read(path)
            assert 1.5 <= len(wav) / SR <= 4.0 + 1e-3
            rms_db = 10 * np.log10(np.mean(wav**2))
            # -25 dB before Vorbis, which is loose on this white noise
            assert abs(rms_db + 25.0) < 3.0
    # the demo's preparation reads it as it is
    from speechbrain_remix.prepare.demo import prepare_demo

    prepare_demo(built, str(tmp_path), n_train=2, n_valid=1, n_test=3)
    with open(tmp_path / "B_test.csv") as f:
        test = list(csv.DictReader(f))
    assert len(test) == 3


def test_interrupted_build_leaves_no_corpus(tmp_path, monkeypatch):
    workdir = str(tmp_path / "debs")
    _fake_packages(workdir)

    def boom(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus, "write_sources", boom)
    with pytest.raises(KeyboardInterrupt):
        corpus.build(str(tmp_path / "c"), workdir, n_noise=(3, 2))
    assert not os.path.exists(tmp_path / "c")  # only c.part, never "c"
    assert not os.path.isfile(tmp_path / "c.part" / "sources.csv")


def _walk(root, exts):
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(exts):
                yield os.path.join(folder, name)


@pytest.mark.parametrize("diffs, expected", [
    ([0.3, 0.5], "held"),            # mean 0.4 > noise max(0.1, 0.2)
    ([0.15, 0.45], "within noise"),  # mean 0.3 = noise 2 * 0.15: not above
    ([0.05, 0.08], "within noise"),  # consistent but below 0.1 dB
    ([-0.3, -0.5], "did not hold"),
    ([0.9, -0.1], "within noise"),   # seeds disagree
    ([0.6], "within noise"),         # one seed has no spread
])
def test_verdict_rule(diffs, expected):
    mean, noise, verdict = run.verdict(diffs)
    assert verdict == expected
    assert mean == pytest.approx(np.mean(diffs))


def test_replication_miniature(tmp_path, monkeypatch):
    """The whole command at the mini scale on the demo corpus: every job
    runs with its own settings, every claim gets a row, and running the
    command again changes nothing."""
    out = str(tmp_path / "rep")
    argv = ["--scale", "mini", "--seeds", "1", "--corpus",
            os.path.join(ROOT, "data", "demo"), "--speaker", "fillets_v",
            "--out", out]
    rows = run.main(argv)
    assert [r[0] for r in rows] == [c[0] for c in run.CLAIMS]
    with open(os.path.join(out, "results.csv")) as f:
        systems = {r["system"] for r in csv.DictReader(f)}
    for claim in run.CLAIMS:
        assert {claim[2], claim[3]} <= systems

    def hparams(job):
        with open(os.path.join(out, f"{job}_s1", "hyperparams.yaml")) as f:
            return f.read()

    assert "StaticTeacher" in hparams("remixit_static")
    assert "SequentialTeacher" in hparams("remixit_sequential")
    assert "EMATeacher" in hparams("remixit_ema")
    assert "p_n: 1.0" in hparams("remixit_pn1")
    assert "purify: true" in hparams("pse_dp").lower()
    assert "objective: remixit" in hparams("remixit_scratch")
    assert os.path.join(out, "mixit_s1", "save") in hparams(
        "remixit_from_mixit")
    assert "mom_from_batch: true" in hparams("mixit_scratch")
    assert "eval_output: closest" in hparams("mixit_scratch")
    # which output is the closest to the speech, file by file
    spec = importlib.util.spec_from_file_location(
        "speech_output", os.path.join(ROOT, "benchmarks", "replication",
                                      "speech_output.py"))
    speech_output = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speech_output)
    counts = speech_output.closest_outputs(os.path.join(out,
                                                        "mixit_scratch_s1"))
    assert sum(counts.values()) == 3 and set(counts) <= {0, 1, 2, 3}
    # --dnsmos with a stand-in score (loudness) whose choice is known:
    # it must count the files where the loudest output is the closest
    import torch

    from speechbrain_remix.apply import closest_index, separate
    from speechbrain_remix.data import make_dataset
    from speechbrain_remix.metrics import dnsmos
    from speechbrain_remix.runs import load_run

    monkeypatch.setattr(dnsmos, "dnsmos", lambda wav, rate: {
        "loud": float(wav.pow(2).sum()), "quiet": -float(wav.pow(2).sum())})
    folder = os.path.join(out, "mixit_scratch_s1")
    again, picks = speech_output.closest_outputs(folder, dnsmos=True)
    model, hp, _ = load_run(folder)
    expected = {"loud": 0, "quiet": 0}
    for item in make_dataset(hp["test_csv"], hp["data_folder"],
                             hp["sample_rate"], ("mix_wav", "clean_wav")):
        with torch.no_grad():
            est = separate(model, item["mix"][None])
        k = int(closest_index(est, item["clean"][None]))
        energy = est[0].pow(2).sum(-1)
        expected["loud"] += int(energy.argmax()) == k
        expected["quiet"] += int(energy.argmin()) == k
    assert again == counts and picks == expected
    assert os.path.isfile(os.path.join(out, "curves_s1.png"))
    with open(os.path.join(out, "verdicts_s1.md")) as f:
        assert len(f.read().strip().split("\n")) == 2 + len(run.CLAIMS)
    before = open(os.path.join(out, "results.csv")).read()
    run.main(argv)  # every run finished: nothing is trained again
    assert open(os.path.join(out, "results.csv")).read() == before
    assert run.reproduces(out, out, [1])


def test_demo_teacher_study_table(tmp_path):
    """teacher_study_demo.py's table: each update's per-seed difference
    from the YAML's EMA 0.2, paired by seed, on hand-made summaries."""
    study = _load_runner("teacher_study_demo")
    values = {("ema0.2", 1): (2.0, 1.30), ("ema0.2", 2): (3.0, 1.20),
              ("static", 1): (2.5, 1.20), ("static", 2): (2.75, 1.25)}
    for (name, seed), (sdri, pesq) in values.items():
        folder = tmp_path / f"{name}_s{seed}"
        folder.mkdir()
        (folder / "summary.csv").write_text(
            "ID,si_sdr,si_sdri,pesq,stoi\n"
            "teacher,1.0,1.0,1.1,0.5\n"
            f"student,{sdri},{sdri},{pesq},0.6\n")
    args = argparse.Namespace(out=str(tmp_path), seeds=[1, 2],
                              updates=["ema0.2", "ema0.05", "static"])
    lines = study.table(args).split("\n")
    assert "| static | 2 | +0.50, -0.25 | -0.10, +0.05 | +0.000 |" in lines
    assert not any(line.startswith("| ema0.05") for line in lines)
    cmd = study.command("static", 1, argparse.Namespace(teacher="t",
                                                         out="o"))
    assert "--teacher_update=!new:speechbrain_remix.teacher." \
        "StaticTeacher" in cmd and "--teacher_source=t" in cmd
    assert not any("teacher_update" in a for a in study.command(
        "ema0.2", 1, argparse.Namespace(teacher="t", out="o")))


def test_dnsmos_is_added_to_finished_runs_only_when_asked(tmp_path):
    """``--dnsmos`` re-evaluates a finished run whose summary lacks DNSMOS,
    never one that has it, one without a summary, or a job without DNSMOS
    (the latent SSE)."""
    jobs = {j.name: j for j in run.JOBS}
    for name, header in (("remixit_ema", "ID,si_sdri"),
                         ("remixit_static", "ID,si_sdri,dnsmos_ovrl"),
                         ("cae", "ID,si_sdri")):
        folder = tmp_path / f"{name}_s1"
        folder.mkdir()
        value = ",2.1" if "dnsmos" in header else ""
        (folder / "summary.csv").write_text(
            f"{header}\nstudent,1.0{value}\n")
    on = argparse.Namespace(out=str(tmp_path), dnsmos=True)
    off = argparse.Namespace(out=str(tmp_path), dnsmos=False)
    assert run.lacks_dnsmos(on, jobs["remixit_ema"], 1)
    assert not run.lacks_dnsmos(off, jobs["remixit_ema"], 1)
    assert not run.lacks_dnsmos(on, jobs["remixit_static"], 1)
    assert not run.lacks_dnsmos(on, jobs["cae"], 1)
    assert not run.lacks_dnsmos(on, jobs["remixit_ema"], 2)  # not run yet
