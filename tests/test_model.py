"""Tests of the Sudo rm -rf model and of ``separate``."""

import pytest
import torch
from conftest import TINY_MODEL
from hypothesis import given, settings
from hypothesis import strategies as st

from speechbrain_remix.apply import normalize, separate
from speechbrain_remix.models import SudoRmRf
from speechbrain_remix.pretrained import load_pretrained

TINY = TINY_MODEL


def _tiny(**kwargs):
    torch.manual_seed(0)
    return SudoRmRf(**{**TINY, **kwargs}).eval()


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_default_config_size_matches_paper():
    model = SudoRmRf()
    # RemixIT, Section III-B: 0.56 M parameters for U = 8.
    assert 0.55e6 <= _n_params(model) <= 0.57e6
    assert model.num_blocks == 8 and model.num_sources == 2
    assert model.hop == 20


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


@pytest.mark.parametrize("length", [1, 2, 39, 41, 999, 16001])
def test_output_shape_odd_lengths(tiny, length):
    with torch.no_grad():
        out = tiny(torch.randn(2, length))
    assert out.shape == (2, 2, length)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("num_sources", [1, 3])
def test_num_sources(num_sources):
    model = _tiny(num_sources=num_sources)
    with torch.no_grad():
        out = model(torch.randn(3, 777))
    assert out.shape == (3, num_sources, 777)


def test_batch_items_independent(tiny):
    x = torch.randn(3, 500)
    with torch.no_grad():
        full = tiny(x)
        single = tiny(x[1:2])
    torch.testing.assert_close(full[1:2], single, atol=1e-5, rtol=1e-4)


def test_with_depth():
    model = _tiny(num_sources=3, enc_hop=10)
    deeper = model.with_depth(3)
    assert isinstance(deeper, SudoRmRf)
    assert deeper is not model
    assert deeper.num_blocks == 3 and len(deeper.blocks) == 3
    assert model.num_blocks == 1 and len(model.blocks) == 1
    assert deeper.config == {**model.config, "num_blocks": 3}
    assert deeper.hop == model.hop == 10
    assert deeper.num_sources == 3
    with torch.no_grad():
        assert deeper(torch.randn(1, 300)).shape == (1, 3, 300)
    # Freshly initialised, not a copy of the original's weights.
    same = model.with_depth(1)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), same.state_dict().values())
    )


@pytest.mark.parametrize("kernel, hop, length", [
    (41, None, 1603), (21, 15, 1603), (21, 15, 300), (41, 22, 704)])
def test_decoder_computed_as_its_transposed_convolution(kernel, hop, length):
    """The model decodes with a matmul and an overlap-add (faster); the
    result must be its ``decoder`` module's output, cropped as before."""
    torch.manual_seed(0)
    model = SudoRmRf(**{**TINY_MODEL, "enc_kernel_size": kernel,
                        "enc_hop": hop})
    x = torch.randn(2, length)  # 300, 704: a hop past K // 2 + 1 needs the
    pad = (-x.shape[-1]) % model.pad_multiple  # output padding's zeros
    with torch.no_grad():
        basis = model.encoder(torch.nn.functional.pad(x, (0, pad))[:, None])
        features = model.blocks(model.bottleneck(model.norm(basis)))
        masks = model.mask(features).view(2, 2, model.enc_num_basis, -1)
        masked = (masks * basis.unsqueeze(1)).flatten(1, 2)
        expected = model.decoder(masked)[..., :x.shape[-1]]
        assert torch.allclose(model(x), expected, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_tac_is_transform_average_concatenate(causal):
    """TAC (Luo et al., 2020), written out as defined: transform each
    group, average the transforms over groups, concatenate each group's
    transform with the average, project back, normalise, add.  The model
    computes it channels first without the concatenation (faster); the
    two must agree."""
    from speechbrain_remix.models.sudormrf import TAC

    torch.manual_seed(0)
    tac = TAC(4, 12, causal=causal)
    with torch.no_grad():
        for p in tac.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(2, 3, 4, 10)  # [B, G, C, L]
    h = tac.transform(x.permute(0, 3, 1, 2))  # [B, L, G, H]
    mean = tac.average(h.mean(dim=2, keepdim=True)).expand_as(h)
    y = tac.concat(torch.cat([h, mean], -1)).permute(0, 2, 3, 1)
    expected = x + tac.norm(y.reshape(6, 4, 10)).view_as(x)
    assert torch.allclose(tac(x), expected, atol=1e-5)


@pytest.mark.parametrize("kernel", [2, 40])
def test_even_kernel_raises(kernel):
    with pytest.raises(ValueError):
        SudoRmRf(**TINY, enc_kernel_size=kernel)


def test_groups_must_divide_channels():
    with pytest.raises(ValueError):
        SudoRmRf(**{**TINY, "groups": 3})


def test_backward_finite_grads():
    model = _tiny().train()
    x = torch.randn(2, 1000)
    out = model(x)
    loss = (out - torch.stack([0.5 * x, 0.5 * x], 1)).pow(2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


# --------------------------------------------------------------------------
# normalize / separate
# --------------------------------------------------------------------------


def test_normalize():
    mix = torch.randn(3, 200) * 4.0 + 2.0
    x, (mean, std) = normalize(mix)
    torch.testing.assert_close(x.mean(-1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        x.std(-1, unbiased=False), torch.ones(3), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(x * std + mean, mix)


def test_normalize_silence_is_finite():
    x, _ = normalize(torch.zeros(2, 100))
    assert torch.equal(x, torch.zeros(2, 100))


def _cheap_model(x):
    """A nonlinear, not scale-equivariant, not consistent 3-output model:
    cheap enough for property tests."""
    return torch.stack(
        [torch.tanh(x), torch.sigmoid(x) * x, 0.1 * x**2 + 0.3], dim=1
    )


SEPARATE_CASES = dict(
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(0.01, 100.0),
    offset=st.floats(-1.0, 1.0),
    length=st.integers(2, 400),
)


@settings(max_examples=30, deadline=None)
@given(**SEPARATE_CASES)
def test_separate_sums_to_mixture(seed, scale, offset, length):
    g = torch.Generator().manual_seed(seed)
    mix = scale * torch.randn(2, length, generator=g) + offset
    est = separate(_cheap_model, mix)
    assert est.shape == (2, 3, length)
    atol = 1e-4 * float(mix.abs().max())
    torch.testing.assert_close(est.sum(1), mix, atol=atol, rtol=1e-4)


@settings(max_examples=30, deadline=None)
@given(**SEPARATE_CASES)
def test_separate_scale_equivariant(seed, scale, offset, length):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(2, length, generator=g) + offset
    ref = separate(_cheap_model, mix)
    scaled = separate(_cheap_model, scale * mix)
    # Normalization removes the scale: the estimates scale with the input.
    torch.testing.assert_close(
        scaled / scale, ref, atol=1e-4 * float(ref.abs().max()), rtol=1e-4
    )


@pytest.mark.parametrize("scale", [0.01, 3.0, 100.0])
def test_separate_sudormrf(tiny, scale):
    g = torch.Generator().manual_seed(1)
    mix = torch.randn(2, 333, generator=g) + 0.2
    with torch.no_grad():
        ref = separate(tiny, mix)
        scaled = separate(tiny, scale * mix)
    assert ref.shape == (2, 2, 333)
    tol = 1e-4 * float(mix.abs().max())
    torch.testing.assert_close(ref.sum(1), mix, atol=tol, rtol=1e-4)
    torch.testing.assert_close(
        scaled.sum(1), scale * mix, atol=scale * tol, rtol=1e-4
    )
    torch.testing.assert_close(
        scaled / scale, ref, atol=1e-4 * float(ref.abs().max()), rtol=1e-4
    )


def test_separate_no_rescale_sums_to_normalized_mixture(tiny):
    mix = 5.0 * torch.randn(2, 300) + 1.0
    with torch.no_grad():
        est = separate(tiny, mix, rescale=False)
    x, _ = normalize(mix)
    torch.testing.assert_close(est.sum(1), x, atol=1e-4, rtol=1e-4)


def test_separate_applies_consistency():
    # A model whose outputs do not sum to its input.
    def model(x):
        return torch.stack([0.2 * x, 0.3 * x, torch.ones_like(x)], 1)

    mix = 3.0 * torch.randn(2, 50) - 1.0
    est = separate(model, mix)
    torch.testing.assert_close(est.sum(1), mix, atol=1e-4, rtol=1e-4)
    # The correction is the same for every source.
    x, (mean, std) = normalize(mix)
    raw = model(x)
    delta = (est - mean.unsqueeze(1) / 3) / std.unsqueeze(1) - raw
    torch.testing.assert_close(delta[:, 0], delta[:, 1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(delta[:, 0], delta[:, 2], atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------
# load_pretrained
# --------------------------------------------------------------------------


def test_load_pretrained_file_and_folder(tmp_path):
    from speechbrain.utils.checkpoints import Checkpointer

    source = _tiny()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    # A plain state-dict file.
    path = tmp_path / "weights.ckpt"
    torch.save(source.state_dict(), path)
    target = _tiny()
    assert load_pretrained(target, str(path)) == str(path)
    for a, b in zip(source.state_dict().values(), target.state_dict().values()):
        assert torch.equal(a, b)
    # A SpeechBrain save folder holding a checkpoint with a "student".
    save = tmp_path / "save"
    Checkpointer(save, recoverables={"student": source}).save_checkpoint()
    target = _tiny()
    used = load_pretrained(target, str(save), key="student")
    assert str(used).endswith("student.ckpt")
    for a, b in zip(source.state_dict().values(), target.state_dict().values()):
        assert torch.equal(a, b)


def test_load_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train the teacher first"):
        load_pretrained(_tiny(), str(tmp_path / "missing.ckpt"))
    with pytest.raises(FileNotFoundError, match="train the teacher first"):
        load_pretrained(_tiny(), str(tmp_path))
    path = tmp_path / "other.ckpt"
    torch.save(_tiny(num_blocks=2).state_dict(), path)
    with pytest.raises(RuntimeError, match="do not fit"):
        load_pretrained(_tiny(), str(path))


def test_load_pretrained_takes_the_selected_checkpoint(tmp_path):
    """From a save folder holding the best and the latest checkpoints, the
    teacher is the best one (lowest valid_loss), as its run evaluated."""
    from speechbrain.utils.checkpoints import Checkpointer

    model = _tiny()
    saver = Checkpointer(str(tmp_path), {"model": model})
    for loss, fill in ((-5.0, 1.0), (-3.0, 2.0)):  # the best comes first
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(fill)
        saver.save_checkpoint(meta={"valid_loss": loss})
    target = _tiny()
    load_pretrained(target, str(tmp_path), key="model")
    assert all(bool((p == 1.0).all()) for p in target.parameters())
