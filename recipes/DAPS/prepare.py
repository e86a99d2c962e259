#!/usr/bin/env python3
"""Writes the DAPS manifests (Table 1 device recordings; Table 2 street
noise with --street_noise_folder); options: --help.  Same as
``python -m speechbrain_remix.prepare daps``; train.py runs it itself."""

import sys

from speechbrain_remix.prepare.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["daps", *sys.argv[1:]]))
