"""Sudo rm -rf with group communication (Section III-B of RemixIT).

The separation model of RemixIT: a learned analysis basis (512 filters of
41 taps, hop 20), a mask estimator made of ``U`` U-ConvBlocks, and a learned
synthesis basis.  Each U-ConvBlock analyses the features at ``depth``
resolutions (strided depthwise convolutions, then nearest upsampling and
summation).  In the group-communication variant (Luo et al., 2021) the
channels are split into ``G`` groups that share one small U-ConvBlock, and a
transform-average-concatenate (TAC) module exchanges information between
groups before it, which makes the model very small (0.56 M parameters for
``U = 8``).

``causal=True`` builds the streaming variant (beyond the paper, for
on-device enhancement): no layer looks ahead.  The analysis filterbank
and every depthwise convolution see only past inputs
(:class:`~speechbrain_remix.streaming.CausalConv1d`), the synthesis is
an overlap-add of the frames so far, global layer norm (which reads the
whole recording) becomes a per-frame layer norm over channels, and the
nearest upsampling of a U-ConvBlock copies coarse frame ``i`` to fine
frames ``2i`` and ``2i + 1``, which it was computed before.  Such a model
runs block by block with a
:class:`~speechbrain_remix.streaming.StreamingSeparator` and equals its
offline output.
"""

import torch
from torch import nn

from speechbrain_remix.streaming import (
    CausalConv1d,
    ChannelNorm,
    OverlapAddSynthesis,
    is_streaming,
    transposed_conv1d,
)


def global_layer_norm(channels):
    """Global layer norm (over channels and time, per-channel affine).

    ``GroupNorm`` with a single group is exactly gLN and runs fused.
    """
    return nn.GroupNorm(1, channels, eps=1e-8)


def layer_norm(channels, causal):
    """gLN, or per-frame channel norm for a causal model."""
    return ChannelNorm(channels) if causal else global_layer_norm(channels)


class UConvBlock(nn.Module):
    """Successive down-sampling and up-sampling of a feature map.

    Arguments
    ---------
    channels : int
        Input/output channels.
    hidden : int
        Channels inside the block.
    depth : int
        Number of resolutions (``depth - 1`` stride-2 down-samplings).
    causal : bool
        Causal convolutions and per-frame norms (see the module).

    Example
    -------
    >>> block = UConvBlock(16, 32, depth=3)
    >>> block(torch.randn(2, 16, 40)).shape
    torch.Size([2, 16, 40])
    """

    def __init__(self, channels, hidden, depth=5, causal=False):
        super().__init__()
        self.depth = depth
        self.project = nn.Sequential(
            nn.Conv1d(channels, hidden, 1),
            layer_norm(hidden, causal),
            nn.PReLU(),
        )
        self.levels = nn.ModuleList(
            nn.Sequential(
                self._depthwise(hidden, 1 if i == 0 else 2, causal),
                layer_norm(hidden, causal),
            )
            for i in range(depth)
        )
        self.merge = nn.Sequential(layer_norm(hidden, causal), nn.PReLU())
        self.back = nn.Conv1d(hidden, channels, 1)

    @staticmethod
    def _depthwise(channels, stride, causal):
        if causal:  # output frame j reads input frames j * stride - 4 .. j
            return CausalConv1d(channels, channels, 5, stride=stride,
                                groups=channels)
        return nn.Conv1d(channels, channels, kernel_size=5, stride=stride,
                         padding=2, groups=channels)

    def forward(self, x):
        """``x``: ``[B, C, L]`` with ``L`` divisible by ``2**(depth-1)``."""
        outputs = [self.levels[0](self.project(x))]
        for level in self.levels[1:]:
            outputs.append(level(outputs[-1]))
        # Coarse-to-fine fusion: upsample and add to the next finer level.
        fused = outputs.pop()
        while outputs:
            fused = outputs.pop() + nn.functional.interpolate(
                fused, scale_factor=2.0, mode="nearest"
            )
        return self.back(self.merge(fused)) + x


class TAC(nn.Module):
    """Transform-average-concatenate across groups.

    Arguments
    ---------
    channels : int
        Channels per group.
    hidden : int
        Hidden size of the transforms.
    causal : bool
        Per-frame norm instead of gLN.

    Example
    -------
    >>> tac = TAC(4, 12)
    >>> tac(torch.randn(2, 3, 4, 10)).shape
    torch.Size([2, 3, 4, 10])
    """

    def __init__(self, channels, hidden, causal=False):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(channels, hidden), nn.PReLU())
        self.average = nn.Sequential(nn.Linear(hidden, hidden), nn.PReLU())
        self.concat = nn.Sequential(
            nn.Linear(2 * hidden, channels), nn.PReLU()
        )
        self.norm = layer_norm(channels, causal)

    def forward(self, x):
        """``x``: ``[B, G, C, L]`` -> same shape.

        Computed channels first (the linear layers as 1x1 convolutions on
        ``[B*G, C, L]``), so that nothing is permuted or copied, and the
        concatenation ``[h, mean]`` as the sum of the two halves of the
        last linear layer."""
        batch, groups, channels, length = x.shape
        first, second, third = (self.transform[0], self.average[0],
                                self.concat[0])
        hidden = first.out_features
        h = self.transform[1](_pointwise(
            x.reshape(batch * groups, channels, length), first.weight,
            first.bias))  # [B*G, H, L]
        mean = h.view(batch, groups, hidden, length).mean(1)  # [B, H, L]
        mean = self.average[1](_pointwise(mean, second.weight,
                                          second.bias))
        y = _pointwise(h, third.weight[:, :hidden]).view_as(x) + _pointwise(
            mean, third.weight[:, hidden:], third.bias).unsqueeze(1)
        y = self.concat[1](y).view(batch * groups, channels, length)
        return x + self.norm(y).view_as(x)


def _pointwise(x, weight, bias=None):
    """A linear layer's ``weight`` ``[out, in]`` applied to ``[N, in, L]``
    as a 1x1 convolution."""
    return nn.functional.conv1d(x, weight.unsqueeze(-1), bias)


class GroupCommBlock(nn.Module):
    """A U-ConvBlock shared by ``groups`` channel groups, after a TAC.

    Example
    -------
    >>> block = GroupCommBlock(32, 64, depth=3, groups=4)
    >>> block(torch.randn(2, 32, 40)).shape
    torch.Size([2, 32, 40])
    """

    def __init__(self, channels, hidden, depth, groups, causal=False):
        super().__init__()
        if channels % groups or hidden % groups:
            raise ValueError(
                f"channels ({channels}) and hidden ({hidden}) must be "
                f"divisible by groups ({groups})"
            )
        self.groups = groups
        self.tac = TAC(channels // groups, 3 * channels // groups, causal)
        self.block = UConvBlock(channels // groups, hidden // groups, depth,
                                causal)

    def forward(self, x):
        batch, channels, length = x.shape
        x = self.tac(x.view(batch, self.groups, -1, length))
        x = self.block(x.view(batch * self.groups, -1, length))
        return x.view(batch, channels, length)


class SudoRmRf(nn.Module):
    """Group-communication Sudo rm -rf separation model.

    Defaults are the RemixIT configuration (Section III-B): 512 bases of 41
    taps with hop 20, ``U = 8`` blocks of depth 5, 256/512 channels in 16
    groups.

    Arguments
    ---------
    num_sources : int
        Number of output slots ``M`` (2: speech + noise; 3 for MixIT).
    num_blocks : int
        Number of U-ConvBlocks ``U`` (8, 16, 32 in the paper).
    enc_num_basis : int
        Number of analysis/synthesis basis functions.
    enc_kernel_size : int
        Basis length in samples (odd).
    enc_hop : int, optional
        Hop size (default ``enc_kernel_size // 2``).
    out_channels : int
        Channels between blocks.
    in_channels : int
        Channels inside the blocks.
    upsampling_depth : int
        Resolutions per U-ConvBlock.
    groups : int
        Channel groups of the group communication.
    causal : bool
        The streaming variant (see the module): its algorithmic latency
        is a block of ``stream_block`` samples (``hop * 2 **
        (upsampling_depth - 1)``) plus ``stream_delay = enc_kernel_size -
        hop`` samples of synthesis overlap.

    Example
    -------
    >>> model = SudoRmRf(num_blocks=2, enc_num_basis=64, out_channels=32,
    ...                  in_channels=64, upsampling_depth=3, groups=4)
    >>> model(torch.randn(2, 1000)).shape
    torch.Size([2, 2, 1000])
    >>> causal = SudoRmRf(num_blocks=2, enc_num_basis=64, out_channels=32,
    ...                   in_channels=64, upsampling_depth=3, groups=4,
    ...                   causal=True)
    >>> causal.stream_block, causal.stream_delay  # 5 ms + 1.3 ms at 16 kHz
    (80, 21)
    >>> x = torch.randn(1, 1000)  # no output sample reads a later input
    >>> n = 500 - causal.stream_delay  # but the frames overlapping it
    >>> torch.allclose(causal(x[:, :500])[..., :n], causal(x)[..., :n],
    ...                atol=1e-5)
    True
    """

    def __init__(
        self,
        num_sources=2,
        num_blocks=8,
        enc_num_basis=512,
        enc_kernel_size=41,
        enc_hop=None,
        out_channels=256,
        in_channels=512,
        upsampling_depth=5,
        groups=16,
        causal=False,
    ):
        super().__init__()
        if enc_kernel_size % 2 == 0:
            raise ValueError("enc_kernel_size must be odd")
        self.config = dict(
            num_sources=num_sources, num_blocks=num_blocks,
            enc_num_basis=enc_num_basis, enc_kernel_size=enc_kernel_size,
            enc_hop=enc_hop, out_channels=out_channels,
            in_channels=in_channels, upsampling_depth=upsampling_depth,
            groups=groups, causal=causal,
        )
        self.causal = causal
        self.num_sources = num_sources
        self.num_blocks = num_blocks
        self.enc_num_basis = enc_num_basis
        self.hop = enc_hop or enc_kernel_size // 2
        # Frames must halve cleanly (depth - 1) times inside the blocks.
        self.pad_multiple = self.hop * 2 ** (upsampling_depth - 1)
        padding = enc_kernel_size // 2
        if causal:  # frame j ends with the last sample of hop j
            self.encoder = CausalConv1d(
                1, enc_num_basis, enc_kernel_size, stride=self.hop,
                bias=False, context=enc_kernel_size - self.hop,
            )
        else:
            self.encoder = nn.Conv1d(
                1, enc_num_basis, enc_kernel_size, stride=self.hop,
                padding=padding, bias=False,
            )
        self.norm = layer_norm(enc_num_basis, causal)
        self.bottleneck = nn.Conv1d(enc_num_basis, out_channels, 1)
        self.blocks = nn.Sequential(
            *[
                GroupCommBlock(out_channels, in_channels, upsampling_depth,
                               groups, causal)
                for _ in range(num_blocks)
            ]
        )
        self.mask = nn.Sequential(
            nn.PReLU(),
            nn.Conv1d(out_channels, num_sources * enc_num_basis, 1),
            nn.ReLU(),
        )
        if causal:
            self.decoder = OverlapAddSynthesis(
                num_sources * enc_num_basis, num_sources, enc_kernel_size,
                self.hop,
            )
            self.stream_block = self.pad_multiple
            self.stream_delay = self.decoder.overlap
        else:
            self.decoder = nn.ConvTranspose1d(
                num_sources * enc_num_basis, num_sources, enc_kernel_size,
                stride=self.hop, padding=padding,
                output_padding=self.hop - 1, bias=False,
            )
        for layer in (self.encoder, self.decoder):
            layer = getattr(layer, "conv", layer)
            nn.init.xavier_uniform_(layer.weight)

    def with_depth(self, num_blocks):
        """A freshly initialised model of the same configuration with
        ``num_blocks`` U-ConvBlocks (a new, deeper student, Fig. 2).

        Example
        -------
        >>> SudoRmRf(num_blocks=2, groups=4).with_depth(3).num_blocks
        3
        """
        return type(self)(**{**self.config, "num_blocks": num_blocks})

    @torch.no_grad()
    def zero_output_layer(self):
        """Zeroes the mask layer: every output becomes silent, so that after
        mixture consistency each is ``mixture / M`` (Sec. 2.3 of Self-Remixing:
        a start from which pseudo-mixtures are mixtures of mixtures)."""
        self.mask[1].weight.zero_()
        self.mask[1].bias.zero_()

    def forward(self, mixture):
        """Separates ``mixture`` ``[B, T]`` into ``[B, M, T]`` sources.

        Inside a stream (a causal model's block), returns the block's
        output ``stream_delay`` samples late (see
        :class:`~speechbrain_remix.streaming.OverlapAddSynthesis`)."""
        length = mixture.shape[-1]
        pad = (-length) % self.pad_multiple
        if self.causal and is_streaming(self.decoder):
            if pad:
                raise ValueError(f"a streamed block must be a multiple of "
                                 f"{self.pad_multiple} samples")
            return self._separate(mixture.unsqueeze(1))
        if self.causal:  # frames after the end complete the last samples
            pad = (-length - self.decoder.overlap) % self.pad_multiple + \
                self.decoder.overlap
        x = nn.functional.pad(mixture, (0, pad)).unsqueeze(1)
        return self._separate(x)[..., :length]

    def _separate(self, x):
        basis = self.encoder(x)  # [B, N, F]
        features = self.blocks(self.bottleneck(self.norm(basis)))
        masks = self.mask(features).view(
            basis.shape[0], self.num_sources, self.enc_num_basis, -1
        )
        masked = (masks * basis.unsqueeze(1)).flatten(1, 2)  # [B, MN, F]
        if self.causal:
            return self.decoder(masked)
        # self.decoder(masked), computed faster (see transposed_conv1d)
        out = transposed_conv1d(masked, self.decoder.weight, self.hop)
        start = self.decoder.padding[0]  # where ConvTranspose1d crops
        end = start + masked.shape[-1] * self.hop
        if end > out.shape[-1]:  # output_padding past the last frame: zeros
            out = nn.functional.pad(out, (0, end - out.shape[-1]))
        return out[..., start:end]
