#!/usr/bin/env python3
"""Trains and evaluates one scheme: ``python train.py hparams/<name>.yaml``.

The YAML names everything: the data preparation (``prepare``), the
manifests (``train_csv``, ``valid_csv``, ``test_csv``), the Brain class
(``brain_class``), its modules and hyperparameters.  Any key can be
overridden on the command line (``--number_of_epochs=2``); SpeechBrain's
run options apply as usual (``--device=cuda:0``, ``--test_only``, and
``torchrun --standalone --nproc_per_node=N train.py ...`` for multi-GPU).

Data flows one way: prepare -> CSV manifests -> datasets -> Brain ->
checkpoints, ``test_results.csv``, ``summary.csv``, enhanced wavs.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from ruamel.yaml.constructor import DuplicateKeyError
from speechbrain.utils.distributed import run_on_main

from speechbrain_remix.data import DataError, make_dataset
from speechbrain_remix.runs import write_run_info


class UsageError(ValueError):
    """A command line that cannot run as written."""


def build_datasets(hparams, brain_class):
    """Train/valid manifests must hold what the scheme trains on; the test
    manifest needs clean references for the metrics (``test_csv: null``
    leaves the evaluation out)."""
    root, rate = hparams["data_folder"], hparams["sample_rate"]
    crop = hparams["crop_seconds"]
    needs = brain_class.train_columns(hparams)
    short = hparams.get("short_clips", "error")  # or "drop"
    datasets = {
        "train": make_dataset(hparams["train_csv"], root, rate, needs, crop,
                              short, hparams.get("max_sources")),
        "valid": make_dataset(hparams["valid_csv"], root, rate, needs, crop,
                              short, hparams.get("max_sources")),
    }
    if hparams["test_csv"]:  # null: a run without references, not evaluated
        datasets["test"] = make_dataset(
            hparams["test_csv"], root, rate, brain_class.test_columns(hparams),
            max_sources=hparams.get("max_sources"),
        )
    return datasets


def load_hparams(hparams_file, overrides):
    """The YAML with its command-line overrides; a key the YAML does not
    have, or one given twice, is a :class:`UsageError` naming it."""
    try:
        with open(hparams_file) as f:
            return load_hyperpyyaml(f, overrides)
    except KeyError as err:
        if "not found in" not in str(err):
            raise
        key = str(err).split("'")[1]
        raise UsageError(
            f"--{key}: {hparams_file} has no key '{key}'; check its "
            f"spelling, or add a line '{key}: <value>' to the YAML"
        ) from None
    except DuplicateKeyError as err:
        key = str(err.problem).split('"')[1]
        raise UsageError(f"--{key} is given more than once") from None


def main(argv):
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    hparams = load_hparams(hparams_file, overrides)

    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    if sb.utils.distributed.if_main_process():  # the model card's command
        write_run_info(hparams["output_folder"], argv)
    # Data preparation on the main process only; it skips work already done.
    run_on_main(hparams["prepare"], kwargs={"skip_prep": hparams["skip_prep"]})

    brain_class = hparams["brain_class"]
    datasets = build_datasets(hparams, brain_class)
    brain = brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.fit(
        hparams["epoch_counter"],
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    if "test" not in datasets:
        print("test_csv: null, so no evaluation (it needs clean references)"
              f"; the trained model is in {hparams['save_folder']}")
        return None
    return brain.evaluate_systems(
        datasets["test"], hparams["test_dataloader_opts"]
    )


def cli(argv):
    """``main`` for a person at a terminal: a problem with their data or
    command line is one line naming the file or key and the fix, not a
    traceback."""
    try:
        main(argv)
    except (DataError, UsageError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    cli(sys.argv[1:])
