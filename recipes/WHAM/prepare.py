#!/usr/bin/env python3
"""Writes the WHAM manifests; options: --help.  Same as
``python -m speechbrain_remix.prepare wham``; train.py runs it itself."""

import sys

from speechbrain_remix.prepare.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["wham", *sys.argv[1:]]))
