"""Personalized speech enhancement (Sivaraman et al., 2021) and
confidence-weighted RemixIT inside their Brains: what is the target, what
noise is added at which SNR, which weights scale the loss, what a run
starts from, writes and resumes to; then every configuration end to end
on the demo corpus with tiny models."""

import csv
import os

import pytest
import speechbrain as sb
import torch
from conftest import ROOT, TINY, argv
from hyperpyyaml import load_hyperpyyaml
from test_remixit_brain import Recorder

import train
from speechbrain_remix.apply import normalize
from speechbrain_remix.data import DataError, make_dataset
from speechbrain_remix.losses import confidence_weighted_loss
from speechbrain_remix.models import GRUMasker, SNRPredictor
from speechbrain_remix.segsnr import seg_mse

# tiny GRUs and runs (keys of the personal and predictor YAMLs)
PREDICTOR = {"predictor_hidden": 8, "predictor_layers": 1}
SMALL = {"hidden": 8, **PREDICTOR}
N_TEST = 3  # test utterances of the speaker (evaluation dominates a run)
PERSONAL = {"skip_prep": True, "batch_size": 4, "number_of_epochs": 1,
            "save_enhanced": 1, "demo_folder": TINY["demo_folder"], **SMALL}


@pytest.fixture(scope="session")
def personal_data(tmp_path_factory):
    from speechbrain_remix.prepare.personal import prepare_personal_demo

    folder = str(tmp_path_factory.mktemp("personal_data"))
    prepare_personal_demo(TINY["demo_folder"], folder, seed=1234,
                          n_test_utterances=N_TEST)
    return folder


@pytest.fixture(scope="session")
def predictor_file(tmp_path_factory):
    """A randomly initialised tiny SNR predictor."""
    path = str(tmp_path_factory.mktemp("predictor") / "predictor.ckpt")
    torch.manual_seed(1)
    torch.save(SNRPredictor(hidden=8, num_layers=1).state_dict(), path)
    return path


def build(name, data_folder, tmp_path, **overrides):
    keys = {k: v for k, v in PERSONAL.items() if k != "demo_folder"}
    if name.startswith("remixit"):  # a Sudo rm -rf student and teacher
        keys = {**TINY, **PREDICTOR}
    with open(os.path.join(ROOT, "hparams", name)) as f:
        hparams = load_hyperpyyaml(f, {
            **keys, "data_folder": data_folder,
            "output_folder": str(tmp_path), **overrides})
    brain_class = hparams["brain_class"]
    brain = brain_class(
        modules=hparams["modules"], opt_class=hparams["opt_class"],
        hparams=hparams, run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=hparams["checkpointer"])
    data = make_dataset(hparams["train_csv"], data_folder, 16000,
                        brain_class.train_columns(hparams))
    loader = sb.dataio.dataloader.make_dataloader(data, batch_size=4)
    brain.on_fit_start()
    return brain, next(iter(loader))


def snr_db(signal, noise):
    return 10 * torch.log10(signal.pow(2).sum(-1) / noise.pow(2).sum(-1))


def test_pse_target_is_the_premixture_plus_noise_at_the_drawn_snr(
        personal_data, tmp_path):
    """Eqs. 4-6: the pseudo-source s~ (the speaker's noisy recording) is the
    target; the input is s~ + n, n scaled (never s~) to an SNR drawn from
    U[-5, 5] dB."""
    brain, batch = build("personal_pse_demo.yaml", personal_data, tmp_path)
    brain.modules["model"] = Recorder(brain.modules["model"])
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    state = brain.rng.generator.get_state()
    estimate, source, weights = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert weights is None  # PSE: the plain MSE of Eq. 3

    brain.rng.generator.set_state(state)  # the same draws, by hand
    premix, clean = brain.crop(batch, ["mix", "clean"], sb.Stage.TRAIN)
    noisy, snr = brain.noise_pool.add_to(premix, [-5.0, 5.0],
                                         brain.rng.generator)
    torch.testing.assert_close(source, premix)  # the premixture, exactly
    assert not torch.allclose(source, clean, atol=1e-3)  # never the clean
    x, _ = normalize(noisy)
    torch.testing.assert_close(brain.modules["model"].input, x)
    assert ((snr >= -5) & (snr <= 5)).all() and snr.std() > 0
    torch.testing.assert_close(snr_db(premix, noisy - premix), snr,
                               atol=1e-3, rtol=0)
    loss = brain.compute_objectives((estimate, source, None), batch,
                                    sb.Stage.TRAIN)
    assert loss.item() == pytest.approx(
        (estimate - premix).pow(2).mean().item(), rel=1e-6)


def test_se_target_is_clean_speech(personal_data, tmp_path):
    brain, batch = build("personal_se_demo.yaml", personal_data, tmp_path)
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    state = brain.rng.generator.get_state()
    _, source, _ = brain.compute_forward(batch, sb.Stage.TRAIN)
    brain.rng.generator.set_state(state)
    (clean,) = brain.crop(batch, ["clean"], sb.Stage.TRAIN)
    torch.testing.assert_close(source, clean)


def test_purification_weights_the_segmental_mse_by_the_predictor(
        personal_data, tmp_path, predictor_file):
    """PSE+DP: p = sigmoid(h(s~)) of the frozen predictor (Eq. 11) weights
    the SegMSE (Eq. 12); the predictor gets no gradient, is not trained
    and is saved with the run."""
    brain, batch = build("personal_pse_demo.yaml", personal_data, tmp_path,
                         purify=True, snr_predictor_source=predictor_file)
    h = SNRPredictor(hidden=8, num_layers=1)
    h.load_state_dict(torch.load(predictor_file))
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    brain.nonfinite_count = 0
    estimate, source, weights = brain.compute_forward(batch, sb.Stage.TRAIN)
    with torch.no_grad():
        torch.testing.assert_close(weights, torch.sigmoid(h(source)))
    assert weights.shape == (4, 63) and not weights.requires_grad
    loss = brain.compute_objectives((estimate, source, weights), batch,
                                    sb.Stage.TRAIN)
    torch.testing.assert_close(loss, seg_mse(estimate, source,
                                             weights).mean())
    before = {k: v.clone() for k, v in h.state_dict().items()}
    model_before = {k: v.clone() for k, v in
                    brain.modules.model.state_dict().items()}
    brain.fit_batch(batch)
    assert any(not torch.equal(v, model_before[k])
               for k, v in brain.modules.model.state_dict().items())
    for k, v in brain.snr_predictor.state_dict().items():
        assert torch.equal(v, before[k]), k
    # the run's checkpoints record which predictor weights it loaded
    record = brain.checkpointer.recoverables["snr_predictor"]
    assert record.path == predictor_file and len(record.sha256) == 64


def test_se_to_pse_starts_from_the_se_model(personal_data, tmp_path):
    se = GRUMasker(hidden=8)
    path = str(tmp_path / "se.ckpt")
    torch.save(se.state_dict(), path)
    brain, _ = build("personal_pse_demo.yaml", personal_data,
                     tmp_path / "run", init_source=path)
    for k, v in brain.modules.model.state_dict().items():
        assert torch.equal(v, se.state_dict()[k]), k


def test_weighted_remixit_loss_in_the_brain(demo_data, tmp_path, teacher_file,
                                            predictor_file):
    """Confidence-weighted RemixIT: the predictor's weights of the teacher's
    speech estimate s~ weight the speech term of Eq. 6."""
    brain, batch = build("remixit_weighted_demo.yaml", demo_data, tmp_path,
                         teacher_source=teacher_file,
                         snr_predictor_source=predictor_file,
                         student_init="scratch")
    h = SNRPredictor(hidden=8, num_layers=1)
    h.load_state_dict(torch.load(predictor_file))
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    estimates, targets, weights = brain.compute_forward(batch,
                                                        sb.Stage.TRAIN)
    with torch.no_grad():  # the weights of the speech pseudo-target's frames
        torch.testing.assert_close(weights, torch.sigmoid(h(targets[:, 0])))
    loss = brain.compute_objectives((estimates, targets, weights), batch,
                                    sb.Stage.TRAIN)
    expected = confidence_weighted_loss(estimates, targets, weights,
                                        (0.5, 0.5), 30.0).mean()
    torch.testing.assert_close(loss, expected)
    plain = brain.compute_objectives((estimates, targets, None), batch,
                                     sb.Stage.TRAIN)
    assert abs(plain.item() - loss.item()) > 1e-4


# ----------------------------------------------------------------------
# end to end: train.py runs of every configuration


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run(name, data_folder, out, **overrides):
    base = dict(PERSONAL)
    if name.startswith("snr_predictor"):
        base.pop("hidden")  # a GRU masker's size
    return train.main(argv(name, base=base, data_folder=data_folder,
                           output_folder=str(out), **overrides))


@pytest.fixture(scope="module")
def trained(personal_data, tmp_path_factory):
    """The SNR predictor and the SE generalist, trained for one epoch."""
    root = tmp_path_factory.mktemp("personal_runs")
    predictor = run("snr_predictor_demo.yaml", personal_data,
                    root / "predictor")
    run("personal_se_demo.yaml", personal_data, root / "se")
    return root, predictor


def test_snr_predictor_run_reports_frame_errors(trained):
    root, summary = trained
    assert list(summary) == ["predictor"]
    rows = read_csv(root / "predictor" / "test_results.csv")
    assert list(rows[0]) == ["ID", "frame_mae_db", "frame_rmse_db",
                             "frame_corr", "weight_mae"]
    assert len(rows) == N_TEST + 1  # the speaker's test mixtures, avg
    for r in rows:  # errors in dB within the target's range
        assert 0 < float(r["frame_mae_db"]) <= float(r["frame_rmse_db"]) < 80
        assert 0 <= float(r["weight_mae"]) <= 1
    assert not os.path.exists(root / "predictor" / "enhanced")
    assert os.path.getsize(root / "predictor" / "snr_tracks.png") > 1000
    from speechbrain_remix.inference import Enhancer

    with pytest.raises(ValueError, match="not an enhancement model"):
        Enhancer.from_run(str(root / "predictor"))


# PSE+DP from scratch: test_pse_dp_resumes_exactly
@pytest.mark.parametrize("purify, from_se", [(False, False), (False, True),
                                             (True, True)])
def test_every_configuration_trains_and_reports_per_speaker(
        trained, personal_data, tmp_path, purify, from_se):
    root, _ = trained
    extra = {"purify": purify,
             "snr_predictor_source": root / "predictor" / "save"}
    if from_se:
        extra["init_source"] = root / "se" / "save"
    summary = run("personal_pse_demo.yaml", personal_data, tmp_path, **extra)
    assert list(summary) == ["mixture", "model"]
    rows = read_csv(tmp_path / "speaker_results.csv")
    assert [(r["system"], r["speaker"], r["n"]) for r in rows] == [
        ("mixture", "fillets_v", str(N_TEST)),
        ("model", "fillets_v", str(N_TEST))]
    assert float(rows[1]["si_sdri"]) == pytest.approx(
        summary["model"]["si_sdri"], abs=1e-3)
    assert os.listdir(tmp_path / "enhanced" / "model")
    from speechbrain_remix.inference import Enhancer

    mix = torch.randn(1, 16000)
    enhanced = Enhancer.from_run(str(tmp_path)).enhance_batch(mix)
    assert enhanced.shape == mix.shape and torch.isfinite(enhanced).all()


def test_pse_dp_resumes_exactly(trained, personal_data, tmp_path):
    """Killed after epoch 1 of 2 and resumed: the same final weights and
    test results as an uninterrupted run (noise, offsets and SNRs come
    from the checkpointed generator)."""
    root, _ = trained
    extra = {"purify": True, "number_of_epochs": 2,
             "snr_predictor_source": root / "predictor" / "save"}
    straight = run("personal_pse_demo.yaml", personal_data,
                   tmp_path / "straight", **extra)
    run("personal_pse_demo.yaml", personal_data, tmp_path / "resumed",
        **{**extra, "number_of_epochs": 1})
    # resuming with other predictor weights is refused
    other = SNRPredictor(hidden=8, num_layers=1)
    torch.save(other.state_dict(), tmp_path / "other.ckpt")
    with pytest.raises(DataError, match="not the SNR predictor"):
        run("personal_pse_demo.yaml", personal_data, tmp_path / "resumed",
            **{**extra, "snr_predictor_source": tmp_path / "other.ckpt"})
    resumed = run("personal_pse_demo.yaml", personal_data,
                  tmp_path / "resumed", **extra)
    assert resumed == straight
    # the second call trained epoch 2 only: it did resume
    log = (tmp_path / "resumed" / "train_log.txt").read_text()
    assert [line.split(",")[0] for line in log.splitlines()] == [
        "epoch: 1", "epoch: 2"]
    rows = read_csv(tmp_path / "straight" / "speaker_results.csv")
    assert [r["speaker"] for r in rows] == ["fillets_v", "fillets_v"]

    def final(folder):
        ckpts = sorted((folder / "save").glob("CKPT*"))
        return torch.load(ckpts[-1] / "model.ckpt")

    a, b = final(tmp_path / "straight"), final(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_weighted_remixit_demo_runs(demo_data, tmp_path, teacher_file,
                                    trained):
    root, _ = trained
    summary = train.main(argv(
        "remixit_weighted_demo.yaml", base={**TINY, **PREDICTOR},
        data_folder=demo_data, output_folder=str(tmp_path),
        teacher_source=teacher_file,
        snr_predictor_source=root / "predictor" / "save"))
    assert list(summary) == ["mixture", "teacher", "student"]
    ckpt = next((tmp_path / "save").glob("CKPT*"))
    assert (ckpt / "snr_predictor.ckpt").is_file()


def test_your_own_speaker_from_a_folder_of_noisy_recordings(tmp_path):
    """hparams/personal_pse_folders.yaml: noisy recordings and a noise
    folder are all PSE needs (no test set: trained, not evaluated); clean
    references, when given, add the evaluation."""
    import glob

    import numpy as np
    import soundfile as sf

    demo = TINY["demo_folder"]
    speech = sorted(glob.glob(f"{demo}/speech/test/fillets_v_*.ogg"))[:10]
    env = sorted(glob.glob(f"{demo}/noise/env/train/*.ogg"))
    for sub in ("noisy", "test/noisy", "test/clean", "noise"):
        os.makedirs(tmp_path / sub)
    for k, path in enumerate(speech):
        s, _ = sf.read(path)
        m, _ = sf.read(env[k])
        premix = s + 0.3 * m[: len(s)] * np.std(s) / np.std(m)
        if k < 8:
            sf.write(tmp_path / "noisy" / f"rec{k}.wav", premix, 16000)
        else:
            sf.write(tmp_path / "test" / "noisy" / f"t{k}.wav", premix, 16000)
            sf.write(tmp_path / "test" / "clean" / f"t{k}.wav", s, 16000)
    for k, path in enumerate(sorted(glob.glob(
            f"{demo}/noise/music/train/*.ogg"))[:3]):
        wav, _ = sf.read(path)
        sf.write(tmp_path / "noise" / f"n{k}.wav", wav, 16000)
    base = {k: v for k, v in PERSONAL.items()
            if k not in ("demo_folder", "skip_prep")}
    common = dict(base=base, noisy_folder=tmp_path / "noisy",
                  noise_folder=tmp_path / "noise")
    out = tmp_path / "run"
    assert train.main(argv("personal_pse_folders.yaml",
                           data_folder=tmp_path / "data", output_folder=out,
                           **common)) is None
    assert list((out / "save").glob("CKPT*/model.ckpt"))
    summary = train.main(argv(
        "personal_pse_folders.yaml", data_folder=tmp_path / "data2",
        output_folder=tmp_path / "run2", test_folder=tmp_path / "test",
        test_csv=tmp_path / "data2" / "test.csv", **common))
    assert list(summary) == ["mixture", "model"]

    with pytest.raises(DataError, match="noise_folder"):
        train.main(argv("personal_pse_folders.yaml", base=base,
                        noisy_folder=tmp_path / "noisy",
                        data_folder=tmp_path / "data3",
                        output_folder=tmp_path / "run3"))
