"""The recurrent models of personalized speech enhancement (Sivaraman, Kim
& Kim, 2021, Sec. 3.3): small GRU maskers and the SNR predictor.

Both read the linear magnitude of a 1024-point Hann STFT with hop 256
(:mod:`speechbrain_remix.spectral`), one GRU step per frame.  The masker's
``causal=True`` variant frames the signal without look-ahead and streams
(:mod:`speechbrain_remix.streaming`).
"""

import torch
from torch import nn

from speechbrain_remix.spectral import istft, stft
from speechbrain_remix.streaming import (
    CausalFrames,
    Delay,
    FrameSynthesis,
    StreamingGRU,
    is_streaming,
)


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

    With ``causal=True`` frame ``j`` ends with the last sample of hop
    ``j`` instead of being centred on it, each frame's magnitudes are
    divided by their RMS (the model is then scale-equivariant, as a
    stream of unknown level needs), and the synthesis is an overlap-add:
    the model streams with ``stream_block = hop`` and ``stream_delay =
    n_fft - hop``, an algorithmic latency of ``n_fft``
    samples (64 ms for the paper's STFT at 16 kHz; 20 ms with ``n_fft =
    320, hop = 160``).

    Example
    -------
    >>> model = GRUMasker(hidden=64)
    >>> sum(p.numel() for p in model.parameters())
    169473
    >>> model(torch.randn(2, 16000)).shape
    torch.Size([2, 2, 16000])
    >>> causal = GRUMasker(hidden=8, n_fft=320, hop=160, causal=True)
    >>> causal.stream_block + causal.stream_delay  # latency: 20 ms
    320
    >>> x = torch.randn(1, 4000)
    >>> n = 1920 - causal.stream_delay  # no sample reads a later hop
    >>> torch.allclose(causal(x[:, :1920])[..., :n], causal(x)[..., :n],
    ...                atol=1e-5)
    True
    """

    def __init__(self, hidden=64, num_layers=2, n_fft=1024, hop=256,
                 num_sources=2, causal=False):
        super().__init__()
        if num_sources != 2:
            raise ValueError("a GRUMasker outputs speech and noise: "
                             "num_sources must be 2")
        self.config = dict(hidden=hidden, num_layers=num_layers, n_fft=n_fft,
                           hop=hop, num_sources=num_sources, causal=causal)
        self.n_fft, self.hop, self.causal = n_fft, hop, causal
        self.num_sources = num_sources
        bins = n_fft // 2 + 1
        gru = nn.GRU(bins, hidden, num_layers=num_layers, batch_first=True)
        self.gru = StreamingGRU(gru) if causal else gru
        self.mask = nn.Linear(hidden, bins)
        if causal:
            window = torch.hann_window(n_fft)
            self.frames = CausalFrames(n_fft, hop, window)
            self.synthesis = FrameSynthesis(n_fft, hop, window)
            self.stream_block, self.stream_delay = hop, n_fft - hop
            self.delay = Delay(self.stream_delay)  # the mixture, aligned

    def forward(self, mixture):
        if self.causal:
            return self._causal_forward(mixture)
        spec = stft(mixture, self.n_fft, self.hop)  # [B, F, J]
        hidden, _ = self.gru(spec.abs().transpose(1, 2))
        mask = torch.sigmoid(self.mask(hidden)).transpose(1, 2)
        speech = istft(mask * spec, mixture.shape[-1], self.n_fft, self.hop)
        return torch.stack([speech, mixture - speech], dim=1)

    def _causal_forward(self, mixture):
        """As :meth:`forward`, without look-ahead; inside a stream the
        block's output comes ``stream_delay`` samples late."""
        length = mixture.shape[-1]
        x = mixture
        if not is_streaming(self.synthesis):  # frames after the end
            pad = (-length - self.stream_delay) % self.hop
            x = nn.functional.pad(mixture, (0, pad + self.stream_delay))
        spec = torch.fft.rfft(self.frames(x))  # [B, J, F]
        # a stream's level is not known ahead (so no normalization by the
        # recording's std): each frame's magnitudes are divided by their
        # RMS, which makes the masks level-independent and the model
        # scale-equivariant
        magnitude = spec.abs()
        magnitude = magnitude / (magnitude.pow(2).mean(-1, keepdim=True)
                                 .sqrt() + 1e-8)
        mask = torch.sigmoid(self.mask(self.gru(magnitude)))
        speech = self.synthesis(torch.fft.irfft(mask * spec, self.n_fft))
        speech = speech[..., :length]
        return torch.stack([speech, self.delay(mixture) - speech], 1)


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
