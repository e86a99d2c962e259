"""The ``speechbrain-remix`` console script (installed by ``pip install``).

::

    speechbrain-remix enhance MODEL INPUT... --out DIR
    speechbrain-remix evaluate ENHANCED --references CLEAN  (or --manifest)
    speechbrain-remix plot RUN_DIR
    speechbrain-remix export RUN_DIR OUT_DIR

Each subcommand lives in :mod:`speechbrain_remix.commands` as a module with
``add_arguments(parser)`` and ``run(args) -> exit status``; it is imported
only when used, so ``--help`` answers at once.
"""

import argparse
import importlib
import sys

from speechbrain_remix import __version__

COMMANDS = {
    "enhance": "enhance recordings (files or folders) with a trained model",
    "evaluate": "score enhanced files against references, or with DNSMOS",
    "plot": "figures of a train.py run: curves, histograms, spectrograms",
    "export": "write a run's model as a SpeechBrain pretrained folder",
}


def command(name):
    """The module implementing subcommand ``name``."""
    return importlib.import_module(f"speechbrain_remix.commands.{name}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="speechbrain-remix",
        description="Use, judge and share models trained with "
                    "speechbrain-remix.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(command=name)
        # subcommand options are declared by the module when it is chosen
    return parser


def main(argv=None):
    """Parses ``argv`` and runs the subcommand; returns its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    # Two passes: the first finds the subcommand, the second parses its
    # options, declared by its (lazily imported) module.
    known, _ = parser.parse_known_args(argv[:1] if argv and not
                                       argv[0].startswith("-") else argv)
    module = command(known.command)
    sub = argparse.ArgumentParser(prog=f"speechbrain-remix {known.command}",
                                  description=COMMANDS[known.command])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    return int(module.run(args) or 0)


def entry_point():
    """``console_scripts`` entry: exits with the subcommand's status."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
