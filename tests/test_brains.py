"""Each Brain lowers its own loss in a few steps on one batch of the demo
corpus (tiny model), and RemixIT keeps its teacher frozen."""

import os

import pytest
import speechbrain as sb
import torch
from conftest import ROOT, TINY
from hyperpyyaml import load_hyperpyyaml

from speechbrain_remix.data import make_dataset


def build(hparams_file, demo_data, tmp_path, **overrides):
    with open(os.path.join(ROOT, "hparams", hparams_file)) as f:
        hparams = load_hyperpyyaml(f, {
            **TINY, "data_folder": demo_data,
            "output_folder": str(tmp_path), "lr": 0.003, **overrides,
        })
    brain_class = hparams["brain_class"]
    brain = brain_class(
        modules=hparams["modules"], opt_class=hparams["opt_class"],
        hparams=hparams, run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=hparams["checkpointer"],
    )
    data = make_dataset(hparams["train_csv"], demo_data, 16000,
                        brain_class.train_columns(hparams))
    loader = sb.dataio.dataloader.make_dataloader(data, batch_size=4)
    return brain, next(iter(loader))


def losses_over_steps(brain, batch, steps=12, same_draws=False):
    """Loss of ``steps`` optimizer steps on one batch; with ``same_draws``
    every step sees the same crops and shuffles (a fixed objective)."""
    brain.on_fit_start()
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    state = brain.rng.generator.get_state()
    losses = []
    for _ in range(steps):
        if same_draws:
            brain.rng.generator.set_state(state)
        losses.append(brain.fit_batch(batch).item())
    return losses


def assert_decreases(losses):
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 0.2, losses


def test_supervised_brain_learns(demo_data, tmp_path):
    brain, batch = build("supervised_demo.yaml", demo_data, tmp_path)
    assert_decreases(losses_over_steps(brain, batch))


def test_mixit_brain_learns(demo_data, tmp_path):
    brain, batch = build("mixit_demo.yaml", demo_data, tmp_path)
    assert_decreases(losses_over_steps(brain, batch))


def test_remixit_brain_learns_with_frozen_teacher(demo_data, tmp_path,
                                                  teacher_file):
    brain, batch = build("remixit_demo.yaml", demo_data, tmp_path,
                         teacher_source=teacher_file, student_init="scratch")
    before = {k: v.clone() for k, v in brain.teacher.state_dict().items()}
    losses = losses_over_steps(brain, batch)
    assert_decreases(losses)
    assert not brain.teacher.training
    assert all(not p.requires_grad for p in brain.teacher.parameters())
    for key, value in brain.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    # the optimizer holds the student's parameters only
    opt_params = {id(p) for g in brain.optimizer.param_groups
                  for p in g["params"]}
    assert opt_params == {id(p) for p in brain.modules.student.parameters()}


def test_remixit_with_recorded_noise(demo_data, tmp_path, teacher_file):
    """Eq. 17 with p_n = 1: every pseudo-target noise is a recording, the
    speech pseudo-targets are unchanged."""
    brain, batch = build("remixit_demo.yaml", demo_data, tmp_path,
                         teacher_source=teacher_file, p_n=1.0,
                         noise_csv=os.path.join(demo_data, "B_noise.csv"))
    brain.on_fit_start()
    state = brain.rng.generator.get_state()
    _, with_noise, _ = brain.compute_forward(batch, sb.Stage.TRAIN)
    brain.rng.generator.set_state(state)
    brain.noise_pool = None
    _, plain, _ = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert torch.allclose(with_noise[:, 0], plain[:, 0])
    for b in range(4):
        assert not torch.allclose(with_noise[b, 1], plain[b, 1], atol=1e-3)


def test_dynamic_mixing_draws_new_snrs(demo_data, tmp_path):
    """dynamic_snr_range re-mixes clean and (shuffled) noise at a random
    SNR inside the range at every step."""
    brain, batch = build("supervised_demo.yaml", demo_data, tmp_path)
    brain.hparams.dynamic_snr_range = [5.0, 5.0]
    brain.on_fit_start()
    mix, clean = brain.crop(batch, ["mix", "clean"], sb.Stage.VALID)
    remixed = brain.dynamic_mix(clean, mix - clean, [5.0, 5.0])
    noise = remixed - clean
    snr = 10 * torch.log10(clean.pow(2).sum(-1) / noise.pow(2).sum(-1))
    assert torch.allclose(snr, torch.full_like(snr, 5.0), atol=1e-3)
    _, targets = brain.compute_forward(batch, sb.Stage.TRAIN)
    snr = 10 * torch.log10(targets[:, 0].pow(2).sum(-1)
                           / targets[:, 1].pow(2).sum(-1))
    assert torch.allclose(snr, torch.full_like(snr, 5.0), atol=1e-3)


@pytest.mark.parametrize("objective", ["self_remixing", "remixit"])
def test_self_remixing_brain_learns_from_scratch(demo_data, tmp_path,
                                                 objective):
    brain, batch = build("self_remixing_demo.yaml", demo_data, tmp_path,
                         objective=objective, constrained=True)
    teacher = {k: v.clone() for k, v in brain.teacher.state_dict().items()}
    assert_decreases(losses_over_steps(brain, batch, same_draws=True))
    # the teacher moves only between epochs (EMA), never by gradients
    for key, value in brain.teacher.state_dict().items():
        assert torch.equal(value, teacher[key]), key
    brain.on_stage_start(sb.Stage.TRAIN, epoch=2)  # the EMA of epoch 1
    moved = any(not torch.equal(v, teacher[k])
                for k, v in brain.teacher.state_dict().items())
    assert moved


def test_supervised_self_remixing_learns(demo_data, tmp_path):
    brain, batch = build(
        "self_remixing_demo.yaml", demo_data, tmp_path, supervised=True,
        train_csv=os.path.join(demo_data, "A_train.csv"))
    assert_decreases(losses_over_steps(brain, batch, same_draws=True))


def test_zero_init_output_gives_mixtures_over_n(demo_data, tmp_path):
    """Sec. 2.3: a zeroed output layer makes every output mixture / N."""
    brain, batch = build("self_remixing_demo.yaml", demo_data, tmp_path,
                         zero_init_output=True)
    x = torch.randn(2, 8000)
    from speechbrain_remix.consistency import mixture_consistency

    out = mixture_consistency(brain.teacher(x), x)
    torch.testing.assert_close(out, (x / 2).unsqueeze(1).expand_as(out))


def test_mixit_separation_with_sparsity_learns(demo_data, tmp_path):
    """MixIT for separation: mixtures of two observed mixtures, N = 4
    outputs, generalized assignments, plus the sparsity loss."""
    brain, batch = build(
        "mixit_demo.yaml", demo_data, tmp_path, mom_from_batch=True,
        all_assignments=True, sparsity_weight=1.0, num_sources=4,
    )
    assert_decreases(losses_over_steps(brain, batch, same_draws=True))
    assert brain.noise_pool is None


@pytest.mark.parametrize("yaml, override, scored", [
    ("mixit_demo.yaml", {}, 0),  # the speech output of Eq. 3
    ("mixit_demo.yaml", {"eval_output": "closest"}, 2),
    ("self_remixing_demo.yaml", {}, 2),  # the Brain's default: closest
    ("self_remixing_demo.yaml", {"eval_output": "first"}, 0),
])
def test_eval_output_scores_the_chosen_output(demo_data, tmp_path,
                                              monkeypatch, yaml, override,
                                              scored):
    """``eval_output``: output 0, or the output nearest the clean speech
    (here output 2, the clean speech plus a little noise)."""
    import speechbrain_remix.brains.base as base

    hparams = {"num_sources": 4} if yaml == "mixit_demo.yaml" else {}
    brain, _ = build(yaml, demo_data, tmp_path, **hparams, **override)
    test = make_dataset(os.path.join(demo_data, "B_test.csv"), demo_data,
                        16000, ("mix_wav", "clean_wav"))
    batch = next(iter(sb.dataio.dataloader.make_dataloader(test,
                                                           batch_size=1)))
    clean = batch.clean.data
    outputs = torch.randn(1, 4, clean.shape[1])
    outputs[:, 2] = clean + 0.01 * outputs[:, 2]
    monkeypatch.setattr(base, "separate", lambda model, mix: outputs)
    brain.eval_systems = brain.systems()
    brain.eval_system = "model"
    estimate = brain.compute_forward(batch, sb.Stage.TEST)
    assert torch.equal(estimate, outputs[:, scored])


def test_metric_selection_scores_the_closest_output(demo_data, tmp_path,
                                                    monkeypatch):
    """``select_by`` a test metric goes through the same choice of output
    as evaluation (output 1 is the clean speech: about 55 dB)."""
    import speechbrain_remix.brains.base as base

    brain, _ = build("self_remixing_demo.yaml", demo_data, tmp_path)
    brain.selection_set = make_dataset(
        os.path.join(demo_data, "B_test.csv"), demo_data, 16000,
        ("mix_wav", "clean_wav"))

    def separate(model, mix):
        batch = next(b for b in sb.dataio.dataloader.make_dataloader(
            brain.selection_set, batch_size=1) if torch.equal(
                b.mix.data, mix))
        outputs = torch.randn(1, 2, mix.shape[1])
        outputs[:, 1] = batch.clean.data + 1e-4 * outputs[:, 1]
        return outputs

    monkeypatch.setattr(base, "separate", separate)
    assert brain.validation_metric("si_sdr") > 30


def test_eval_output_errors_name_the_fix(demo_data, tmp_path):
    with pytest.raises(ValueError, match="'first'.*'closest'"):
        build("mixit_demo.yaml", demo_data, tmp_path, eval_output="best")
    with pytest.raises(ValueError, match="eval_metrics: enhancement"):
        build("self_remixing_demo.yaml", demo_data, tmp_path,
              eval_metrics="dnsmos")
    # the fix it names works
    build("self_remixing_demo.yaml", demo_data, tmp_path,
          eval_metrics="dnsmos", eval_output="first")


def test_self_remixing_with_the_conformer_masker(demo_data, tmp_path):
    """The paper's model (tiny) trains under the Self-Remixing Brain."""
    from speechbrain_remix.models import ConformerMasker

    with open(os.path.join(ROOT, "hparams", "self_remixing_demo.yaml")) as f:
        hparams = load_hyperpyyaml(f, {
            **TINY, "data_folder": demo_data,
            "output_folder": str(tmp_path), "lr": 0.003,
        })
    model = ConformerMasker(num_sources=2, num_layers=1, d_model=32,
                            nhead=2, d_ffn=64, norm_groups=4)
    hparams["checkpointer"].add_recoverable("model", model)
    brain = hparams["brain_class"](
        modules={"model": model}, opt_class=hparams["opt_class"],
        hparams=hparams, run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=hparams["checkpointer"],
    )
    data = make_dataset(hparams["train_csv"], demo_data, 16000)
    batch = next(iter(sb.dataio.dataloader.make_dataloader(data,
                                                           batch_size=4)))
    assert_decreases(losses_over_steps(brain, batch, same_draws=True))


def test_learning_rate_schedule(demo_data, tmp_path):
    """Hold, step decay and floor per epoch; linear warm-up per step."""
    brain, batch = build("self_remixing_demo.yaml", demo_data, tmp_path,
                         lr=2e-4, lr_decay_every=3, lr_decay_factor=0.98)
    brain.hparams.lr_hold_epochs = 100
    brain.hparams.lr_min = 2e-5
    assert brain.learning_rate(1) == brain.learning_rate(100) == 2e-4
    assert brain.learning_rate(103) == 2e-4
    assert brain.learning_rate(104) == pytest.approx(2e-4 * 0.98)
    assert brain.learning_rate(10**4) == 2e-5
    brain.hparams.warmup_steps = 4
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    seen = []
    for _ in range(6):
        brain.fit_batch(batch)
        seen.append(brain.optimizer.param_groups[0]["lr"])
    assert seen[:4] == pytest.approx([0.5e-4, 1e-4, 1.5e-4, 2e-4])
    assert seen[4:] == pytest.approx([2e-4, 2e-4])
