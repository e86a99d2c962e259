"""Loading a trained model's weights from a run's checkpoints (a teacher
for RemixIT, a model to enhance files with)."""

import os

import torch
from speechbrain.utils.checkpoints import Checkpointer


def load_pretrained(model, source, key="model"):
    """Loads weights from a checkpoint folder, a checkpoint or a file.

    Arguments
    ---------
    model : torch.nn.Module
        Receives the weights.  A model that loads its own (one with a
        ``load_folder(source)`` method, e.g. a SpeechBrain pretrained-layout
        folder as the teacher,
        :class:`speechbrain_remix.models.speechbrain_models.SpeechBrainTeacher`)
        is handed ``source`` instead.
    source : str
        A ``.ckpt``/``.pt`` state-dict file, a SpeechBrain checkpoint
        directory (``CKPT+...``) or a ``save`` folder holding several
        (the one with the lowest ``valid_loss`` that holds ``key``, as
        ``train.py`` selects it, else the most recent).
    key : str
        The recoverable's name in the checkpoint (``model`` for supervised
        and MixIT runs, ``student`` for RemixIT runs).

    Returns
    -------
    str
        The file the weights came from.
    """
    if callable(getattr(model, "load_folder", None)):
        return model.load_folder(source)
    path = source
    if os.path.isdir(source):
        candidate = os.path.join(source, f"{key}.ckpt")
        if os.path.isfile(candidate):
            path = candidate
        else:
            # the checkpoint the teacher's own run selected: the lowest
            # validation loss (a "last"-selected run keeps only one)
            has_key = lambda c: key in c.paramfiles  # noqa: E731
            finder = Checkpointer(source)
            ckpt = finder.find_checkpoint(
                min_key="valid_loss", ckpt_predicate=has_key
            ) or finder.find_checkpoint(ckpt_predicate=has_key)
            if ckpt is None:
                raise FileNotFoundError(
                    f"{source}: no checkpoint with a '{key}' model; train "
                    "the teacher first (see the README) or point "
                    "teacher_source to its save folder or .ckpt file"
                )
            path = str(ckpt.paramfiles[key])
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{source}: pretrained model not found; train the teacher first "
            "(see the README) or fix teacher_source"
        )
    state = torch.load(path, map_location="cpu")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise RuntimeError(
            f"{path}: weights do not fit the configured model; make the "
            f"model hyperparameters match the ones it was trained with "
            f"({err})"
        ) from err
    return path
