"""Subcommands of the ``speechbrain-remix`` console script (see
:mod:`speechbrain_remix.cli`)."""
