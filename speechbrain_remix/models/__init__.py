"""Separation models usable as teacher or student, and the spectral
autoencoders of latent-space enhancement."""

from speechbrain_remix.models.conformer import ConformerMasker
from speechbrain_remix.models.latent_ae import SpectralVAE
from speechbrain_remix.models.sudormrf import SudoRmRf

__all__ = ["ConformerMasker", "SpectralVAE", "SudoRmRf"]
