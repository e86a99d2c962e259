"""Self-supervised enhancement in a shared latent space (Wang, Venkataramani
& Smaragdis, 2020): a clean autoencoder (CAE) learns clean speech, then a
mixture autoencoder (MAE) learns the recordings of the deployment place
under losses that tie its latent space to the CAE's; enhancement decodes
the MAE's code of a mixture with the CAE's decoder, ``E_m -> D_c``.

Two runs of ``train.py``, each with its YAML: :class:`CAEBrain`, then
:class:`MAEBrain` with the trained CAE loaded and frozen.  Spectrograms are
``|STFT| ** magnitude_power`` (1024/256, Hann; the official code's 0.5 by
default) and every squared error is a mean over bins and frames.
"""

import logging

import speechbrain as sb
import torch

from speechbrain_remix.brains.base import EnhancementBrain
from speechbrain_remix.models.latent_ae import kl_term
from speechbrain_remix.pretrained import load_pretrained
from speechbrain_remix.spectral import (
    compress,
    expand,
    spectral_subtraction,
    stft,
    with_phase,
)
from speechbrain_remix.teacher import freeze

logger = logging.getLogger(__name__)


def squared_error(a, b):
    """``||a - b||^2`` per example, as a mean over bins and frames."""
    return (a - b).pow(2).mean(dim=(1, 2))


class LatentEnhancer(torch.nn.Module):
    """``E_m -> D_c`` on waveforms: ``[B, T]`` noisy -> ``[B, T]`` speech,
    resynthesised with the mixture's phase (Sec. 2.1, Fig. 1).

    Example
    -------
    >>> from speechbrain_remix.models.latent_ae import SpectralVAE
    >>> enh = LatentEnhancer(SpectralVAE((513, 8, 4)),
    ...                      SpectralVAE((513, 8, 4))).eval()
    >>> enh(torch.randn(2, 4000)).shape
    torch.Size([2, 4000])
    """

    outputs_speech = True  # for the inference interface

    def __init__(self, mae, cae, magnitude_power=0.5):
        super().__init__()
        self.mae, self.cae = mae, cae
        self.power = magnitude_power
        # how to rebuild it (speechbrain-remix export writes it as YAML)
        self.config = dict(mae=mae, cae=cae, magnitude_power=magnitude_power)

    def forward(self, mix):
        spec = stft(mix)
        code = self.mae.encode(compress(spec.abs(), self.power))
        clean = expand(self.cae.decode(code), self.power)
        return with_phase(clean, spec, mix.shape[-1])


class LatentAEBrain(EnhancementBrain):
    """What both stages share: spectrogram features and a speech-output
    evaluation (``systems`` return speech ``[B, T]``)."""

    @property
    def power(self):
        return getattr(self.hparams, "magnitude_power", 0.5)

    def features(self, wav):
        """``|STFT(wav)| ** power``, ``[B, 513, frames]``."""
        return compress(stft(wav).abs(), self.power)


class CAEBrain(LatentAEBrain):
    """Stage 1: the clean autoencoder on clean speech,
    ``L_CAE = ||C - C^||^2 + lambda1 * L_KL`` (Sec. 2.2.1).

    Evaluation reconstructs the test set's clean speech through the CAE
    (with its own phase): an upper bound of what ``E_m -> D_c`` can give.
    """

    model_key = "cae"
    train_requires = ("clean_wav",)

    def training_forward(self, batch, stage):
        (clean,) = self.crop(batch, ["clean"], stage)
        spec = self.features(clean)
        recon, mu = self.modules.cae(spec)
        return spec, recon, mu

    def training_objectives(self, predictions, batch, stage):
        spec, recon, mu = predictions
        return squared_error(spec, recon).mean() + \
            self.hparams.lambda1 * kl_term(mu)

    def reconstruct(self, clean):
        spec = stft(clean)
        recon, _ = self.modules.cae(compress(spec.abs(), self.power))
        return with_phase(expand(recon, self.power), spec, clean.shape[-1])

    def systems(self):
        return {"cae": self.reconstruct}

    def compute_forward(self, batch, stage):
        if stage != sb.Stage.TEST:
            return self.training_forward(batch, stage)
        return self.reconstruct(batch.clean.data.to(self.device))


class MAEBrain(LatentAEBrain):
    """Stage 2: the mixture autoencoder on noisy recordings, with the
    trained CAE loaded from ``cae_source`` and frozen (eval mode, so its
    batch-norm statistics stay; no gradient to its weights; not in
    ``modules``, so neither in the optimizer nor put back in train mode by
    ``fit``).  For a mixture ``M`` (Sec. 2.2.2, Eqs. 1-2):

    * ``h_M = E_m(M)``, ``M^ = D_m(h_M)``: ``L_M = ||M - M^||^2``;
    * ``C_M = D_c(h_M)``, ``h^_M = E_c(C_M)``, ``M^^ = D_m(h^_M)``:
      ``L_cyc = ||M - M^^||^2 + lambda2 ||h_M - h^_M||^2`` (Eq. 1);

    for a noise-only clip ``M_N`` (``noise_only`` column of the manifest):

    * ``L_N = ||M_N - D_m(h_N)||^2 + lambda3 ||D_c(h_N)||^2`` (Eq. 2);

    ``L_MAE = L_M + cycle_weight * L_cyc + L_N + lambda4 * L_KL``, with
    ``cycle_weight`` 1 in the paper (the official code weights its cycle
    term 10).  Evaluation: mixture, spectral subtraction (Table 1's
    baseline) and ``E_m -> D_c`` with the mixture's phase.
    """

    model_key = "mae"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cae = self.hparams.cae_model
        self.cae_file = load_pretrained(cae, self.hparams.cae_source,
                                        self.hparams.cae_key)
        self.cae = freeze(cae.to(self.device))
        if self.checkpointer is not None:
            # part of the enhancer: a run folder holds all it needs
            self.checkpointer.add_recoverable("cae", self.cae)

    def training_forward(self, batch, stage):
        (mix,) = self.crop(batch, ["mix"], stage)
        flags = getattr(batch, "noise_only", None)  # else: all mixtures
        noise_only = torch.tensor([float(f) for f in flags]) \
            if flags is not None else torch.zeros(len(mix))
        self.cae.eval()  # frozen statistics, whatever fit() does
        mae, cae = self.modules.mae, self.cae
        spec = self.features(mix)
        mu = mae.encode(spec)
        code = mae.sample(mu)
        clean = cae.decode(code)  # C_M (or C_N)
        mu_cycle = cae.encode(clean)  # h^_M: gradients flow, weights fixed
        return dict(spec=spec, mu=mu, recon=mae.decode(code), clean=clean,
                    mu_cycle=mu_cycle, cycle=mae.decode(mu_cycle),
                    noise_only=noise_only.to(self.device).bool())

    def training_objectives(self, out, batch, stage):
        hp = self.hparams
        noise = out["noise_only"].float()
        speech = 1.0 - noise
        recon = squared_error(out["spec"], out["recon"])  # L_M, L_N's 1st
        cycle = squared_error(out["spec"], out["cycle"]) + hp.lambda2 * \
            squared_error(out["mu"], out["mu_cycle"])  # Eq. 1
        silence = out["clean"].pow(2).mean(dim=(1, 2))  # Eq. 2, C_N -> 0
        per_example = recon + hp.cycle_weight * cycle * speech \
            + hp.lambda3 * silence * noise
        return per_example.mean() + hp.lambda4 * kl_term(out["mu"])

    def enhancer(self):
        return LatentEnhancer(self.modules.mae, self.cae, self.power)

    def evaluated_model(self):
        return "sse"

    def inference_module(self):
        return self.enhancer()

    def systems(self):
        enhancer = self.enhancer()
        return {
            "mixture": lambda mix: mix,
            "spectral_subtraction": spectral_subtraction,
            "sse": enhancer,
        }
