"""ONNX export: onnxruntime runs the exported inference path (normalize,
model, mixture consistency, speech slot) as PyTorch does, for any batch
size and length; models that cannot export say why."""

import copy

import numpy as np
import onnx
import pytest
import torch

from speechbrain_remix.models import ConformerMasker, GRUMasker, SudoRmRf
from speechbrain_remix.onnx_export import (
    OnnxExportError,
    SpeechEnhancer,
    export_onnx,
    onnx_session,
)

# onnxruntime vs PyTorch, max |difference| over the output's peak: float32
# kernels differ in summation order only (measured ~1e-7)
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = SudoRmRf(num_blocks=1, enc_num_basis=32, enc_kernel_size=21,
                     out_channels=16, in_channels=32, upsampling_depth=3,
                     groups=2)
    path = str(tmp_path_factory.mktemp("onnx") / "enhancer.onnx")
    exporter = export_onnx(model, path, 16000, seconds=0.5)
    return model, path, exporter


@pytest.mark.parametrize("shape", [(2, 8000), (2, 5001), (1, 12345)])
def test_onnxruntime_matches_pytorch_for_any_batch_and_length(exported,
                                                              shape):
    model, path, _ = exported
    mixture = torch.randn(*shape) * 0.3 + 0.01
    with torch.no_grad():
        expected = SpeechEnhancer(copy.deepcopy(model).eval())(mixture)
    expected = expected.numpy()
    got = onnx_session(path)[1](mixture.numpy())
    assert got.shape == shape
    assert np.abs(got - expected).max() / np.abs(expected).max() < TOLERANCE


def test_export_records_its_settings_and_leaves_the_model_as_it_was(
        exported):
    model, path, exporter = exported
    assert exporter == "dynamo"  # the TorchScript exporter is the fallback
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props["sample_rate"] == "16000"
    assert props["exporter"] == exporter
    assert model.training  # a fresh module, put back in train mode


@pytest.mark.parametrize("model", [
    GRUMasker(hidden=4, num_layers=1),
    ConformerMasker(num_sources=2, num_layers=1, d_model=16, nhead=2,
                    d_ffn=32, kernel_size=5),
], ids=["gru", "conformer"])
def test_a_model_with_a_complex_stft_is_a_clear_error(model, tmp_path):
    path = tmp_path / "x.onnx"
    with pytest.raises(NotImplementedError, match="complex STFT"):
        export_onnx(model, str(path), 16000, seconds=0.1)
    assert not path.exists()


def test_an_exporter_failure_names_both_exporters(tmp_path):
    class Bessel(torch.nn.Module):  # an op neither exporter translates
        outputs_speech = True

        def forward(self, mixture):
            return torch.special.bessel_j0(mixture)

    with pytest.raises(OnnxExportError, match="(?s)dynamo: .*\ntorchscript: "):
        export_onnx(Bessel(), str(tmp_path / "x.onnx"), 8000, seconds=0.01)
