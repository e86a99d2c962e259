"""Self-supervised speech-enhancement training schemes for SpeechBrain.

The package is organised the way data flows: ``prepare`` writes CSV
manifests, ``data`` turns them into checked datasets, ``brains`` train and
evaluate models from ``models``, using the math of ``remix``,
``consistency``, ``losses`` and ``teacher``.
"""

__version__ = "0.1.0"
