"""Causal layers that also run block by block, and a streaming separator.

A causal model built from these layers gives the same output whether it
sees a whole recording at once (``model(x)``) or its consecutive blocks
through a :class:`StreamingSeparator`: between blocks each layer keeps
what it needs of the past (a convolution its last inputs, an overlap-add
synthesis the tail of its last frames, a GRU its hidden state).  The
state belongs to the separator, which lends it to the layers for the
duration of one call, so the model itself stays stateless and usable
offline.

A streaming model declares two figures (in samples at its rate):

* ``stream_block``: the granularity of a block (a block is a multiple of
  it; Sudo rm -rf: its hop times ``2 ** (depth - 1)``, so that every
  resolution of its U-ConvBlocks gets whole frames);
* ``stream_delay``: how many samples its output lags its input inside a
  block stream (the overlap of its synthesis frames).

The algorithmic latency of a block stream is ``block + stream_delay``
samples: a sample waits at most for its block to fill, and then for the
frames of the next ``stream_delay`` samples that overlap it.
"""

import torch
from torch import nn

from speechbrain_remix.consistency import mixture_consistency


class StreamingModule(nn.Module):
    """A layer with state carried between the blocks of a stream.

    ``stream_state`` is ``None`` offline and a dict while streaming.
    """

    def __init__(self):
        super().__init__()
        self.stream_state = None

    @property
    def streaming(self):
        return self.stream_state is not None


class CausalContext(StreamingModule):
    """Prepends ``context`` past samples to its input: zeros before the
    start, the end of the previous block while streaming (blocks must
    then be multiples of ``stride``, so that frames stay on their grid).
    """

    def __init__(self, context, stride):
        super().__init__()
        self.context, self.stride = context, stride

    def with_past(self, x):
        if x.shape[-1] % self.stride:
            raise ValueError(f"a causal layer of stride {self.stride} needs"
                             f" a multiple of it, got {x.shape[-1]}")
        past = self.stream_state.get("past") if self.streaming else None
        if past is None:
            past = x.new_zeros(*x.shape[:-1], self.context)
        x = torch.cat([past, x], -1)
        if self.streaming:
            self.stream_state["past"] = x[..., x.shape[-1] - self.context:]
        return x


class CausalConv1d(CausalContext):
    """A 1-D convolution whose output frame ``j`` reads only inputs up to
    frame ``j`` (no look-ahead).

    Arguments
    ---------
    in_channels, out_channels, kernel_size, stride, groups, bias
        As :class:`torch.nn.Conv1d`.
    context : int, optional
        Past inputs prepended (default ``kernel_size - 1``: output ``j``
        ends at input ``j * stride``; ``kernel_size - stride`` makes it
        end at the last input of hop ``j``, the choice for an analysis
        filterbank).

    Example
    -------
    >>> conv = CausalConv1d(1, 1, 3)
    >>> x = torch.randn(1, 1, 12)
    >>> y = conv(x)
    >>> torch.allclose(conv(x[..., :5])[..., :5], y[..., :5])  # causal
    True
    >>> states = stream_states(conv)
    >>> with states:
    ...     a = conv(x[..., :4])
    >>> with states:  # the state is kept between blocks
    ...     b = conv(x[..., 4:])
    >>> torch.allclose(torch.cat([a, b], -1), y, atol=1e-6)
    True
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 groups=1, bias=True, context=None):
        context = kernel_size - 1 if context is None else context
        if not 0 <= context <= kernel_size - 1:
            raise ValueError(f"context {context} must be in "
                             f"[0, kernel_size - 1 = {kernel_size - 1}]")
        super().__init__(context, stride)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size,
                              stride=stride, groups=groups, bias=bias)

    def forward(self, x):
        """``[B, C, L]`` -> ``[B, C', L / stride]``."""
        return self.conv(self.with_past(x))


class CausalFrames(CausalContext):
    """Windowed analysis frames of ``n_fft`` samples every ``hop``: frame
    ``j`` ends with the last sample of hop ``j`` (no look-ahead).

    Example
    -------
    >>> frames = CausalFrames(8, 4, torch.ones(8))
    >>> frames(torch.arange(1.0, 9.0).view(1, 8))
    tensor([[[0., 0., 0., 0., 1., 2., 3., 4.],
             [1., 2., 3., 4., 5., 6., 7., 8.]]])
    """

    def __init__(self, n_fft, hop, window):
        super().__init__(n_fft - hop, hop)
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", window, persistent=False)

    def forward(self, x):
        """``[B, L]`` -> ``[B, L / hop, n_fft]``."""
        return self.with_past(x).unfold(-1, self.n_fft, self.hop) \
            * self.window


class OverlapAdd(StreamingModule):
    """Overlap-add synthesis whose frame ``j`` covers samples ``[j * hop -
    overlap, (j + 1) * hop)``, the frames of :class:`CausalConv1d` with
    ``context = kernel_size - hop`` and of :class:`CausalFrames`.

    Offline it returns ``hop * F`` samples from sample 0 (the last
    ``overlap`` of them miss the frames after the end: pad the input).
    While streaming it returns the ``hop * F`` samples that no later frame
    overlaps, which lag by ``overlap`` samples, and keeps the tail for the
    next block.  Subclasses give the frames' sum, ``hop * F + overlap``
    samples from sample ``-overlap``.
    """

    def __init__(self, overlap):
        super().__init__()
        if overlap < 0:
            raise ValueError("frames must be at least a hop long")
        self.overlap = overlap

    def synthesize(self, frames):
        raise NotImplementedError

    def forward(self, frames):
        y = self.synthesize(frames)
        if not self.streaming:
            return y[..., self.overlap:]
        tail = self.stream_state.get("tail")
        if tail is not None:
            y = torch.cat([y[..., :self.overlap] + tail,
                           y[..., self.overlap:]], -1)
        cut = y.shape[-1] - self.overlap
        self.stream_state["tail"] = y[..., cut:]
        return y[..., :cut]


def transposed_conv1d(frames, weight, stride):
    """``conv_transpose1d(frames, weight, stride=stride)`` (no padding, no
    bias) as a matmul with the synthesis basis and an overlap-add
    (``fold``): 1.13x faster for the paper's Sudo rm -rf on a CPU, where
    oneDNN's transposed convolution with 1024 input channels and 2
    outputs is slow.

    Example
    -------
    >>> frames, weight = torch.randn(2, 6, 9), torch.randn(6, 2, 5)
    >>> torch.allclose(transposed_conv1d(frames, weight, 3),
    ...                nn.functional.conv_transpose1d(frames, weight,
    ...                                               stride=3), atol=1e-5)
    True
    """
    channels, kernel = weight.shape[1:]
    count = frames.shape[-1]
    columns = torch.matmul(weight.flatten(1).t(), frames)  # [B, C K, F]
    return nn.functional.fold(
        columns, (1, (count - 1) * stride + kernel), (1, kernel),
        stride=(1, stride)).view(frames.shape[0], channels, -1)


class OverlapAddSynthesis(OverlapAdd):
    """A learned synthesis: a transposed convolution without bias (a bias
    would be added once per frame).

    Example
    -------
    >>> syn = OverlapAddSynthesis(4, 1, kernel_size=5, stride=2)
    >>> frames = torch.randn(1, 4, 6)
    >>> offline = syn(frames)
    >>> with stream_states(syn) as states:
    ...     s = torch.cat([syn(frames[..., :2]), syn(frames[..., 2:])], -1)
    >>> torch.allclose(s[..., syn.overlap:], offline[..., :-syn.overlap])
    True
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__(kernel_size - stride)
        self.conv = nn.ConvTranspose1d(in_channels, out_channels,
                                       kernel_size, stride=stride,
                                       bias=False)

    def synthesize(self, frames):
        return transposed_conv1d(frames, self.conv.weight,
                                 self.conv.stride[0])


class FrameSynthesis(OverlapAdd):
    """Inverse of :class:`CausalFrames`: frames ``[B, F, n_fft]`` (time
    samples) weighted by the dual of the analysis window and overlap-added,
    which restores the signal exactly wherever the frames cover it.

    The dual window ``w / e`` divides by ``e``, the sum of the squared
    analysis window over its shifts by ``hop`` (periodic in ``hop``), so
    that every sample's weights add up to one.

    Example
    -------
    >>> window = torch.hann_window(8)
    >>> x = torch.randn(1, 16)
    >>> frames = CausalFrames(8, 2, window)(x)
    >>> y = FrameSynthesis(8, 2, window)(frames)
    >>> torch.allclose(y[:, :10], x[:, :10], atol=1e-6)  # all but the end
    True
    """

    def __init__(self, n_fft, hop, window):
        if n_fft % hop:
            raise ValueError(f"n_fft ({n_fft}) must be a multiple of the "
                             f"hop ({hop})")
        super().__init__(n_fft - hop)
        self.n_fft, self.hop = n_fft, hop
        envelope = (window ** 2).view(-1, hop).sum(0).repeat(n_fft // hop)
        if (envelope <= 0).any():
            raise ValueError("the window's shifts leave samples uncovered")
        self.register_buffer("dual", window / envelope, persistent=False)

    def synthesize(self, frames):
        batch, count, _ = frames.shape
        return nn.functional.fold(
            (frames * self.dual).transpose(1, 2),
            (1, self.hop * count + self.overlap), (1, self.n_fft),
            stride=(1, self.hop)).view(batch, -1)


class Delay(StreamingModule):
    """Identity offline; ``samples`` late while streaming, to stay aligned
    with an :class:`OverlapAdd` of that overlap.

    Example
    -------
    >>> delay = Delay(2)
    >>> with stream_states(delay):
    ...     delay(torch.arange(1.0, 5.0).view(1, 4))
    tensor([[0., 0., 1., 2.]])
    """

    def __init__(self, samples):
        super().__init__()
        self.samples = samples

    def forward(self, x):
        if not self.streaming:
            return x
        past = self.stream_state.get("past")
        if past is None:
            past = x.new_zeros(*x.shape[:-1], self.samples)
        x = torch.cat([past, x], -1)
        cut = x.shape[-1] - self.samples
        self.stream_state["past"] = x[..., cut:]
        return x[..., :cut]


class StreamingGRU(StreamingModule):
    """A GRU ``[B, F, C] -> [B, F, H]`` that carries its hidden state from
    block to block while streaming.

    Example
    -------
    >>> gru = StreamingGRU(nn.GRU(3, 4, batch_first=True))
    >>> x = torch.randn(1, 6, 3)
    >>> with stream_states(gru) as states:
    ...     a = gru(x[:, :2])
    >>> with states:
    ...     b = gru(x[:, 2:])
    >>> torch.allclose(torch.cat([a, b], 1), gru(x), atol=1e-6)
    True
    """

    def __init__(self, gru):
        super().__init__()
        self.gru = gru

    def forward(self, x):
        hidden = self.stream_state.get("hidden") if self.streaming else None
        out, hidden = self.gru(x, hidden)
        if self.streaming:
            self.stream_state["hidden"] = hidden
        return out


class ChannelNorm(nn.Module):
    """Layer norm over the channels of each frame, with a per-channel
    affine: the causal replacement of global layer norm.  It needs no
    state (each frame is normalised on its own), and it makes a model
    whose encoder has no bias scale-equivariant, so that a causal model
    needs no normalisation of the recording by its (unknown) std.

    Example
    -------
    >>> norm = ChannelNorm(8)
    >>> x = torch.randn(2, 8, 5)
    >>> y = norm(x)
    >>> torch.allclose(y.mean(1), torch.zeros(2, 5), atol=1e-6)
    True
    >>> torch.allclose(norm(3 * x), y, atol=1e-5)
    True
    """

    def __init__(self, channels, eps=1e-8):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        """``[B, C, L]`` -> ``[B, C, L]``."""
        y = nn.functional.layer_norm(x.transpose(1, 2), self.weight.shape,
                                     self.weight, self.bias, self.eps)
        return y.transpose(1, 2)


def is_streaming(model):
    """Whether ``model``'s streaming layers are inside a stream."""
    return any(m.streaming for m in model.modules()
               if isinstance(m, StreamingModule))


class _LentStates:
    """Lends a set of per-layer states to a model's streaming layers for
    the duration of each ``with`` block (see :func:`stream_states`)."""

    def __init__(self, model):
        self.layers = [m for m in model.modules()
                       if isinstance(m, StreamingModule)]
        self.states = [{} for _ in self.layers]

    def __enter__(self):
        for layer, state in zip(self.layers, self.states):
            layer.stream_state = state
        return self

    def __exit__(self, *exc):
        for layer in self.layers:
            layer.stream_state = None


def stream_states(model):
    """Fresh streaming states for ``model``'s layers, lent to them inside
    each ``with`` block of the returned object (kept between blocks)."""
    return _LentStates(model)


class StreamingSeparator:
    """Separates a recording pushed block by block, as a causal model
    separates it whole: ``push`` returns the estimates that are final so
    far, ``flush`` the rest.  The estimates are projected to add up to the
    input (Eq. 1 of RemixIT), as :func:`~speechbrain_remix.apply.separate`
    does for a causal model (which needs no mean/std normalisation).

    Arguments
    ---------
    model : torch.nn.Module
        A causal separation model with ``stream_block`` and
        ``stream_delay`` (``SudoRmRf(causal=True)``,
        ``GRUMasker(causal=True)``), ``[B, T]`` -> ``[B, M, T]``.
    block : int, optional
        Samples per model call, a multiple of ``model.stream_block``
        (its default).  Longer blocks cost fewer calls and more latency.

    Example
    -------
    >>> from speechbrain_remix.models import SudoRmRf
    >>> model = SudoRmRf(num_blocks=1, enc_num_basis=16, enc_kernel_size=5,
    ...                  out_channels=8, in_channels=16,
    ...                  upsampling_depth=2, groups=2, causal=True).eval()
    >>> x = torch.randn(1, 103)
    >>> sep = StreamingSeparator(model)
    >>> parts = [sep.push(x[:, i:i + 7]) for i in range(0, 103, 7)]
    >>> out = torch.cat(parts + [sep.flush()], -1)
    >>> from speechbrain_remix.apply import separate
    >>> with torch.no_grad():
    ...     torch.allclose(out, separate(model, x), atol=1e-5)
    True
    >>> sep.latency == sep.block + model.stream_delay
    True
    """

    def __init__(self, model, block=None):
        for key in ("stream_block", "stream_delay"):
            if not hasattr(model, key):
                raise ValueError(
                    f"{type(model).__name__} cannot stream (no {key}): "
                    "only a causal model does (SudoRmRf or GRUMasker "
                    "built with causal=True and trained so, e.g. by "
                    "hparams/remixit_causal_demo.yaml)")
        self.model = model
        self.block = block or model.stream_block
        if self.block % model.stream_block:
            raise ValueError(f"block {self.block} must be a multiple of "
                             f"{model.stream_block} samples")
        self.delay = model.stream_delay
        self.sources = getattr(model, "num_sources", 2)
        self.reset()

    @property
    def latency(self):
        """Algorithmic latency in samples: block plus look-ahead."""
        return self.block + self.delay

    def reset(self):
        """Forgets the stream: the next push starts a new recording."""
        self._states = stream_states(self.model)
        self._pending = None  # input not yet a whole block
        self._mix = None  # input whose estimates are not out yet
        self._skip = self.delay  # leading outputs from before the start
        self._seen = self._emitted = 0
        self._empty = torch.zeros(1, self.sources, 0)  # shaped by pushes

    @torch.no_grad()
    def push(self, chunk):
        """``[B, n]`` new samples -> ``[B, M, m]`` final estimates (``m``
        may be 0 while a block fills)."""
        self._empty = chunk.new_zeros(chunk.shape[0], self.sources, 0)
        self._pending = chunk if self._pending is None else torch.cat(
            [self._pending, chunk], -1)
        self._seen += chunk.shape[-1]
        usable = self._pending.shape[-1] // self.block * self.block
        x = self._pending[..., :usable]
        self._pending = self._pending[..., usable:]
        return self._run(x)

    @torch.no_grad()
    def flush(self):
        """The estimates of the samples still inside the model; the
        stream ends (zeros follow the last sample, as offline)."""
        parts = []
        while self._emitted < self._seen:
            x, self._pending = self._pending, self._pending[..., :0]
            pad = self.block - x.shape[-1] % self.block  # 1 .. block
            parts.append(self._run(nn.functional.pad(x, (0, pad))))
        empty = self._empty
        self.reset()
        return torch.cat(parts, -1) if parts else empty

    def _run(self, x):
        self._mix = x if self._mix is None else torch.cat([self._mix, x], -1)
        if not x.shape[-1]:
            return x.new_zeros(x.shape[0], self.sources, 0)
        with self._states:
            est = self.model(x)
        drop = min(self._skip, est.shape[-1])
        self._skip -= drop
        est = est[..., drop:]
        keep = min(est.shape[-1], self._seen - self._emitted)
        est = est[..., :keep]
        mix, self._mix = self._mix[..., :keep], self._mix[..., keep:]
        self._emitted += keep
        if not keep:
            return est
        return mixture_consistency(est, mix)
