"""Personalized speech enhancement by pseudo speech enhancement, with or
without data purification (Sivaraman, Kim & Kim, 2021).

One Brain trains the five configurations of Sec. 3.1, chosen in the YAML:

==============  ===============  ===========  ===============================
configuration   source_column    purify       init_source
==============  ===============  ===========  ===============================
SE              ``clean_wav``    False        none (speaker-agnostic ``G``)
PSE             ``mix_wav``      False        none
PSE+DP          ``mix_wav``      True         none
SE->PSE         ``mix_wav``      False        the SE run's ``save`` folder
SE->PSE+DP      ``mix_wav``      True         the SE run's ``save`` folder
==============  ===============  ===========  ===============================
"""

import os

from speechbrain_remix.brains.base import EnhancementBrain, separate
from speechbrain_remix.brains.purification import (
    attach_snr_predictor,
    purification_weights,
)
from speechbrain_remix.data import DataError, NoisePool
from speechbrain_remix.pretrained import load_pretrained
from speechbrain_remix.segsnr import seg_mse

SOURCES = {"clean_wav": "clean", "mix_wav": "mix"}


class PseudoSEBrain(EnhancementBrain):
    """Trains ``modules.model`` to remove injected training noise from its
    source signals.

    For a batch of sources ``v`` (1 s crops of ``source_column``):

    * SE: ``v = s``, clean speech of many speakers (Eqs. 1-2);
    * PSE: ``v = s~``, the test speaker's noisy recordings, the
      premixtures of Eq. 4, used as pseudo-sources (the model never sees
      their clean speech);

    training noise ``n`` (``noise_csv``) is scaled, never the source, to an
    SNR uniform in ``snr_range`` (the paper: [-5, 5] dB) and added,
    ``x = v + n`` (Eqs. 1, 5), and the model's speech estimate ``y`` is
    regressed onto ``v``: the MSE of Eq. 3 (Eqs. 2, 6), or with ``purify``
    the weighted segmental MSE of Eq. 12, whose frame weights
    ``p = sigmoid(h(v))`` (Eq. 11) come from the frozen SNR predictor
    ``snr_predictor`` trained by :class:`SNRPredictorBrain`.  With
    ``init_source`` the model starts from a trained SE model (SE->PSE).
    Noise excerpts, offsets and SNRs are drawn from the Brain's
    checkpointed generator, so a resumed run continues exactly; validation
    draws them from ``seed`` afresh each epoch, so that its losses compare.
    """

    @classmethod
    def train_columns(cls, hparams):
        column = hparams["source_column"]
        if column not in SOURCES:
            raise ValueError(f"source_column: {column!r}; use clean_wav (SE)"
                             " or mix_wav (pseudo speech enhancement)")
        return (column,)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hp = self.hparams
        self.train_columns({"source_column": hp.source_column})
        if not os.path.isfile(hp.noise_csv):
            raise DataError(
                f"noise_csv {hp.noise_csv}: not found; pseudo speech "
                "enhancement adds training noise to the recordings: give a "
                "noise folder (--noise_folder for your own recordings) or "
                "run the data preparation")
        self.noise_pool = NoisePool(hp.noise_csv, hp.data_folder,
                                    hp.sample_rate)
        if hp.init_source:  # SE -> PSE: a checkpoint overrides on resume
            self.init_file = load_pretrained(hp.model, hp.init_source,
                                             "model")
        self.snr_predictor = attach_snr_predictor(self) if hp.purify \
            else None

    def training_forward(self, batch, stage):
        (source,) = self.crop(batch, [SOURCES[self.hparams.source_column]],
                              stage)
        generator = self.draws(stage)
        noisy, _ = self.noise_pool.add_to(source, self.hparams.snr_range,
                                          generator)
        estimate = separate(self.modules.model, noisy)[:, 0]
        weights = None
        if self.snr_predictor is not None:
            weights = purification_weights(self.snr_predictor, source)
        return estimate, source, weights

    def training_objectives(self, predictions, batch, stage):
        estimate, source, weights = predictions
        if weights is None:  # Eq. 3
            return (estimate - source).pow(2).mean()
        return seg_mse(estimate, source, weights).mean()  # Eq. 12
