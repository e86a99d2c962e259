#!/usr/bin/env python3
"""Writes the manifests of personalized speech enhancement on LibriSpeech,
MUSAN and FSD50K; options: --help.  Same as
``python -m speechbrain_remix.prepare personal_librispeech``."""

import sys

from speechbrain_remix.prepare.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["personal_librispeech", *sys.argv[1:]]))
