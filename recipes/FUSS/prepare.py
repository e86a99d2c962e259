#!/usr/bin/env python3
"""Writes the FUSS manifests; options: --help.  Same as
``python -m speechbrain_remix.prepare fuss``; train.py runs it itself."""

import sys

from speechbrain_remix.prepare.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["fuss", *sys.argv[1:]]))
