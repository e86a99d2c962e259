"""ONNX export of a trained enhancer, the whole inference path included.

The exported graph is what the inference interface's ``enhance_batch``
(:mod:`speechbrain_remix.inference`) computes on one batch at the model's
rate: mean/std normalization of the mixture, the separation model,
mixture consistency, rescaling to the mixture's scale, and the speech
output (slot 0), so that ``mixture [B, T] -> speech [B, T]`` with any
batch size and length (both axes are dynamic).  Resampling and the
windowing of long recordings stay outside the graph.

What exports (torch 2.11, onnx 1.23, onnxruntime 1.31, opset 18):

* :class:`~speechbrain_remix.models.SudoRmRf`: yes, with the dynamo
  exporter (``torch.onnx.export(..., dynamo=True)``, the default tried
  first; the TorchScript exporter, ``dynamo=False``, also works and is the
  fallback).  onnxruntime's output matches PyTorch's to about 1e-7 of the
  output's peak.
* :class:`~speechbrain_remix.models.ConformerMasker`,
  :class:`~speechbrain_remix.models.GRUMasker`,
  :class:`~speechbrain_remix.models.SNRPredictor` and the latent-space
  ``LatentEnhancer`` (:mod:`speechbrain_remix.brains.latent`): no.  They
  compute a complex STFT (``torch.stft(..., return_complex=True)``) and
  its inverse.  The dynamo exporter has no ONNX translation of the
  Conformer's ops on the complex spectrogram ("No decompositions
  registered for the complex-valued input"); for the GRU masker (with a
  fixed length; with a dynamic one ``torch.export`` already fails in
  ``nn.GRU``) and the latent enhancer it writes a graph that onnxruntime
  rejects (an int32 index of a ``ScatterND``).  The TorchScript exporter
  stops at "STFT does not currently support complex types" and has no
  ``istft``.  These raise :class:`OnnxExportError` (a
  ``NotImplementedError``) saying so, before any export is tried.

A model of another class is tried as it is; an exporter failure is
raised as :class:`OnnxExportError` with both exporters' messages.
"""

import torch

from speechbrain_remix.apply import separate

#: class names of models whose forward uses a complex STFT/ISTFT
STFT_MODELS = ("ConformerMasker", "GRUMasker", "SNRPredictor",
               "LatentEnhancer")
OPSET = 18


class OnnxExportError(NotImplementedError):
    """The model cannot be exported to ONNX (the message says why)."""


class SpeechEnhancer(torch.nn.Module):
    """``mixture [B, T] -> speech [B, T]`` exactly as the enhancer applies
    a separation model: :func:`~speechbrain_remix.apply.separate`
    (normalization, model, mixture consistency, rescaling), then the
    speech slot; a model with ``outputs_speech`` is applied as it is.

    Example
    -------
    >>> from speechbrain_remix.models import SudoRmRf
    >>> model = SudoRmRf(num_blocks=1, enc_num_basis=16, out_channels=8,
    ...                  in_channels=16, upsampling_depth=2, groups=2)
    >>> SpeechEnhancer(model)(torch.randn(2, 1000)).shape
    torch.Size([2, 1000])
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, mixture):
        if getattr(self.model, "outputs_speech", False):
            return self.model(mixture)
        return separate(self.model, mixture)[:, 0]


def check_exportable(model):
    """Raises :class:`OnnxExportError` if ``model`` (or a submodule) is a
    class known not to export, naming the reason.

    Example
    -------
    >>> from speechbrain_remix.models import GRUMasker
    >>> check_exportable(GRUMasker(hidden=4, num_layers=1))
    Traceback (most recent call last):
    ...
    speechbrain_remix.onnx_export.OnnxExportError: GRUMasker cannot be \
exported to ONNX: it computes a complex STFT and its inverse (torch.stft/\
torch.istft with complex tensors), which neither of torch's ONNX exporters \
translates; only Sudo rm -rf (SudoRmRf) models export
    """
    for module in model.modules():
        name = type(module).__name__
        if name in STFT_MODELS:
            raise OnnxExportError(
                f"{name} cannot be exported to ONNX: it computes a complex "
                "STFT and its inverse (torch.stft/torch.istft with complex "
                "tensors), which neither of torch's ONNX exporters "
                "translates; only Sudo rm -rf (SudoRmRf) models export")


def export_onnx(model, path, sample_rate, seconds=2.0):
    """Writes ``model``'s whole inference path to the ONNX file ``path``.

    The graph has one input ``mixture`` (float32 ``[batch, time]``, any
    batch size and any length) and one output ``speech`` (``[batch,
    time]``), computed as :class:`SpeechEnhancer` does; weights are stored
    inside the one file (no ``.onnx.data`` beside it).  ``sample_rate`` is
    recorded in the model's metadata (``sample_rate``), with the opset and
    the exporter used (``exporter``: ``dynamo`` or ``torchscript``).

    Arguments
    ---------
    model : torch.nn.Module
        A separation model ``[B, T] -> [B, M, T]`` (speech first), e.g.
        :class:`~speechbrain_remix.models.SudoRmRf`, or a model with
        ``outputs_speech`` (``[B, T] -> [B, T]``).  Exported in eval mode
        on the CPU; its own mode and device are left as they were.
    path : str
        Output ``.onnx`` file.
    sample_rate : int
        The rate the model was trained at (inputs must be at this rate).
    seconds : float
        Length of the example input that is traced (2 x ``seconds *
        sample_rate`` samples of noise); the exported graph accepts other
        lengths.

    Returns
    -------
    str
        ``"dynamo"`` or ``"torchscript"``: the exporter that succeeded.

    Raises
    ------
    OnnxExportError
        A ``NotImplementedError``: the model uses ops ONNX cannot express
        (complex STFT), or both exporters failed (their messages follow).

    Example
    -------
    >>> import os, tempfile
    >>> from speechbrain_remix.models import SudoRmRf
    >>> model = SudoRmRf(num_blocks=1, enc_num_basis=16, out_channels=8,
    ...                  in_channels=16, upsampling_depth=2, groups=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "enhancer.onnx")
    >>> export_onnx(model, path, 16000, seconds=0.25)  # doctest: +SKIP
    'dynamo'
    """
    check_exportable(model)
    was_training = model.training
    device = next(model.parameters(), torch.empty(0)).device
    wrapper = SpeechEnhancer(model).cpu().eval()
    # batch 2: an example of size 1 would let the exporter fix that axis;
    # a generator of its own leaves the caller's random state alone
    example = torch.randn(2, max(1, int(round(seconds * sample_rate))),
                          generator=torch.Generator().manual_seed(0))
    errors = []
    try:
        for exporter in ("dynamo", "torchscript"):
            try:
                with torch.no_grad():
                    _export(wrapper, example, path, exporter)
                break
            except Exception as error:  # an exporter's own failure type
                errors.append(f"{exporter}: {type(error).__name__}: "
                              f"{str(error).strip()[:2000]}")
        else:
            raise OnnxExportError(
                f"{type(model).__name__} could not be exported to ONNX:\n"
                + "\n".join(errors))
    finally:
        model.to(device).train(was_training)
    _set_metadata(path, {"sample_rate": str(int(sample_rate)),
                         "exporter": exporter, "opset": str(OPSET),
                         "input": "mixture [batch, time] float32",
                         "output": "speech [batch, time] float32"})
    return exporter


def _export(wrapper, example, path, exporter):
    names = {"input_names": ["mixture"], "output_names": ["speech"],
             "opset_version": OPSET}
    if exporter == "dynamo":
        dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("time")}
        program = torch.onnx.export(wrapper, (example,), dynamo=True,
                                    dynamic_shapes={"mixture": dims},
                                    verbose=False, **names)
        # one self-contained file (weights inline; fine below 2 GB)
        program.save(path, external_data=False)
    else:
        axes = {0: "batch", 1: "time"}
        torch.onnx.export(wrapper, (example,), path, dynamo=False,
                          dynamic_axes={"mixture": axes, "speech": axes},
                          **names)


def _set_metadata(path, props):
    import onnx

    proto = onnx.load(path)
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, path)


def onnx_session(path):
    """An onnxruntime CPU session of an exported file and a callable
    ``[B, T] numpy float32 -> [B, T]`` running it.

    Usage (exporting takes seconds; ``tests/test_onnx_export.py`` runs
    it)::

        session, run = onnx_session("enhancer.onnx")
        speech = run(mixture.astype("float32"))
    """
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(
        path, providers=["CPUExecutionProvider"])

    def run(mixture):
        feed = {"mixture": np.ascontiguousarray(mixture, dtype=np.float32)}
        return session.run(["speech"], feed)[0]

    return session, run
