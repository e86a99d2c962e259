"""Causal models and streaming: block-by-block output equals offline
output, no output reads a later input, the measured latency is the stated
one, and the streaming path of the enhancer and the CLI."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import TINY_MODEL

from speechbrain_remix.apply import normalize, separate
from speechbrain_remix.inference import RemixEnhancer
from speechbrain_remix.models import GRUMasker, SudoRmRf
from speechbrain_remix.streaming import StreamingSeparator

# the demo's causal student at a tenth of its width: kernel 41, hop 20,
# depth 4 (blocks of 160 samples)
CAUSAL_SUDO = dict(num_blocks=2, enc_num_basis=32, enc_kernel_size=41,
                   out_channels=16, in_channels=32, upsampling_depth=4,
                   groups=2, causal=True)
CAUSAL_GRU = dict(hidden=16, n_fft=320, hop=160, causal=True)


def causal_models():
    torch.manual_seed(0)
    sudo = SudoRmRf(**CAUSAL_SUDO)
    gru = GRUMasker(**CAUSAL_GRU)
    with torch.no_grad():  # norms away from their identity initialisation
        for name, p in sudo.named_parameters():
            if name.endswith(("norm.weight", "norm.bias")) or ".1." in name:
                p.add_(0.1 * torch.randn_like(p))
    return [sudo.eval(), gru.eval()]


def stream(model, x, block=None, seed=0):
    """Pushes ``x`` in chunks of random sizes (1 to 700 samples)."""
    separator = StreamingSeparator(model, block)
    g = torch.Generator().manual_seed(seed)
    parts, i = [], 0
    while i < x.shape[-1]:
        n = int(torch.randint(1, 700, (1,), generator=g))
        parts.append(separator.push(x[:, i:i + n]))
        i += n
    return torch.cat(parts + [separator.flush()], -1)


@pytest.mark.parametrize("model", causal_models(),
                         ids=["sudormrf", "gru"])
@pytest.mark.parametrize("blocks", [1, 3])
def test_streaming_equals_offline(model, blocks):
    """The whole point: any chunking of the input, any block size, a
    batch of two, the same output as the model applied to the whole
    recording (within 1e-5 of the peak: float32 sums in another order)."""
    x = torch.randn(2, 5 * 1600 + 37)
    with torch.no_grad():
        offline = separate(model, x)
    out = stream(model, x, blocks * model.stream_block)
    assert out.shape == offline.shape == (2, 2, x.shape[-1])
    assert (out - offline).abs().max() < 1e-5 * offline.abs().max()
    assert torch.allclose(out.sum(1), x, atol=1e-5)  # Eq. 1, streamed


@pytest.mark.parametrize("model", causal_models(),
                         ids=["sudormrf", "gru"])
def test_no_output_reads_a_later_input(model):
    """One input sample ``t`` changed: the first output that moves is the
    first sample of the earliest analysis frame holding ``t`` (frame
    ``t // hop``, which starts ``stream_delay`` samples before its hop),
    never earlier, for ``t`` anywhere in a block (a review found that the
    earlier version of this test, with ``t`` on block boundaries, missed
    a strided convolution reading one frame ahead).  A layer that read even
    one frame ahead would move earlier outputs."""
    torch.manual_seed(1)
    x = torch.randn(1, 4800)
    with torch.no_grad():
        a = separate(model, x)
        for t in (1600, 1601, 1777, 2000 + model.stream_block - 1):
            y = x.clone()
            y[:, t] += 1.0
            moved = ((separate(model, y) - a).abs() > 1e-6).any(1)[0]
            first = int(moved.nonzero()[0])
            frame_start = t // model.hop * model.hop - model.stream_delay
            # (a window's first weights may be ~0: Hann starts at 0)
            assert frame_start <= first < frame_start + model.hop


def test_measured_latency_is_block_plus_delay():
    """Fed one sample at a time, output sample ``n`` leaves at the latest
    when ``n + block + stream_delay`` samples have come in (measured over
    every sample), and never before its frames are complete."""
    model = causal_models()[1]  # GRU: block 160 + delay 160 = 20 ms
    separator = StreamingSeparator(model, 2 * model.stream_block)
    x = torch.randn(1, 2000)
    emitted_at = []
    for i in range(x.shape[-1]):
        out = separator.push(x[:, i:i + 1])
        emitted_at += [i + 1] * out.shape[-1]
    waited = np.array(emitted_at) - np.arange(len(emitted_at))
    assert waited.max() == separator.latency == 320 + 160
    assert waited.min() == model.stream_delay + 1


@pytest.mark.parametrize("model", causal_models(),
                         ids=["sudormrf", "gru"])
def test_causal_models_are_scale_equivariant(model):
    """Why a causal model needs no mean/std normalisation: per-frame norms
    make ``f(c x) = c f(x)`` (Sudo rm -rf: after a bias-free encoder; GRU
    masker: magnitudes over their frame RMS), from loud to quiet; its
    estimates in the normalized domain still add up to the normalized
    mixture."""
    x = torch.randn(2, 3200)
    with torch.no_grad():
        for c in (7.0, 0.01):
            assert torch.allclose(separate(model, c * x) / c,
                                  separate(model, x), atol=1e-3)
        normalized = separate(model, 3 * x + 1, rescale=False)
    assert torch.allclose(normalized.sum(1), normalize(3 * x + 1)[0],
                          atol=1e-5)


def test_the_non_causal_model_is_unchanged():
    """``causal=False`` keeps the paper's layers and checkpoint keys."""
    model = SudoRmRf(**TINY_MODEL)
    keys = set(model.state_dict())
    assert {"encoder.weight", "decoder.weight", "norm.weight"} <= keys
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in
                   model.modules())
    assert not hasattr(model, "stream_block")


def test_what_cannot_stream_is_refused():
    with pytest.raises(ValueError, match="causal=True"):
        StreamingSeparator(SudoRmRf(**TINY_MODEL))
    model = causal_models()[0]
    with pytest.raises(ValueError, match="multiple of 160"):
        StreamingSeparator(model, block=200)


def test_an_empty_flush_keeps_the_batch():
    """With no look-ahead (kernel = hop) nothing is left for ``flush``:
    its empty output still has the stream's batch, so it concatenates."""
    model = SudoRmRf(num_blocks=1, enc_num_basis=8, enc_kernel_size=5,
                     enc_hop=5, out_channels=4, in_channels=8,
                     upsampling_depth=1, groups=2, causal=True).eval()
    assert model.stream_delay == 0
    separator = StreamingSeparator(model)
    x = torch.randn(3, 4 * model.stream_block)
    out = separator.push(x)
    rest = separator.flush()
    assert rest.shape == (3, 2, 0)
    with torch.no_grad():
        assert torch.allclose(torch.cat([out, rest], -1),
                              separate(model, x), atol=1e-5)


def causal_enhancer():
    return RemixEnhancer(modules={"model": causal_models()[0]},
                         hparams={"sample_rate": 16000},
                         run_opts={"device": "cpu"})


def test_enhance_file_streaming_equals_offline(tmp_path):
    """A stereo file, streamed in 50 ms blocks channel by channel, equals
    the offline enhancement; the file written has the input's format."""
    g = np.random.default_rng(0)
    wav = (0.1 * g.standard_normal((16000 + 11, 2))).astype("float32")
    path = str(tmp_path / "in.flac")
    sf.write(path, wav, 16000, subtype="PCM_24")
    enhancer = causal_enhancer()
    offline = enhancer.enhance_file(path, channels="each")
    streamed = enhancer.enhance_file(path, channels="each", streaming=True,
                                     block_ms=50)
    assert streamed.shape == offline.shape == (2, wav.shape[0])
    assert (streamed - offline).abs().max() < 1e-5
    out = enhancer.enhance_file(path, str(tmp_path / "out.flac"),
                                noise_path=str(tmp_path / "noise.flac"),
                                streaming=True, block_ms=100)
    speech, rate = sf.read(out, dtype="float32")
    noise, _ = sf.read(str(tmp_path / "noise.flac"), dtype="float32")
    assert rate == 16000 and sf.info(out).subtype == "PCM_24"
    assert np.abs(speech + noise - wav.mean(1)).max() < 1e-4  # downmixed


def test_streaming_needs_the_models_rate_and_a_causal_model(tmp_path):
    path = str(tmp_path / "in.wav")
    sf.write(path, np.zeros(8000, "float32") + 0.1, 8000)
    with pytest.raises(Exception, match="8000 Hz.*without streaming"):
        causal_enhancer().enhance_file(path, streaming=True)
    tiny = RemixEnhancer(modules={"model": SudoRmRf(**TINY_MODEL)},
                         hparams={"sample_rate": 8000},
                         run_opts={"device": "cpu"})
    with pytest.raises(ValueError, match="not causal"):
        tiny.enhance_file(path, streaming=True)


def test_causal_models_export_and_reload(tmp_path):
    """The exported folder rebuilds the causal model (its ``config`` says
    ``causal``), which streams like the original."""
    from speechbrain_remix.export import inference_yaml

    for model in causal_models():
        text = inference_yaml(model, 16000)
        assert "causal: true" in text
        folder = tmp_path / type(model).__name__
        os.makedirs(folder)
        (folder / "hyperparams.yaml").write_text(text)
        torch.save(model.state_dict(), folder / "model.ckpt")
        loaded = RemixEnhancer.from_hparams(str(folder))
        x = torch.randn(1, 4000)
        with torch.no_grad():
            assert torch.allclose(stream(loaded.mods.model, x),
                                  separate(model, x), atol=1e-5)
