"""Trained models in users' hands: run and exported folders load the same
model from any working directory, export round trip, long recordings in
windows, any rate and channel count, and the ``enhance`` command."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from conftest import ROOT, TINY_MODEL, argv

import train
from speechbrain_remix.brains.latent import LatentEnhancer
from speechbrain_remix.cli import main as cli
from speechbrain_remix.inference import RemixEnhancer
from speechbrain_remix.models import (
    ConformerMasker,
    GRUMasker,
    SpectralVAE,
    SudoRmRf,
)
from speechbrain_remix.overlap_add import OverlapAdd, window_starts


def csv_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run_dir(demo_data, tmp_path_factory):
    """A tiny supervised run started from its own directory with a relative
    output_folder, as a user runs it."""
    home = tmp_path_factory.mktemp("home")
    here = os.getcwd()
    os.chdir(home)
    try:
        train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                        output_folder="results/sup", save_enhanced=3))
    finally:
        os.chdir(here)
    return str(home / "results" / "sup")


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("export") / "model")
    assert cli(["export", run_dir, out]) == 0
    return out


def weights(enhancer):
    return {k: v.clone() for k, v in enhancer.mods.model.state_dict().items()}


def test_run_and_export_load_the_same_model_from_any_directory(
        run_dir, exported, tmp_path, monkeypatch):
    # a decoy: another run at the same relative path under another folder,
    # with other weights; the current directory must not pick it
    decoy = tmp_path / "results" / "sup"
    shutil.copytree(run_dir, decoy)
    for ckpt in (decoy / "save").glob("CKPT+*/model.ckpt"):
        state = torch.load(ckpt)
        torch.save({k: torch.randn_like(v) if v.is_floating_point() else v
                    for k, v in state.items()}, ckpt)
    monkeypatch.chdir(tmp_path)
    from_run = weights(RemixEnhancer.from_run(run_dir))
    from_decoy = weights(RemixEnhancer.from_run("results/sup"))
    assert any(not torch.equal(from_run[k], from_decoy[k]) for k in from_run)
    monkeypatch.chdir(os.path.dirname(exported))
    relative = weights(RemixEnhancer.from_hparams(
        os.path.basename(exported)))
    monkeypatch.chdir(ROOT)
    absolute = weights(RemixEnhancer.from_hparams(exported))
    for k in from_run:
        assert torch.equal(from_run[k], relative[k])
        assert torch.equal(from_run[k], absolute[k])
    # the exported folder is self-contained: the run can go
    assert sorted(os.listdir(exported)) == ["README.md", "hyperparams.yaml",
                                            "model.ckpt"]


def test_export_round_trip_equals_the_brains_evaluation(run_dir, exported,
                                                        demo_data):
    enhancer = RemixEnhancer.from_hparams(exported)
    rows = csv_rows(os.path.join(demo_data, "B_test.csv"))
    written = os.path.join(run_dir, "enhanced", "model")
    assert len(os.listdir(written)) == 3
    for row in rows:
        mix = row["mix_wav"].replace("$data_root", demo_data)
        ours = enhancer.enhance_file(mix)
        theirs, rate = sf.read(os.path.join(written, row["ID"] + ".wav"))
        peak = max(1.0, float(ours.abs().max()))  # as evaluation writes
        assert rate == 16000 and ours.shape == theirs.shape
        # 16-bit files: equal within the quantization step
        np.testing.assert_allclose(ours.numpy() / peak, theirs,
                                   atol=1.5 / 32768)


def test_model_card_and_yaml(run_dir, exported):
    card = open(os.path.join(exported, "README.md")).read()
    assert "SupervisedBrain" in card or "Supervised" in card
    assert "supervised_demo.yaml" in card  # the command line (run.json)
    summary = csv_rows(os.path.join(run_dir, "summary.csv"))
    assert summary[-1]["si_sdr"] in card  # the test results
    yaml = open(os.path.join(exported, "hyperparams.yaml")).read()
    assert "!new:speechbrain_remix.models.sudormrf.SudoRmRf" in yaml
    assert "num_blocks: 1" in yaml


def test_export_with_onnx_matches_the_interface(run_dir, tmp_path):
    import onnxruntime

    out = str(tmp_path / "onnx")
    assert cli(["export", run_dir, out, "--onnx"]) == 0
    session = onnxruntime.InferenceSession(os.path.join(out, "model.onnx"))
    mix = torch.randn(1, 12000, generator=torch.Generator().manual_seed(1))
    (got,) = session.run(None, {session.get_inputs()[0].name: mix.numpy()})
    expected = RemixEnhancer.from_hparams(out).enhance_batch(mix)
    peak = float(expected.abs().max())
    assert np.abs(got - expected.numpy()).max() < 1e-4 * peak


def test_export_refuses_a_non_empty_folder(run_dir, tmp_path):
    (tmp_path / "x").write_text("mine")
    with pytest.raises(SystemExit, match="not empty"):
        cli(["export", run_dir, str(tmp_path)])
    assert (tmp_path / "x").read_text() == "mine"


def test_a_missing_model_folder_is_never_a_hub_id(tmp_path, monkeypatch):
    import huggingface_hub

    def no_hub(*args, **kwargs):
        raise AssertionError("tried the hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_hub)
    with pytest.raises(FileNotFoundError, match="local folders only"):
        RemixEnhancer.from_hparams("speechbrain/sepformer-wham")
    with pytest.raises(FileNotFoundError, match="no hyperparams.yaml"):
        RemixEnhancer.from_hparams(str(tmp_path))


# ----------------------------------------------------------------------
# windows
def test_window_starts_cover_the_signal():
    for total in range(1, 60):
        starts = window_starts(total, 10, 3)
        assert starts[0] == 0 and starts[-1] + 10 >= total
        assert all(b - a == 7 for a, b in zip(starts, starts[1:]))
        if len(starts) > 1:  # the last window is longer than the overlap
            assert total - starts[-1] > 3


def test_overlap_add_of_identical_windows_is_the_signal():
    signal = torch.randn(2, 1000)
    ola = OverlapAdd(100)
    starts = window_starts(1000, 300, 100)
    out = torch.cat([ola.push(signal[:, s:s + 300], last=s == starts[-1])
                     for s in starts], -1)
    assert torch.allclose(out, signal, atol=1e-6)


def test_overlap_add_crossfades_between_windows():
    ola = OverlapAdd(4)
    first = ola.push(torch.zeros(8))
    second = ola.push(torch.ones(8), last=True)
    joined = torch.cat([first, second])
    assert joined.shape == (12,)
    head = joined[4:8]  # the crossfade: monotone from 0 to 1
    assert (head.diff() > 0).all() and 0 < head[0] < 0.5 < head[-1] < 1


def tiny_enhancer(rate=16000):
    torch.manual_seed(0)
    return RemixEnhancer(modules={"model": SudoRmRf(**TINY_MODEL)},
                         hparams={"sample_rate": rate},
                         run_opts={"device": "cpu"})


@pytest.fixture(scope="module")
def speech(demo_data):
    """About 12 s of the demo's noisy mixtures, one after the other."""
    rows = csv_rows(os.path.join(demo_data, "B_test.csv"))
    wavs = [sf.read(r["mix_wav"].replace("$data_root", demo_data),
                    dtype="float32")[0] for r in rows]
    return np.concatenate(wavs)


def test_windowed_enhancement_matches_whole_file(speech, tmp_path):
    """Windows of 2 s with 0.5 s crossfades against the whole recording:
    the joins are seamless to 25 dB (a tiny random model; the difference
    comes from each window's own normalization and receptive field)."""
    path = str(tmp_path / "long.wav")
    sf.write(path, speech, 16000, subtype="FLOAT")
    enhancer = tiny_enhancer()
    whole = enhancer.enhance_batch(torch.from_numpy(speech)[None])[0]
    windowed = enhancer.enhance_file(path, window_seconds=2.0,
                                     overlap_seconds=0.5)
    assert windowed.shape == whole.shape
    err = (windowed - whole).pow(2).sum() / whole.pow(2).sum()
    assert 10 * torch.log10(1 / err) > 25
    # a recording shorter than the window is enhanced whole: identical
    same = enhancer.enhance_file(path, window_seconds=60.0)
    assert torch.allclose(same, whole, atol=1e-6)


def test_windows_never_exceed_the_window(speech, tmp_path):
    path = str(tmp_path / "long.wav")
    sf.write(path, np.tile(speech, 3), 16000, subtype="FLOAT")
    enhancer = tiny_enhancer()
    seen = []
    model = enhancer.mods.model
    hook = model.register_forward_pre_hook(
        lambda m, inp: seen.append(inp[0].shape[-1]))
    enhancer.enhance_file(path, str(tmp_path / "out.wav"),
                          window_seconds=3.0, overlap_seconds=0.5)
    hook.remove()
    assert len(seen) > 10 and max(seen) <= 3 * 16000
    assert sf.info(str(tmp_path / "out.wav")).frames == 3 * len(speech)


MEMORY_PROBE = textwrap.dedent("""
    import resource, sys, numpy as np, soundfile as sf, torch
    sys.path.insert(0, {tests!r})
    from conftest import TINY_MODEL
    from speechbrain_remix.inference import RemixEnhancer
    from speechbrain_remix.models import SudoRmRf
    torch.set_num_threads(1)
    enh = RemixEnhancer(modules={{"model": SudoRmRf(**TINY_MODEL)}},
                        hparams={{"sample_rate": 16000}},
                        run_opts={{"device": "cpu"}})
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    enh.enhance_file({short!r}, {short!r} + ".out.wav", window_seconds=5)
    before = peak()
    enh.enhance_file({long!r}, {long!r} + ".out.wav", window_seconds=5)
    print(peak() - before)
""")


def test_peak_memory_does_not_grow_with_the_recording(tmp_path):
    """Enhancing 10 minutes after 10 seconds (same window) raises the
    process's peak memory by under 20 MB; the recording alone is 38 MB as
    float32, and whole-file enhancement of it takes gigabytes."""
    rng = np.random.default_rng(0)
    short, long = str(tmp_path / "short.wav"), str(tmp_path / "long.wav")
    sf.write(short, 0.1 * rng.standard_normal(160000), 16000)
    with sf.SoundFile(long, "w", 16000, 1) as f:  # 10 min, written in parts
        for _ in range(60):
            f.write(0.1 * rng.standard_normal(160000))
    probe = MEMORY_PROBE.format(tests=os.path.join(ROOT, "tests"),
                                short=short, long=long)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                         text=True, check=True)
    growth = float(out.stdout.strip().splitlines()[-1])
    assert growth < 20, f"peak memory grew by {growth:.1f} MB"
    assert sf.info(long + ".out.wav").frames == 60 * 160000


# ----------------------------------------------------------------------
# rates and channels
def test_any_rate_is_resampled_in_and_back_out(speech, tmp_path):
    enhancer = tiny_enhancer()
    x = torch.from_numpy(speech[:32000])
    for rate in (8000, 44100):
        resampled = torchaudio.functional.resample(x, 16000, rate)
        path = str(tmp_path / f"in{rate}.flac")
        sf.write(path, resampled.numpy(), rate, subtype="PCM_24")
        out = enhancer.enhance_file(path, str(tmp_path / f"out{rate}.flac"))
        info = sf.info(out)
        assert info.samplerate == rate and info.frames == len(resampled)
        assert info.subtype == "PCM_24"  # the input's sample format
        got = torch.from_numpy(sf.read(out, dtype="float32")[0])
        read = torch.from_numpy(sf.read(path, dtype="float32")[0])
        expected = torchaudio.functional.resample(enhancer.enhance_batch(
            torchaudio.functional.resample(read, rate, 16000)[None])[0],
            16000, rate)[:len(resampled)]
        assert torch.allclose(got, expected, atol=1e-4)
        kept = enhancer.enhance_file(path, keep_model_rate=True)
        assert abs(len(kept) - 32000) <= 1


def test_stereo_policies(speech, tmp_path):
    enhancer = tiny_enhancer()
    left, right = speech[:16000], 0.3 * speech[16000:32000]
    path = str(tmp_path / "stereo.wav")
    sf.write(path, np.stack([left, right], 1), 16000, subtype="FLOAT")
    down = enhancer.enhance_file(path)
    mono = enhancer.enhance_batch(torch.from_numpy((left + right) / 2)[None])
    assert down.dim() == 1 and torch.allclose(down, mono[0], atol=1e-5)
    each = enhancer.enhance_file(path, channels="each")
    alone = enhancer.enhance_batch(torch.from_numpy(right)[None])[0]
    assert each.shape == (2, 16000) and torch.allclose(each[1], alone,
                                                       atol=1e-5)
    out = enhancer.enhance_file(path, str(tmp_path / "o.wav"),
                                channels="each")
    assert sf.info(out).channels == 2


def test_noise_estimate_completes_the_mixture(speech, tmp_path):
    enhancer = tiny_enhancer()
    path = str(tmp_path / "n.wav")
    sf.write(path, speech[:48000], 16000, subtype="FLOAT")
    enhancer.enhance_file(path, str(tmp_path / "s.wav"),
                          noise_path=str(tmp_path / "z.wav"),
                          window_seconds=1.0, overlap_seconds=0.25)
    s = sf.read(str(tmp_path / "s.wav"))[0]
    z = sf.read(str(tmp_path / "z.wav"))[0]
    np.testing.assert_allclose(s + z, speech[:48000], atol=2e-4)


# ----------------------------------------------------------------------
# the enhance command
def test_enhance_command_skips_and_reports_bad_inputs(exported, speech,
                                                      tmp_path, capsys):
    noisy = tmp_path / "noisy"
    (noisy / "sub").mkdir(parents=True)
    sf.write(noisy / "a.WAV", speech[:16000], 16000)
    sf.write(noisy / "sub" / "b.ogg", speech[:8000], 8000)
    (noisy / "broken.wav").write_text("not audio")
    sf.write(noisy / "empty.flac", np.zeros(0), 16000)
    (noisy / "notes.txt").write_text("ignored: not audio")
    out = tmp_path / "out"
    status = cli(["enhance", exported, str(noisy), str(tmp_path / "gone.wav"),
                  "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 1
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file()) == ["a.WAV", "sub/b.ogg"]
    assert sf.info(str(out / "sub" / "b.ogg")).samplerate == 8000
    for name in ("broken.wav", "empty.flac", "gone.wav"):
        assert name in printed
    assert "skipped 3 input(s)" in printed and "enhanced 2 file(s)" in printed


def test_enhance_command_never_writes_over_an_input(exported, speech,
                                                    tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, speech[:16000], 16000)
    before = path.read_bytes()
    with pytest.raises(SystemExit, match="overwrite an input"):
        cli(["enhance", exported, str(path), "--out", str(tmp_path)])
    assert path.read_bytes() == before


def test_enhance_command_reads_a_run_folder(run_dir, speech, tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, speech[:16000], 16000)
    assert cli(["enhance", run_dir, str(path), "--out",
                str(tmp_path / "o")]) == 0
    assert sf.info(str(tmp_path / "o" / "a.wav")).frames == 16000


def test_a_model_from_scratch_warns_that_its_outputs_are_unordered(
        run_dir, exported, demo_data, speech, tmp_path, monkeypatch):
    """A Self-Remixing model (outputs in no fixed order) warns on loading,
    from its run or its export, and says so in its card; the fix the
    warning names (--noise) writes its other output.  A supervised model
    (speech at output 0) does not warn."""
    from speechbrain_remix import inference
    from speechbrain_remix.apply import separate
    from speechbrain_remix.inference import UNORDERED_WARNING

    scratch = str(tmp_path / "scratch")
    train.main(argv("self_remixing_demo.yaml", data_folder=demo_data,
                    output_folder=scratch))
    out = str(tmp_path / "export")
    warned = []  # speechbrain's log setup stops propagation to caplog
    monkeypatch.setattr(inference.logger, "warning",
                        lambda msg, *a: warned.append(msg % a))
    RemixEnhancer.from_run(run_dir)
    RemixEnhancer.from_hparams(exported)
    assert UNORDERED_WARNING not in warned
    enhancer = RemixEnhancer.from_run(scratch)
    assert warned.count(UNORDERED_WARNING) == 1
    assert cli(["export", scratch, out]) == 0
    warned.clear()
    RemixEnhancer.from_hparams(out)
    assert warned == [UNORDERED_WARNING]
    assert "unordered_outputs: true" in open(
        os.path.join(out, "hyperparams.yaml")).read()
    assert "no fixed order" in open(os.path.join(out, "README.md")).read()
    assert "no fixed order" not in open(
        os.path.join(exported, "README.md")).read()
    # --noise writes output 1 of this 2-output model
    path = tmp_path / "a.wav"
    sf.write(path, speech[:16000], 16000, subtype="FLOAT")
    assert cli(["enhance", scratch, str(path), "--out", str(tmp_path / "o"),
                "--noise"]) == 0
    noise = sf.read(str(tmp_path / "o" / "a_noise.wav"), dtype="float32")[0]
    with torch.no_grad():
        outputs = separate(enhancer.mods.model,
                           torch.from_numpy(speech[:16000]).float()[None])
    assert outputs.shape[1] == 2
    np.testing.assert_allclose(noise, outputs[0, 1].numpy(), atol=2e-3)


def test_console_script_is_installed():
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts",
                             name="speechbrain-remix")
    assert script.value == "speechbrain_remix.cli:entry_point"


def latent_enhancer():
    return LatentEnhancer(SpectralVAE((513, 8, 4)), SpectralVAE((513, 8, 4)),
                          magnitude_power=0.3)


@pytest.mark.parametrize("build", [
    lambda: SudoRmRf(**TINY_MODEL).with_depth(2),  # a grown student
    lambda: ConformerMasker(num_sources=2, num_layers=1, d_model=16,
                            nhead=2, d_ffn=16, kernel_size=3),
    lambda: GRUMasker(hidden=8),
    latent_enhancer,
], ids=["sudormrf", "conformer", "gru", "latent"])
def test_every_model_exports_to_a_folder_that_rebuilds_it(build, tmp_path):
    """The exported YAML rebuilds the same architecture, the weights load
    into it, and the folder enhances exactly as the original."""
    from speechbrain_remix.export import inference_yaml

    torch.manual_seed(0)
    model = build().eval()
    (tmp_path / "hyperparams.yaml").write_text(inference_yaml(model, 16000))
    torch.save(model.state_dict(), tmp_path / "model.ckpt")
    loaded = RemixEnhancer.from_hparams(str(tmp_path))
    assert type(loaded.mods.model) is type(model)
    mix = torch.randn(2, 8000, generator=torch.Generator().manual_seed(2))
    original = RemixEnhancer(modules={"model": model},
                             hparams={"sample_rate": 16000},
                             run_opts={"device": "cpu"})
    assert torch.equal(loaded.enhance_batch(mix), original.enhance_batch(mix))
