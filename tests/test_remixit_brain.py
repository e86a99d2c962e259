"""RemixIT's Brain checked against Algorithm 1 on a real batch: which
estimate and target fill which slot of Eq. 6, the level of a recorded
noise in Eq. 17, and what it does with bad batches: a batch of one
mixture, a non-finite loss, a teacher that outputs NaN or silence."""

import os

import pytest
import speechbrain as sb
import torch
from test_brains import build

from speechbrain_remix.apply import normalize, separate
from speechbrain_remix.data import DataError, make_dataset
from speechbrain_remix.losses import si_sdr
from speechbrain_remix.remix import random_permutation, speech_and_noise


def remixit(demo_data, tmp_path, teacher, **overrides):
    brain, batch = build("remixit_demo.yaml", demo_data, tmp_path,
                         teacher_source=teacher, student_init="scratch",
                         **overrides)
    brain.on_fit_start()
    return brain, batch


class Recorder(torch.nn.Module):
    """Wraps a model and keeps its last input."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        self.input = x.detach().clone()
        return self.model(x)


def test_eq6_slots_inside_the_brain(demo_data, tmp_path, teacher_file):
    """The student's input is the normalized bootstrapped mixture
    ``s~ + P n~`` (Eq. 5) and its speech/noise outputs are scored against
    ``s~`` and ``P n~`` (Eq. 6), computed here from the teacher directly."""
    brain, batch = remixit(demo_data, tmp_path, teacher_file)
    brain.modules["student"] = Recorder(brain.modules["student"])
    state = brain.rng.generator.get_state()
    estimates, targets, weights = brain.compute_forward(batch,
                                                        sb.Stage.TRAIN)
    assert weights is None  # plain RemixIT

    # by hand, with the same draws: crops, then the derangement
    brain.rng.generator.set_state(state)
    (mix,) = brain.crop(batch, ["mix"], sb.Stage.TRAIN)
    with torch.no_grad():
        teacher_out = speech_and_noise(separate(brain.teacher, mix,
                                                rescale=False))
    s, n = teacher_out[:, 0], teacher_out[:, 1]
    perm = random_permutation(len(mix), brain.rng.generator)
    assert not (perm == torch.arange(len(mix))).any()
    torch.testing.assert_close(targets[:, 0], s)
    torch.testing.assert_close(targets[:, 1], n[perm])
    x, _ = normalize(s + n[perm])
    torch.testing.assert_close(brain.modules["student"].input, x)

    # Eq. 6 (weights 0.5/0.5, clamped negative SI-SDR of Eq. 16)
    loss = brain.compute_objectives((estimates, targets, None), batch,
                                    sb.Stage.TRAIN)
    by_hand = -0.5 * si_sdr(estimates[:, 0], s).clamp(max=30) \
        - 0.5 * si_sdr(estimates[:, 1], n[perm]).clamp(max=30)
    torch.testing.assert_close(loss, by_hand.mean())
    swapped = -0.5 * si_sdr(estimates[:, 0], n[perm]).clamp(max=30) \
        - 0.5 * si_sdr(estimates[:, 1], s).clamp(max=30)
    assert not torch.allclose(loss, swapped.mean())


def test_a_causal_gru_student_learns_from_a_non_causal_teacher(
        demo_data, tmp_path, teacher_file):
    """Any causal masker can be the RemixIT student of a non-causal
    teacher: a causal GRU masker gets the bootstrapped mixture as it is
    (no normalization: it could not know the statistics ahead), and an
    optimizer step on Eq. 6 changes it."""
    from speechbrain_remix.models import GRUMasker

    brain, batch = build("remixit_demo.yaml", demo_data, tmp_path,
                         teacher_source=teacher_file, student_init="scratch")
    torch.manual_seed(0)
    brain.modules["student"] = GRUMasker(hidden=8, n_fft=320, hop=160,
                                         causal=True)
    brain.on_fit_start()
    seen = []
    brain.modules["student"].register_forward_hook(
        lambda module, args, out: seen.append(args[0].detach().clone()))
    before = _weights(brain.modules["student"])
    state = brain.rng.generator.get_state()
    loss = brain.fit_batch(batch)
    assert torch.isfinite(loss)
    after = _weights(brain.modules["student"])
    assert not all(torch.equal(before[k], after[k]) for k in before)

    brain.rng.generator.set_state(state)  # the same draws, by hand
    (mix,) = brain.crop(batch, ["mix"], sb.Stage.TRAIN)
    with torch.no_grad():
        pseudo = speech_and_noise(separate(brain.teacher, mix,
                                           rescale=False))
    perm = random_permutation(len(mix), brain.rng.generator)
    torch.testing.assert_close(seen[0], pseudo[:, 0] + pseudo[:, 1][perm])


def test_eq17_recorded_noise_enters_at_the_estimates_level(
        demo_data, tmp_path, teacher_file):
    """With ``p_n = 1`` every permuted noise estimate ``P n~`` is replaced by
    a recording scaled to the estimate's standard deviation: the
    pseudo-mixture's noise has the level of the noise it replaces."""
    brain, batch = remixit(demo_data, tmp_path, teacher_file, p_n=1.0,
                           noise_csv=os.path.join(demo_data, "B_noise.csv"))
    state = brain.rng.generator.get_state()
    _, targets, _ = brain.compute_forward(batch, sb.Stage.TRAIN)
    brain.rng.generator.set_state(state)
    brain.noise_pool, pool = None, brain.noise_pool
    _, estimated, _ = brain.compute_forward(batch, sb.Stage.TRAIN)
    torch.testing.assert_close(targets[:, 0], estimated[:, 0])
    std = lambda x: x.std(-1)  # noqa: E731
    torch.testing.assert_close(std(targets[:, 1]), std(estimated[:, 1]),
                               rtol=1e-4, atol=1e-6)
    # ... and it is a recording of the pool, not the estimate rescaled
    for b in range(len(targets)):
        assert not torch.allclose(targets[b, 1], estimated[b, 1], atol=1e-3)
    assert pool is not None


def test_no_batch_of_one(demo_data, tmp_path, teacher_file):
    """9 training mixtures in batches of 4: the last batch of one is
    dropped; 5 validation mixtures: the last one joins the batch before;
    a validation set of one mixture is an error before training."""
    brain, _ = remixit(demo_data, tmp_path, teacher_file)
    data = make_dataset(os.path.join(demo_data, "B_train.csv"), demo_data,
                        16000)
    nine = data.filtered_sorted(select_n=9)
    five = data.filtered_sorted(select_n=5)
    sizes = lambda loader: [len(b.id) for b in loader]  # noqa: E731
    train = brain.make_dataloader(nine, sb.Stage.TRAIN, batch_size=4,
                                  shuffle=True)
    assert sizes(train) == [4, 4]
    valid = brain.make_dataloader(five, sb.Stage.VALID, batch_size=4)
    assert sizes(valid) == [5]
    assert sorted(i for b in valid for i in b.id) == sorted(
        five[i]["id"] for i in range(5))
    six = data.filtered_sorted(select_n=6)  # nothing to fix
    assert sizes(brain.make_dataloader(six, sb.Stage.VALID,
                                       batch_size=4)) == [4, 2]
    one = data.filtered_sorted(select_n=1)
    with pytest.raises(DataError, match="needs at least 2"):
        brain.make_dataloader(one, sb.Stage.VALID, batch_size=4)
    with pytest.raises(DataError, match="--batch_size=2"):
        brain.make_dataloader(nine, sb.Stage.TRAIN, batch_size=1)


def _weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_non_finite_loss_skips_the_step_then_stops(demo_data, tmp_path):
    """A NaN loss: no step (weights and optimizer untouched), counted; more
    than --nonfinite_patience of them in an epoch stop the run with a
    message that says what to do."""
    brain, batch = build("supervised_demo.yaml", demo_data, tmp_path)
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    brain.nonfinite_count = 0
    brain.fit_batch(batch)  # a real step: the optimizer has state
    before = _weights(brain.modules.model)
    moments = {k: v.clone() for k, v in
               brain.optimizer.state_dict()["state"][0].items()}
    steps = brain.optimizer_step
    forward = brain.training_forward
    brain.training_forward = lambda b, s: tuple(
        t * float("nan") for t in forward(b, s))
    for count in range(1, brain.nonfinite_patience + 1):
        loss = brain.fit_batch(batch)
        assert not torch.isfinite(loss)
        assert brain.skipped["train"] == count
    for k, v in _weights(brain.modules.model).items():
        assert torch.equal(v, before[k]), k
    for k, v in brain.optimizer.state_dict()["state"][0].items():
        assert torch.equal(v, moments[k]), k
    assert brain.optimizer_step == steps
    with pytest.raises(FloatingPointError, match="nonfinite_patience"):
        brain.fit_batch(batch)


def test_teacher_nan_or_silence_does_not_reach_the_student(
        demo_data, tmp_path, teacher_file):
    brain, batch = remixit(demo_data, tmp_path, teacher_file)
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    brain.nonfinite_count = 0
    teacher = brain.teacher
    forward = teacher.forward

    def broken(x, bad=(1,), value=float("nan")):
        out = forward(x).clone()
        out[list(bad)] = value
        return out

    # one mixture's estimates are NaN: left out, the others train
    teacher.forward = broken
    estimates, targets, _ = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert len(targets) == len(batch.id) - 1
    assert torch.isfinite(targets).all() and torch.isfinite(estimates).all()
    # every estimate silent (a silent crop: the normalized mixture is 0)
    # or NaN: the batch is skipped, the student untouched
    estimate = brain.teacher_estimates
    for value in (0.0, float("nan")):
        brain.teacher_estimates = lambda mix, v=value: torch.full_like(
            estimate(mix), v)
        before = _weights(brain.modules.student)
        loss = brain.fit_batch(batch)
        assert not torch.isfinite(loss)
        for k, v in _weights(brain.modules.student).items():
            assert torch.equal(v, before[k]), k
    assert brain.skipped["train"] == 2


def test_cli_reports_data_errors_in_one_line(tmp_path, capsys):
    import train

    with pytest.raises(SystemExit) as exit_info:
        train.cli([os.path.join(os.path.dirname(__file__), "..", "hparams",
                                "supervised_demo.yaml"),
                   f"--demo_folder={tmp_path}", "--device=cpu",
                   f"--output_folder={tmp_path / 'out'}",
                   f"--data_folder={tmp_path / 'data'}"])
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert "demo" in message


@pytest.mark.parametrize("args, match", [
    (["--short_clip=drop"], "no key 'short_clip'"),
    (["--lr=1", "--lr=2"], "--lr is given more than once"),
])
def test_cli_usage_errors(args, match, tmp_path):
    import train

    demo = os.path.join(os.path.dirname(__file__), "..", "hparams",
                        "remixit_demo.yaml")
    with pytest.raises(SystemExit) as exit_info:
        train.cli([demo, f"--output_folder={tmp_path}", *args])
    assert match in str(exit_info.value.code)


def test_short_clips_override_works_on_every_yaml(tmp_path):
    """The fix a short-clip error suggests (``--short_clips=drop``) is an
    override every YAML accepts."""
    import glob

    from conftest import ROOT

    import train

    for path in sorted(glob.glob(os.path.join(ROOT, "hparams", "*.yaml"))):
        overrides = {"short_clips": "drop", "output_folder": str(tmp_path),
                     "data_folder": str(tmp_path)}
        hparams = train.load_hparams(path, overrides)
        assert hparams["short_clips"] == "drop", path
