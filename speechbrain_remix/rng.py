"""A checkpointable random generator.

Every random choice a Brain makes (crops, permutations, Bernoulli draws,
noise picks) comes from one ``torch.Generator`` held here, saved with each
checkpoint so that an interrupted run resumes with the very same draws.
"""

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)


@register_checkpoint_hooks
class CheckpointableGenerator:
    """A seeded CPU ``torch.Generator`` with SpeechBrain checkpoint hooks.

    Arguments
    ---------
    seed : int
        Initial seed; in multi-process training each rank should add its
        rank so that ranks draw different crops and permutations.

    Example
    -------
    >>> g = CheckpointableGenerator(3)
    >>> state = g.generator.get_state()
    >>> a = torch.rand(2, generator=g.generator)
    >>> _ = g.generator.set_state(state)
    >>> bool((a == torch.rand(2, generator=g.generator)).all())
    True
    """

    def __init__(self, seed=0):
        self.generator = torch.Generator().manual_seed(int(seed))

    @mark_as_saver
    def _save(self, path):
        torch.save(self.generator.get_state(), path)

    @mark_as_loader
    def _load(self, path, end_of_epoch=None):
        self.generator.set_state(torch.load(path))
