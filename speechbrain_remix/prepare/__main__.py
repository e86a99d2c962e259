"""Command line for every data preparation, built from its signature::

    python -m speechbrain_remix.prepare dns --data_folder DNS \\
        --save_folder results/dns_manifests

Options are the function's arguments; list values take several words
(``--n_mixtures 45602 3000 3081``).  Bad data ends the command with a
one-line message naming the file and the fix (exit status 1).
"""

import argparse
import importlib
import inspect
import sys

from speechbrain_remix.prepare.common import run_command

PREPARATIONS = {
    "demo": "speechbrain_remix.prepare.demo:prepare_demo",
    "folders": "speechbrain_remix.prepare.folders:prepare_folders",
    "dns": "speechbrain_remix.prepare.dns:prepare_dns",
    "wham": "speechbrain_remix.prepare.wham:prepare_wham",
    "librifsd50k": "speechbrain_remix.prepare.librifsd50k:prepare_librifsd50k",
    "vctk": "speechbrain_remix.prepare.vctk:prepare_vctk",
    "fuss": "speechbrain_remix.prepare.fuss:prepare_fuss",
    "wsjmix": "speechbrain_remix.prepare.wsjmix:prepare_wsjmix",
    "daps": "speechbrain_remix.prepare.daps:prepare_daps",
    "personal_librispeech":
        "speechbrain_remix.prepare.personal:prepare_personal_librispeech",
    "personal_demo": "speechbrain_remix.prepare.personal:prepare_personal_demo",
}


def load(name):
    module, function = PREPARATIONS[name].split(":")
    return getattr(importlib.import_module(module), function)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in PREPARATIONS:
        print("usage: python -m speechbrain_remix.prepare {"
              + ",".join(PREPARATIONS) + "} [--option value ...]")
        return 2
    function = load(argv[0])
    parser = argparse.ArgumentParser(prog=f"prepare {argv[0]}",
                                     description=function.__doc__)
    for name, param in inspect.signature(function).parameters.items():
        if name == "skip_prep":
            continue
        default = param.default
        if default is inspect.Parameter.empty:
            parser.add_argument(f"--{name}", required=True)
        elif isinstance(default, (list, tuple)):
            kind = type(default[0]) if default else str
            parser.add_argument(f"--{name}", nargs="+", type=kind,
                                default=default)
        elif default is None:
            parser.add_argument(f"--{name}", default=None)
        else:
            parser.add_argument(f"--{name}", type=type(default),
                                default=default)
    run_command(parser, function, argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
