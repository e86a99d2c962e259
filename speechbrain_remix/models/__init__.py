"""Separation models usable as teacher or student (Sudo rm -rf, the
Conformer masker, the GRU maskers of personalized enhancement, SpeechBrain
lobes and pretrained SpeechBrain models as a teacher), the
spectral autoencoders of latent-space enhancement and the SNR predictor
of data purification."""

from speechbrain_remix.models.conformer import ConformerMasker
from speechbrain_remix.models.gru import GRUMasker, SNRPredictor
from speechbrain_remix.models.latent_ae import SpectralVAE
from speechbrain_remix.models.speechbrain_models import (
    SpeechBrainSeparator,
    SpeechBrainTeacher,
)
from speechbrain_remix.models.sudormrf import SudoRmRf

__all__ = ["ConformerMasker", "GRUMasker", "SNRPredictor",
           "SpeechBrainSeparator", "SpeechBrainTeacher", "SpectralVAE",
           "SudoRmRf"]
