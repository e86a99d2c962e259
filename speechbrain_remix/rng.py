"""A checkpointable random generator, one stream per process.

Every random choice a Brain makes (crops, permutations, Bernoulli draws,
noise picks) comes from one ``torch.Generator`` held here, saved with each
checkpoint so that an interrupted run resumes with the very same draws;
torch's global generators (dropout, new models' initial weights) are saved
and restored with it.

In multi-process (DDP) training each rank seeds its generator with
``seed + rank``, so ranks draw different crops and permutations.  A
checkpoint is written by the main process only, so before each save every
rank's state is gathered (:meth:`CheckpointableGenerator.gather`, a
collective all ranks call) and the main process writes all of them; on
resume each rank takes back its own.
"""

import logging

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

logger = logging.getLogger(__name__)


def _rank_and_world():
    if torch.distributed.is_available() and \
            torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


@register_checkpoint_hooks
class CheckpointableGenerator:
    """A seeded CPU ``torch.Generator`` with SpeechBrain checkpoint hooks.

    Arguments
    ---------
    seed : int
        Initial seed; in multi-process training pass ``seed + rank`` so
        that ranks draw different crops and permutations.

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
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._gathered = None  # every rank's state, from the last gather()

    def state(self):
        """This process's random state: the generator's, and torch's global
        ones (model code such as dropout draws from them)."""
        cuda = None
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            cuda = torch.cuda.get_rng_state_all()
        return {"generator": self.generator.get_state(),
                "torch": torch.get_rng_state(), "cuda": cuda}

    def set_state(self, state):
        if isinstance(state, torch.Tensor):  # the generator's alone
            state = {"generator": state}
        self.generator.set_state(state["generator"])
        if state.get("torch") is not None:
            torch.set_rng_state(state["torch"])
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    def gather(self):
        """Collects every rank's random state on every rank (call it on all
        ranks, right before a checkpoint is saved)."""
        rank, world = _rank_and_world()
        if world == 1:
            self._gathered = None
            return
        states = [None] * world
        torch.distributed.all_gather_object(states, self.state())
        self._gathered = states

    def states(self):
        """One state per rank: gathered ones in DDP, else this process's."""
        if self._gathered is not None:
            return self._gathered
        return [self.state()]

    @mark_as_saver
    def _save(self, path):
        torch.save({"rank_states": self.states()}, path)
        self._gathered = None  # never write stale states twice

    @mark_as_loader
    def _load(self, path, end_of_epoch=None):
        saved = torch.load(path)
        if isinstance(saved, torch.Tensor):  # a single-process checkpoint
            saved = {"rank_states": [saved]}
        states = saved["rank_states"]
        rank, world = _rank_and_world()
        if len(states) != world:
            logger.warning(
                "%s holds the random state of %d process(es), this run has "
                "%d: its draws will not repeat the saved run's exactly",
                path, len(states), world,
            )
        if rank < len(states):
            self.set_state(states[rank])
        else:  # a rank the saved run did not have
            self.generator.manual_seed(self.seed)
