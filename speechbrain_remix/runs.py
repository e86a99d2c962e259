"""Reading a finished ``train.py`` run folder: its hyperparameters, where
it was started from, and the model its evaluation selected.

A run folder is what ``train.py`` wrote: ``hyperparams.yaml`` (the YAML
with the command line's overrides resolved), ``save/`` (checkpoints),
``train_log.txt``, results, and ``run.json`` (the command line and the
directory it was started from).  The model is rebuilt by the run's own
Brain class, which selects the checkpoint exactly as its evaluation did
(``select_by``, ``average_checkpoints``, a sequential run's stage rule),
so what a user enhances with is what the results table scored.
"""

import contextlib
import datetime
import json
import os
import platform
import sys

from hyperpyyaml import load_hyperpyyaml

RUN_INFO = "run.json"


def write_run_info(output_folder, argv):
    """Records how a run was started (``run.json`` in its folder): the
    command line, the directory it ran in (relative paths of the YAML, e.g.
    a teacher's ``save`` folder, are relative to it), the package version
    and the date."""
    from speechbrain_remix import __version__

    info = {"argv": [os.path.basename(sys.argv[0]) or "train.py", *argv],
            "cwd": os.getcwd(), "version": __version__,
            "python": platform.python_version(),
            "date": datetime.datetime.now().isoformat(timespec="seconds")}
    os.makedirs(output_folder, exist_ok=True)
    with open(os.path.join(output_folder, RUN_INFO), "w") as f:
        json.dump(info, f, indent=1)
    return info


def read_run_info(run_dir):
    """``run.json`` of ``run_dir`` (an empty dict for older runs)."""
    path = os.path.join(run_dir, RUN_INFO)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _yaml_value(path, key):
    """The plain value of a top-level ``key: value`` line of a YAML file
    (no tag, no reference), without building anything."""
    with open(path) as f:
        for line in f:
            if line.startswith(f"{key}:"):
                value = line.split(":", 1)[1].split(" #")[0].strip()
                return value.strip("'\"") or None
    return None


def origin(run_dir):
    """The directory ``train.py`` ran in when it wrote ``run_dir``.

    The run folder's own location decides first: a relative
    ``output_folder: results/demo/remixit`` whose run now lies at
    ``/x/results/demo/remixit`` was started from ``/x``, wherever the run
    was moved since and whatever the current directory is.  Else the
    directory ``run.json`` recorded, else the run folder itself.

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> run = os.path.join(root, "results", "r1")
    >>> os.makedirs(run)
    >>> with open(os.path.join(run, "hyperparams.yaml"), "w") as f:
    ...     _ = f.write("output_folder: results/r1\\n")
    >>> origin(run) == os.path.realpath(root)
    True
    """
    run_dir = os.path.realpath(run_dir)
    written = _yaml_value(os.path.join(run_dir, "hyperparams.yaml"),
                          "output_folder")
    if written and not os.path.isabs(written):
        parts = os.path.normpath(written).split(os.sep)
        tail = run_dir.split(os.sep)[-len(parts):]
        if tail == parts:
            return os.sep.join(run_dir.split(os.sep)[:-len(parts)]) or os.sep
    cwd = read_run_info(run_dir).get("cwd")
    if cwd and os.path.isdir(cwd):
        return cwd
    return run_dir


@contextlib.contextmanager
def working_directory(path):
    """Runs the block in ``path`` (the run's relative paths resolve as they
    did in training), then returns to the current directory."""
    here = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(here)


def is_run_folder(path):
    """Whether ``path`` looks like a ``train.py`` output folder."""
    return (os.path.isfile(os.path.join(path, "hyperparams.yaml"))
            and os.path.isdir(os.path.join(path, "save")))


def outputs_unordered(hparams):
    """Whether a run's model has its outputs in no fixed order: a model
    trained from scratch (Self-Remixing, RemixIT from scratch, MixIT of
    two mixtures), which its evaluation scored by the output nearest the
    clean speech (``eval_output: closest``).  Its first output, which
    enhancement writes as the speech, is the speech on some recordings
    only.

    The run's own evaluation setting is the evidence (the YAML's
    ``eval_output``, else its Brain's default): a run scored on output 0
    claimed output 0 is the speech.  A RemixIT student distilled from a
    from-scratch teacher inherits that teacher's order and is not
    detected.

    Arguments
    ---------
    hparams : dict
        A run's hyperparameters (``brain_class``, optional
        ``eval_output``).

    Returns
    -------
    bool

    Example
    -------
    >>> from speechbrain_remix.brains import SelfRemixingBrain
    >>> outputs_unordered({"brain_class": SelfRemixingBrain})
    True
    >>> outputs_unordered({"brain_class": SelfRemixingBrain,
    ...                    "eval_output": "first"})
    False
    """
    default = getattr(hparams["brain_class"], "eval_output", "first")
    return hparams.get("eval_output", default) == "closest"


def load_run(run_dir, device="cpu"):
    """The model a run's evaluation selected, ready to enhance.

    Arguments
    ---------
    run_dir : str
        A ``train.py`` ``output_folder`` (relative to the current
        directory, like any path on a command line).
    device : str
        Where to load it.

    Returns
    -------
    model : torch.nn.Module
        Separation model (``[B, T] -> [B, M, T]``, speech first) or, with
        ``outputs_speech``, an enhancer (``[B, T] -> [B, T]``); in eval
        mode.
    hparams : dict
        The run's hyperparameters, paths resolved in its own folder.
    ckpt : speechbrain.utils.checkpoints.Checkpoint
        The checkpoint loaded (the best of the averaged ones).

    Raises
    ------
    FileNotFoundError
        Not a run folder, or no checkpoint in it.
    ValueError
        A run whose model does not enhance (an SNR predictor).
    """
    run_dir = os.path.realpath(run_dir)
    path = os.path.join(run_dir, "hyperparams.yaml")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: give the output_folder of a train.py run "
            "(it holds hyperparams.yaml and save/) or an exported model "
            "folder (speechbrain-remix export RUN_DIR OUT_DIR)")
    with working_directory(origin(run_dir)):
        with open(path) as f:
            # the run's folder is where it is now, not where it was written
            hparams = load_hyperpyyaml(f, {"output_folder": run_dir})
        save = os.path.realpath(hparams["save_folder"])
        if os.path.commonpath([save, run_dir]) != run_dir:
            raise ValueError(
                f"{path}: save_folder {save} lies outside the run folder; "
                "set save_folder: !ref <output_folder>/save")
        brain_class = hparams["brain_class"]
        if not getattr(brain_class, "enhances", True):
            raise ValueError(
                f"{run_dir}: this run trained {sorted(hparams['modules'])}"
                ", not an enhancement model; give the folder of a run that "
                "enhances (supervised, MixIT, RemixIT, Self-Remixing, MAE "
                "or PSE)")
        brain = brain_class(modules=hparams["modules"],
                            opt_class=hparams["opt_class"], hparams=hparams,
                            run_opts={"device": device},
                            checkpointer=hparams["checkpointer"])
        keys = brain.selection_keys()
        ckpt = brain.checkpointer.find_checkpoint(
            ckpt_predicate=brain.evaluation_predicate(), **keys)
        if ckpt is None:
            raise FileNotFoundError(
                f"{save}: no checkpoint; train first (python train.py "
                f"{path} resumes the run)")
        brain.on_evaluate_start(**keys)  # what evaluation loads
        model = brain.inference_module()
    return model.to(device).eval(), hparams, ckpt
