"""Separation models usable as teacher or student."""

from speechbrain_remix.models.sudormrf import SudoRmRf

__all__ = ["SudoRmRf"]
