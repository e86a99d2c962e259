#!/usr/bin/env python3
"""Writes the LibriFSD50K manifests; options: --help.  Same as
``python -m speechbrain_remix.prepare librifsd50k``; train.py runs it itself."""

import sys

from speechbrain_remix.prepare.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["librifsd50k", *sys.argv[1:]]))
