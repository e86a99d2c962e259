"""The recurrent models of personalized speech enhancement (Sivaraman, Kim
& Kim, 2021, Sec. 3.3): small GRU maskers and the SNR predictor.

Both read the linear magnitude of a 1024-point Hann STFT with hop 256
(:mod:`speechbrain_remix.spectral`), one GRU step per frame.
"""

import torch
from torch import nn

from speechbrain_remix.spectral import istft, stft


class GRUMasker(nn.Module):
    """A GRU time-frequency masker (Sec. 3.3): ``num_layers`` GRU layers of
    ``hidden`` units on ``|STFT|``, a linear layer to one sigmoid mask value
    per bin, and the inverse STFT of the masked mixture with its own
    phase.

    The paper's three maskers have 2 layers of 64, 128 or 256 units; with
    a 513-bin STFT they have 169,473, 412,161 and 1,118,721 parameters
    (Sec. 4: 169 k and 412 k).  Like every separation model of this
    package it maps ``[B, T]`` to ``[B, 2, T]``: the masked speech and the
    rest of the mixture (the noise), so that it can also be a RemixIT
    student or teacher.

    Example
    -------
    >>> model = GRUMasker(hidden=64)
    >>> sum(p.numel() for p in model.parameters())
    169473
    >>> model(torch.randn(2, 16000)).shape
    torch.Size([2, 2, 16000])
    """

    def __init__(self, hidden=64, num_layers=2, n_fft=1024, hop=256,
                 num_sources=2):
        super().__init__()
        if num_sources != 2:
            raise ValueError("a GRUMasker outputs speech and noise: "
                             "num_sources must be 2")
        self.config = dict(hidden=hidden, num_layers=num_layers, n_fft=n_fft,
                           hop=hop, num_sources=num_sources)
        self.n_fft, self.hop = n_fft, hop
        bins = n_fft // 2 + 1
        self.gru = nn.GRU(bins, hidden, num_layers=num_layers,
                          batch_first=True)
        self.mask = nn.Linear(hidden, bins)

    def forward(self, mixture):
        spec = stft(mixture, self.n_fft, self.hop)  # [B, F, J]
        hidden, _ = self.gru(spec.abs().transpose(1, 2))
        mask = torch.sigmoid(self.mask(hidden)).transpose(1, 2)
        speech = istft(mask * spec, mixture.shape[-1], self.n_fft, self.hop)
        return torch.stack([speech, mixture - speech], dim=1)


class SNRPredictor(nn.Module):
    """The SNR predictor ``h`` (Sec. 2.3, 3.3): a GRU of ``num_layers``
    layers of ``hidden`` units (the paper: 3 x 1024) on ``|STFT|`` and a
    linear layer giving one SNR (dB) per frame, the SegSNR of Eq. 7 it
    is trained to regress (Eqs. 8-10).

    The waveform is first divided by its standard deviation (our choice;
    the official code reads the raw ``|STFT|``): SegSNR does not depend on
    the level of a recording, so neither should its estimate, and RemixIT
    applies the predictor to a teacher's estimates in its normalized
    domain.

    Example
    -------
    >>> h = SNRPredictor(hidden=32, num_layers=1)
    >>> h(torch.randn(3, 16000)).shape
    torch.Size([3, 63])
    >>> x = torch.randn(1, 8000)
    >>> torch.allclose(h(x), h(5 * x), atol=1e-5)  # level-independent
    True
    """

    def __init__(self, hidden=1024, num_layers=3, n_fft=1024, hop=256):
        super().__init__()
        self.config = dict(hidden=hidden, num_layers=num_layers, n_fft=n_fft,
                           hop=hop)
        self.n_fft, self.hop = n_fft, hop
        self.gru = nn.GRU(n_fft // 2 + 1, hidden, num_layers=num_layers,
                          batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, wav):
        wav = wav / (wav.std(-1, keepdim=True) + 1e-8)
        magnitude = stft(wav, self.n_fft, self.hop).abs()
        hidden, _ = self.gru(magnitude.transpose(1, 2))
        return self.out(hidden).squeeze(-1)
