"""One Brain per training scheme, sharing :class:`EnhancementBrain`'s
model application and evaluation path."""

from speechbrain_remix.brains.base import EnhancementBrain, separate
from speechbrain_remix.brains.latent import CAEBrain, MAEBrain
from speechbrain_remix.brains.mixit import MixITBrain
from speechbrain_remix.brains.personalized import PseudoSEBrain
from speechbrain_remix.brains.purification import SNRPredictorBrain
from speechbrain_remix.brains.remixit import RemixITBrain
from speechbrain_remix.brains.self_remixing import SelfRemixingBrain
from speechbrain_remix.brains.supervised import SupervisedBrain

__all__ = [
    "CAEBrain",
    "MAEBrain",
    "EnhancementBrain",
    "MixITBrain",
    "PseudoSEBrain",
    "RemixITBrain",
    "SelfRemixingBrain",
    "SNRPredictorBrain",
    "SupervisedBrain",
    "separate",
]
