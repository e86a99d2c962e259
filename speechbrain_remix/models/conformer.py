"""Conformer TF-masker (Section 3.2 of Saijo & Ogawa, "Remixing-based
Unsupervised Source Separation from Scratch", Interspeech 2023).

The separation model of the paper: the mixture's STFT (FFT size 512, Hann
window of 400 samples, hop 160) gives a log-magnitude (or magnitude)
spectrogram, a linear layer projects each frame to ``d_model``, a stack of
Conformer encoder layers (16 layers, 4 heads, ``d_model`` 256, FFN 1024)
processes the frames, and a final linear layer predicts ``N`` real-valued
masks per TF bin.  The masks multiply the complex mixture STFT and the
inverse STFT gives the ``N`` waveforms.

The Conformer layers are SpeechBrain's
(:class:`speechbrain.lobes.models.transformer.Conformer.ConformerEncoder`)
with Transformer-XL relative-position attention, as in the authors' model.
As in the paper, the normalisation after the depthwise convolution of each
convolution module (batch norm in the original Conformer) is a group norm
with eight groups.
"""

import torch
from speechbrain.lobes.models.transformer.Conformer import (
    ConformerEncoder,
    ConvolutionModule,
)
from speechbrain.nnet.attention import RelPosEncXL
from torch import nn


class ChannelsLastGroupNorm(nn.GroupNorm):
    """``GroupNorm`` of ``[B, T, C]`` inputs (statistics over the channels
    of a group and all frames of an utterance).

    Example
    -------
    >>> norm = ChannelsLastGroupNorm(2, 8)
    >>> norm(torch.randn(3, 5, 8)).shape
    torch.Size([3, 5, 8])
    """

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def use_group_norm(encoder, groups):
    """Replaces the normalisation after the depthwise convolution of every
    Conformer convolution module of ``encoder`` by a group norm, in place.

    The original Conformer has a ``BatchNorm1d`` there, on ``[B, C, T]``
    (SpeechBrain < 0.5.12); SpeechBrain 1.x has a ``LayerNorm`` on
    ``[B, T, C]`` instead.  Either becomes ``GroupNorm(groups, C)`` acting on
    the same layout (Section 3.2 of the paper: eight groups).  Any other
    ``BatchNorm1d`` in ``encoder`` is replaced as well.

    Arguments
    ---------
    encoder : torch.nn.Module
        Holds SpeechBrain ``ConvolutionModule`` s (e.g. a
        ``ConformerEncoder``).
    groups : int
        Number of groups; must divide the number of channels.

    Returns
    -------
    torch.nn.Module
        ``encoder`` itself.

    Example
    -------
    >>> enc = ConformerEncoder(1, 16, 32, 2, attention_type="regularMHA")
    >>> enc = use_group_norm(enc, 4)
    >>> enc.layers[0].convolution_module.after_conv[0]
    ChannelsLastGroupNorm(4, 16, eps=1e-05, affine=True)
    """
    for module in list(encoder.modules()):
        if isinstance(module, ConvolutionModule):
            norm = module.after_conv[0]
            if isinstance(norm, nn.LayerNorm):
                channels = norm.normalized_shape[0]
                module.after_conv[0] = ChannelsLastGroupNorm(groups, channels)
        for name, child in module.named_children():
            if isinstance(child, nn.BatchNorm1d):
                setattr(module, name, nn.GroupNorm(groups, child.num_features))
    return encoder


class ConformerMasker(nn.Module):
    """Conformer estimating ``N`` real-valued STFT masks (Section 3.2).

    Defaults are the paper's configuration.  The Conformer layers are kept
    as ``blocks`` (state-dict keys ``blocks.<i>.``, like ``SudoRmRf``, from
    which ``inference.from_run`` reads the depth of a saved model).

    Arguments
    ---------
    num_sources : int
        Number of output slots ``N`` (masks).
    num_layers : int
        Number of Conformer encoder layers.
    d_model : int
        Attention dimension.
    nhead : int
        Number of attention heads.
    d_ffn : int
        Hidden size of the feed-forward modules.
    kernel_size : int
        Kernel of the depthwise convolution of the convolution modules.
    n_fft : int
        FFT size.
    win_length : int
        Length of the Hann window.
    hop_length : int
        Hop between frames.
    input_feature : str
        ``"log_magnitude"`` (WSJ-mix in the paper) or ``"magnitude"``
        (FUSS).
    mask_activation : str
        ``"sigmoid"`` or ``"relu"``.
    dropout : float
        Dropout of the Conformer layers.
    norm_groups : int
        Groups of the group norm of the convolution modules.

    Example
    -------
    >>> model = ConformerMasker(num_layers=1, d_model=32, nhead=2, d_ffn=64,
    ...                         norm_groups=4)
    >>> model(torch.randn(2, 1000)).shape
    torch.Size([2, 3, 1000])
    """

    def __init__(
        self,
        num_sources=3,
        num_layers=16,
        d_model=256,
        nhead=4,
        d_ffn=1024,
        kernel_size=31,
        n_fft=512,
        win_length=400,
        hop_length=160,
        input_feature="log_magnitude",
        mask_activation="sigmoid",
        dropout=0.1,
        norm_groups=8,
    ):
        super().__init__()
        if input_feature not in ("log_magnitude", "magnitude"):
            raise ValueError(
                f"input_feature must be 'log_magnitude' or 'magnitude', "
                f"not {input_feature!r}"
            )
        activations = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
        if mask_activation not in activations:
            raise ValueError(
                f"mask_activation must be 'sigmoid' or 'relu', not "
                f"{mask_activation!r}"
            )
        self.config = dict(
            num_sources=num_sources, num_layers=num_layers, d_model=d_model,
            nhead=nhead, d_ffn=d_ffn, kernel_size=kernel_size, n_fft=n_fft,
            win_length=win_length, hop_length=hop_length,
            input_feature=input_feature, mask_activation=mask_activation,
            dropout=dropout, norm_groups=norm_groups,
        )
        self.num_sources = num_sources
        self.num_blocks = num_layers
        self.n_fft, self.win_length, self.hop = n_fft, win_length, hop_length
        self.log_input = input_feature == "log_magnitude"
        self.register_buffer(
            "window", torch.hann_window(win_length), persistent=False
        )
        bins = n_fft // 2 + 1
        self.input_layer = nn.Linear(bins, d_model)
        # Relative-position attention (Transformer-XL), as in the Conformer
        # paper and the authors' ESPnet-based model; SpeechBrain's encoder
        # then needs the sinusoidal embeddings of the relative positions,
        # ``pos_embs`` of shape [1, 2 F - 1, d_model], at every call.
        encoder = ConformerEncoder(
            num_layers, d_model, d_ffn, nhead, kernel_size=kernel_size,
            dropout=dropout, attention_type="RelPosMHAXL",
        )
        use_group_norm(encoder, norm_groups)
        self.pos_enc = RelPosEncXL(d_model)
        # ConformerEncoder.forward, without layer drop, is a loop over its
        # layers and a final norm: keep both (see the class docstring).
        self.blocks, self.norm = encoder.layers, encoder.norm
        self.output_layer = nn.Linear(d_model, num_sources * bins)
        self.mask_activation = activations[mask_activation]()

    def with_depth(self, num_blocks):
        """A freshly initialised model of the same configuration with
        ``num_blocks`` Conformer layers.

        Example
        -------
        >>> tiny = dict(d_model=16, nhead=2, d_ffn=32, norm_groups=4)
        >>> ConformerMasker(num_layers=1, **tiny).with_depth(2).num_blocks
        2
        """
        return type(self)(**{**self.config, "num_layers": num_blocks})

    @torch.no_grad()
    def zero_output_layer(self):
        """Zeroes the final linear layer: all masks become equal (0.5 with
        the sigmoid), so every output is the same and, after mixture
        consistency, each is ``mixture / N`` (Section 2.3 of the paper)."""
        self.output_layer.weight.zero_()
        self.output_layer.bias.zero_()

    def forward(self, mixture):
        """Separates ``mixture`` ``[B, T]`` into ``[B, N, T]`` sources."""
        batch, length = mixture.shape
        # Zero ("constant") centre padding works for any length, even
        # shorter than the reflection padding would allow.
        spec = torch.stft(
            mixture, self.n_fft, self.hop, self.win_length, self.window,
            pad_mode="constant", return_complex=True,
        )  # [B, K, F] with K = n_fft // 2 + 1 bins and F frames
        features = spec.abs()
        if self.log_input:
            features = torch.log(features + 1e-6)
        x = self.input_layer(features.transpose(1, 2))  # [B, F, d_model]
        pos_embs = self.pos_enc(x)
        for layer in self.blocks:
            x, _ = layer(x, pos_embs=pos_embs)
        masks = self.mask_activation(self.output_layer(self.norm(x)))
        masks = masks.view(batch, -1, self.num_sources, spec.shape[1])
        masked = masks.permute(0, 2, 3, 1) * spec.unsqueeze(1)  # [B,N,K,F]
        waves = torch.istft(
            masked.flatten(0, 1), self.n_fft, self.hop, self.win_length,
            self.window, length=length,
        )
        return waves.view(batch, self.num_sources, length)
