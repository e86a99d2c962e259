"""The clean and mixture autoencoders of self-supervised speech enhancement
in a shared latent space (Wang, Venkataramani & Smaragdis, 2020).

Both are variational autoencoders of magnitude spectrograms ``[B, F, T]``
(``F = 513`` bins of a 1024-point STFT, Sec. 3.1) made of 1-D convolutions
over time with the frequency bins as channels:

* the clean autoencoder (CAE): ``513 -> 512 -> 256 -> 128 -> 64``;
* the mixture autoencoder (MAE): ``513 -> 512 -> 400 -> 300 -> 200 -> 100
  -> 64``;

kernel 7, stride 1, each convolution followed by batch norm and softplus;
the encoder ends with the "EQ norm" (Sec. 3.1: the mean over the frames of
each channel is subtracted, per spectrogram; the official code divides by
it instead, ``eq_norm="divide"``); the decoder mirrors the encoder with
transposed convolutions, its output layer without batch norm (our choice:
with it, each bin's output level follows the batch's statistics; on the
demo, that model with the official 1e-4 learning rate kept a
reconstruction error of 0.44, this one with 1e-3 reached 0.06: the two
changes were not measured apart).  The latent code is the encoder's
output ``mu``; in training ``z = mu + N(0, I)`` is decoded (a
unit-variance posterior, as the official code) and :func:`kl_term` pulls
``mu`` to zero.
"""

import torch
from torch import nn

CAE_DIMS = (513, 512, 256, 128, 64)
MAE_DIMS = (513, 512, 400, 300, 200, 100, 64)


def eq_norm(x, mode="subtract"):
    """Per example and channel, removes the mean over frames
    (``subtract``, Sec. 3.1) or divides by it (``divide``, official code).

    Example
    -------
    >>> x = torch.rand(2, 3, 5) + 1
    >>> eq_norm(x).mean(-1).abs().max() < 1e-6
    tensor(True)
    """
    mean = x.mean(dim=-1, keepdim=True)
    if mode == "subtract":
        return x - mean
    if mode == "divide":
        return x / (mean + 1e-8)
    raise ValueError(f"eq_norm must be 'subtract' or 'divide', got {mode}")


def kl_term(mu):
    """``mean(mu^2)``: the KL term of a unit-variance Gaussian posterior
    ``N(mu, I)`` against ``N(0, I)`` (twice the KL divergence per element;
    the official code's form, with which its weights were tuned).  Zero
    at ``mu = 0``.

    Example
    -------
    >>> kl_term(torch.zeros(2, 4, 3)).item(), kl_term(torch.ones(1, 2)).item()
    (0.0, 1.0)
    """
    return mu.pow(2).mean()


def _block(conv, channels):
    return nn.Sequential(conv, nn.BatchNorm1d(channels), nn.Softplus())


class SpectralVAE(nn.Module):
    """A convolutional VAE of magnitude spectrograms.

    Arguments
    ---------
    dims : sequence of int
        Channels from the input bins to the latent size, e.g. ``CAE_DIMS``.
    kernel_size : int
        Width of every convolution (7 in the paper), "same" padding.
    eq_norm_mode : str
        ``subtract`` (the paper) or ``divide`` (the official code).
    latent_noise : float
        Standard deviation of the posterior sampled in training (1: a
        unit-variance posterior, as the official code; 0: a plain
        autoencoder).

    Example
    -------
    >>> vae = SpectralVAE((9, 8, 4))
    >>> spec = torch.rand(2, 9, 20)
    >>> recon, mu = vae(spec)
    >>> recon.shape, mu.shape
    (torch.Size([2, 9, 20]), torch.Size([2, 4, 20]))
    >>> bool((recon >= 0).all())  # softplus: a magnitude
    True
    """

    def __init__(self, dims=CAE_DIMS, kernel_size=7, eq_norm_mode="subtract",
                 latent_noise=1.0):
        super().__init__()
        dims = [int(d) for d in dims]
        self.config = dict(dims=dims, kernel_size=kernel_size,
                           eq_norm_mode=eq_norm_mode,
                           latent_noise=latent_noise)
        self.latent_noise = latent_noise
        pad = kernel_size // 2
        self.encoder = nn.Sequential(*[
            _block(nn.Conv1d(a, b, kernel_size, padding=pad), b)
            for a, b in zip(dims[:-1], dims[1:])])
        rev = dims[::-1]
        layers = [_block(nn.ConvTranspose1d(a, b, kernel_size, padding=pad),
                         b) for a, b in zip(rev[:-2], rev[1:-1])]
        # the output layer: softplus without batch norm, which would set
        # every bin's output level to one learnt constant per batch
        layers.append(nn.Sequential(
            nn.ConvTranspose1d(rev[-2], rev[-1], kernel_size, padding=pad),
            nn.Softplus()))
        self.decoder = nn.Sequential(*layers)
        self.eq_norm_mode = eq_norm_mode

    def encode(self, spec):
        """``mu = E(spec)``: ``[B, F, T]`` -> ``[B, latent, T]``."""
        return eq_norm(self.encoder(spec), self.eq_norm_mode)

    def decode(self, z):
        """``D(z)``: ``[B, latent, T]`` -> ``[B, F, T]``, non-negative."""
        return self.decoder(z)

    def sample(self, mu):
        """``z = mu + latent_noise * N(0, I)`` in training, ``mu``
        otherwise."""
        if not self.training or not self.latent_noise:
            return mu
        return mu + self.latent_noise * torch.randn_like(mu)

    def forward(self, spec):
        """Reconstruction and latent mean."""
        mu = self.encode(spec)
        return self.decode(self.sample(mu)), mu
