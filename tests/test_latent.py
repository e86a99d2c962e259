"""Latent-space self-supervised enhancement (Wang et al., 2020): the
autoencoders, the losses of both stages against hand computations, the
frozen CAE of stage 2, and tiny end-to-end runs of both stages with resume
and inference."""

import os

import pytest
import speechbrain as sb
import torch
from conftest import TINY, argv

import train
from speechbrain_remix.models.latent_ae import (
    CAE_DIMS,
    MAE_DIMS,
    SpectralVAE,
    eq_norm,
    kl_term,
)

TINY_AE = {**{k: TINY[k] for k in ("batch_size", "crop_seconds",
                                   "number_of_epochs", "save_enhanced",
                                   "demo_folder", "n_train", "n_valid",
                                   "n_test")},
           "cae_dims": "[513, 16, 8]", "kernel_size": 3}


def test_paper_architectures():
    cae, mae = SpectralVAE(CAE_DIMS), SpectralVAE(MAE_DIMS)
    convs = lambda m: [c for c in m.modules()  # noqa: E731
                       if isinstance(c, torch.nn.Conv1d)]
    assert [(c.in_channels, c.out_channels) for c in convs(cae.encoder)] \
        == [(513, 512), (512, 256), (256, 128), (128, 64)]
    assert [c.out_channels for c in convs(mae.encoder)] == [
        512, 400, 300, 200, 100, 64]
    assert all(c.kernel_size == (7,) and c.stride == (1,)
               for c in convs(cae) + convs(mae))
    spec = torch.rand(2, 513, 30)
    mae.eval()
    recon, mu = mae(spec)
    assert recon.shape == spec.shape and mu.shape == (2, 64, 30)
    # EQ norm at the encoder output: every latent channel has zero mean
    assert mu.mean(-1).abs().max() < 1e-5


def test_eq_norm_and_kl():
    x = torch.rand(3, 4, 10) + 2
    y = eq_norm(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(3, 4), atol=1e-6,
                               rtol=0)
    torch.testing.assert_close(y, x - x.mean(-1, keepdim=True))
    torch.testing.assert_close(eq_norm(x, "divide").mean(-1),
                               torch.ones(3, 4))
    assert kl_term(torch.zeros(2, 3, 4)).item() == 0.0
    assert kl_term(torch.full((2, 3), 2.0)).item() == pytest.approx(4.0)


def test_sampling_only_in_training():
    vae = SpectralVAE((513, 8, 4))
    spec = torch.rand(1, 513, 6)
    vae.eval()
    mu = vae.encode(spec)
    assert torch.equal(vae.sample(mu), mu)
    vae.train()
    assert not torch.equal(vae.sample(mu), mu)


def mae_brain(tmp_path, cae_file, **overrides):
    from conftest import ROOT
    from hyperpyyaml import load_hyperpyyaml

    with open(os.path.join(ROOT, "hparams", "mae_demo.yaml")) as f:
        hparams = load_hyperpyyaml(f, {
            "output_folder": str(tmp_path), "data_folder": str(tmp_path),
            "cae_source": cae_file, "cae_dims": [513, 16, 8],
            "mae_dims": [513, 12, 8], "kernel_size": 3, **overrides})
    return hparams["brain_class"](
        modules=hparams["modules"], opt_class=hparams["opt_class"],
        hparams=hparams, run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=hparams["checkpointer"])


@pytest.fixture
def cae_file(tmp_path):
    torch.manual_seed(0)
    cae = SpectralVAE([513, 16, 8], kernel_size=3)
    with torch.no_grad():  # running statistics worth protecting
        cae.train()
        cae(torch.rand(4, 513, 20) * 3)
    path = str(tmp_path / "cae.ckpt")
    torch.save(cae.state_dict(), path)
    return path


def test_mae_losses_by_hand(tmp_path, cae_file):
    """Eqs. 1-2 and the overall MAE cost on tiny tensors: mixtures get
    reconstruction + cycle, noise-only clips reconstruction + silence."""
    brain = mae_brain(tmp_path, cae_file, cycle_weight=2.0, lambda2=0.5,
                      lambda3=3.0, lambda4=0.25)
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    out = dict(spec=r(2, 3, 4), recon=r(2, 3, 4), cycle=r(2, 3, 4),
               clean=r(2, 3, 4), mu=r(2, 2, 4), mu_cycle=r(2, 2, 4),
               noise_only=torch.tensor([False, True]))
    loss = brain.training_objectives(out, None, sb.Stage.TRAIN)

    def mse(a, b):
        return sum(float((x - y) ** 2) for x, y in
                   zip(a.flatten(), b.flatten())) / a.numel()

    mix = mse(out["spec"][0], out["recon"][0]) + 2.0 * (
        mse(out["spec"][0], out["cycle"][0])
        + 0.5 * mse(out["mu"][0], out["mu_cycle"][0]))
    noise = mse(out["spec"][1], out["recon"][1]) + 3.0 * mse(
        out["clean"][1], torch.zeros(3, 4))
    kl = float((out["mu"] ** 2).mean())
    assert loss.item() == pytest.approx((mix + noise) / 2 + 0.25 * kl,
                                        rel=1e-5)


def test_cae_frozen_in_stage_two(tmp_path, cae_file, demo_data):
    """Steps of the MAE leave the CAE bitwise unchanged (weights and
    batch-norm statistics) while gradients reach the MAE through it."""
    brain = mae_brain(tmp_path, cae_file, data_folder=demo_data)
    before = {k: v.clone() for k, v in brain.cae.state_dict().items()}
    brain.on_fit_start()
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    from speechbrain_remix.data import make_dataset

    data = make_dataset(os.path.join(demo_data, "B_train.csv"), demo_data,
                        16000)
    batch = next(iter(sb.dataio.dataloader.make_dataloader(data,
                                                           batch_size=4)))
    batch.noise_only = torch.tensor([0.0, 1.0, 0.0, 1.0])
    mae_before = {k: v.clone() for k, v in brain.modules.mae.state_dict()
                  .items()}
    for _ in range(3):
        brain.fit_batch(batch)
    for k, v in brain.cae.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None and not p.requires_grad
               for p in brain.cae.parameters())
    assert not brain.cae.training
    opt = {id(p) for g in brain.optimizer.param_groups for p in g["params"]}
    assert opt == {id(p) for p in brain.modules.mae.parameters()}
    moved = [k for k, v in brain.modules.mae.state_dict().items()
             if not torch.equal(v, mae_before[k])]
    assert any(k.startswith("encoder.0.0") for k in moved)


def test_noise_only_manifest_share(tmp_path, demo_data):
    import csv

    from speechbrain_remix.prepare.noise_only import noise_only_manifest

    out = str(tmp_path / "m.csv")
    n = noise_only_manifest(os.path.join(demo_data, "B_train.csv"),
                            os.path.join(demo_data, "B_noise.csv"), 0.5, out)
    rows = list(csv.DictReader(open(out)))
    assert n == sum(r["noise_only"] == "1" for r in rows) == len(rows) / 2
    assert noise_only_manifest(os.path.join(demo_data, "B_train.csv"),
                               "missing.csv", 0.0, out) == 0
    with pytest.raises(ValueError):
        noise_only_manifest(out, out, 1.0, out)


def test_noise_only_clips_labelled_by_energy(tmp_path):
    """Recordings of one place: speech over its noise, and the noise
    alone; the energy rule of Sec. 2.2 finds exactly the noise-only
    ones."""
    import csv

    import soundfile as sf

    from speechbrain_remix.prepare.noise_only import label_by_energy

    g = torch.Generator().manual_seed(0)
    t = torch.arange(16000) / 16000
    rows, truth = [], {}
    for k in range(10):
        noise = 0.02 * torch.randn(16000, generator=g)
        speech = 0.3 * torch.sin(2 * torch.pi * (200 + 20 * k) * t)
        only = k % 3 == 0
        wav = noise if only else speech + noise
        sf.write(str(tmp_path / f"c{k}.wav"), wav.numpy(), 16000)
        rows.append(f"c{k},1.0,$data_root/c{k}.wav")
        truth[f"c{k}"] = str(int(only))
    (tmp_path / "m.csv").write_text("ID,duration,mix_wav\n"
                                    + "\n".join(rows))
    out = str(tmp_path / "labelled.csv")
    assert label_by_energy(str(tmp_path / "m.csv"), out,
                           str(tmp_path)) == 4
    labelled = {r["ID"]: r["noise_only"] for r in csv.DictReader(open(out))}
    assert labelled == truth


def test_both_stages_train_resume_evaluate_and_enhance(demo_data, tmp_path):
    import soundfile as sf

    from speechbrain_remix.inference import Enhancer

    cae = str(tmp_path / "cae")
    summary = train.main(argv("cae_demo.yaml", base=TINY_AE,
                              data_folder=demo_data, output_folder=cae))
    assert list(summary) == ["cae"]
    mae = str(tmp_path / "mae")
    common = dict(data_folder=demo_data, output_folder=mae,
                  cae_source=os.path.join(cae, "save"),
                  mae_dims="[513, 12, 8]", noise_only_percent=50)
    train.main(argv("mae_demo.yaml", base=TINY_AE, **common))
    summary = train.main(argv("mae_demo.yaml", base=TINY_AE,
                              **{**common, "number_of_epochs": 2}))
    assert list(summary) == ["mixture", "spectral_subtraction", "sse"]
    log = open(os.path.join(mae, "train_log.txt")).read()
    assert "epoch: 1" in log and "epoch: 2" in log  # resumed, not redone
    assert log.count("epoch: 1,") == 1
    assert os.path.isfile(os.path.join(mae, "test_results.csv"))

    # the run folder enhances files like any other scheme's
    mix = os.path.join(demo_data, "B_test", "mix")
    first = sorted(os.listdir(mix))[0]
    out = Enhancer.from_run(mae).enhance_file(os.path.join(mix, first),
                                              str(tmp_path / "e.wav"))
    wav, rate = sf.read(out)
    assert rate == 16000 and wav.shape == sf.read(
        os.path.join(mix, first))[0].shape
    # ... and it is E_m -> D_c of the evaluated models: the file the
    # evaluation wrote for the same recording
    uid = os.path.splitext(first)[0]
    evaluated, _ = sf.read(os.path.join(mae, "enhanced", "sse", uid + ".wav"))
    assert abs(wav - evaluated).max() < 1e-4
