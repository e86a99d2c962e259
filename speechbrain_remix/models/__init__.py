"""Separation models usable as teacher or student."""

from speechbrain_remix.models.conformer import ConformerMasker
from speechbrain_remix.models.sudormrf import SudoRmRf

__all__ = ["ConformerMasker", "SudoRmRf"]
