"""Tests of the checkpointable random generator."""

import torch
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_remix.rng import CheckpointableGenerator


def _draws(rng, n=5):
    g = rng.generator
    return (
        torch.rand(n, generator=g),
        torch.randperm(8, generator=g),
        torch.randint(0, 1000, (n,), generator=g),
    )


def _equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_same_seed_same_draws():
    assert _equal(
        _draws(CheckpointableGenerator(5)), _draws(CheckpointableGenerator(5))
    )
    assert not _equal(
        _draws(CheckpointableGenerator(5)), _draws(CheckpointableGenerator(6))
    )


def test_checkpoint_reproduces_next_draws(tmp_path):
    rng = CheckpointableGenerator(11)
    _draws(rng)  # advance the state past the seed
    ckpt = Checkpointer(tmp_path, recoverables={"rng": rng})
    ckpt.save_checkpoint()
    expected = _draws(rng)

    # A fresh generator with another seed recovers the saved state.
    fresh = CheckpointableGenerator(0)
    assert not _equal(_draws(CheckpointableGenerator(0)), expected)
    recovered = Checkpointer(tmp_path)
    recovered.add_recoverable("rng", fresh)
    assert recovered.recover_if_possible() is not None
    assert _equal(_draws(fresh), expected)


def test_checkpoint_recovers_latest_state(tmp_path):
    rng = CheckpointableGenerator(3)
    ckpt = Checkpointer(tmp_path, recoverables={"rng": rng})
    ckpt.save_checkpoint(name="first")
    _draws(rng)
    ckpt.save_checkpoint(name="second")
    expected = _draws(rng)
    fresh = CheckpointableGenerator(3)
    Checkpointer(tmp_path, recoverables={"rng": fresh}).recover_if_possible()
    assert _equal(_draws(fresh), expected)


def test_checkpoint_restores_torch_global_generator(tmp_path):
    """Model code (dropout, a new model's initial weights) draws from
    torch's global generator: a resumed run must see the same draws."""
    rng = CheckpointableGenerator(1)
    torch.manual_seed(123)
    Checkpointer(tmp_path, recoverables={"rng": rng}).save_checkpoint()
    expected = torch.rand(4)
    torch.manual_seed(999)
    Checkpointer(tmp_path, recoverables={"rng": CheckpointableGenerator(1)}
                 ).recover_if_possible()
    assert torch.equal(torch.rand(4), expected)
