"""A run's model as a self-contained folder in SpeechBrain's pretrained
layout::

    OUT_DIR/
      hyperparams.yaml   builds the model (``modules``, ``pretrainer``)
      model.ckpt         its weights: the checkpoint evaluation selected,
                         or the average of the k best (average_checkpoints)
      README.md          model card: scheme, data, command, test results
      model.onnx         with --onnx, for the models that export

Load it with ``RemixEnhancer.from_hparams(source=OUT_DIR)`` or enhance
with ``speechbrain-remix enhance OUT_DIR ...``; it needs this package,
not the run folder, its data or its teacher.
"""

import csv
import json
import os

import torch

from speechbrain_remix import __version__
from speechbrain_remix.runs import (
    load_run,
    outputs_unordered,
    read_run_info,
)


def class_path(obj):
    """``module.Class`` of ``obj``'s class, as ``!new:`` needs it."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def model_yaml(module, indent=0):
    """HyperPyYAML that rebuilds ``module`` from its ``config`` (the
    constructor's arguments; a module among them is written the same way).

    Example
    -------
    >>> from speechbrain_remix.models import GRUMasker
    >>> print(model_yaml(GRUMasker(hidden=8)))
    !new:speechbrain_remix.models.gru.GRUMasker
        hidden: 8
        num_layers: 2
        n_fft: 1024
        hop: 256
        num_sources: 2
        causal: false
    """
    config = getattr(module, "config", None)
    if config is None:
        raise ValueError(
            f"{class_path(module)} has no `config` (its constructor's "
            "arguments), so it cannot be written as YAML; give the class a "
            "`config` dict as the models in speechbrain_remix.models have")
    pad = " " * (indent + 4)
    lines = [f"!new:{class_path(module)}"]
    for key, value in config.items():
        if isinstance(value, torch.nn.Module):
            value = model_yaml(value, indent + 4)
        else:
            value = json.dumps(list(value) if isinstance(value, tuple)
                               else value)  # JSON is YAML
        lines.append(f"{pad}{key}: {value}")
    return "\n".join(lines)


def inference_yaml(model, sample_rate, header="", unordered=False):
    """The exported folder's ``hyperparams.yaml`` (``unordered``: the
    model's outputs come in no fixed order, see
    :func:`~speechbrain_remix.runs.outputs_unordered`)."""
    order = ("\n# trained from scratch: its outputs come in no fixed order, "
             "so the first\n# (enhanced as the speech) is the speech on "
             "some recordings only\nunordered_outputs: true\n"
             if unordered else "")
    return f"""{header}# speechbrain-remix {__version__}: load with
#   from speechbrain_remix.inference import RemixEnhancer
#   enhancer = RemixEnhancer.from_hparams(source="<this folder>")
interface: speechbrain_remix.inference.RemixEnhancer

# the rate the model was trained at; inputs of other rates are resampled
sample_rate: {int(sample_rate)}
{order}
model: {model_yaml(model)}

modules:
    model: !ref <model>

# model.ckpt of the folder
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        model: !ref <model>
"""


def read_summary(run_dir):
    """``summary.csv`` rows of a run (empty if it was not evaluated)."""
    path = os.path.join(run_dir, "summary.csv")
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def model_card(run_dir, hparams, ckpt, model):
    """``README.md`` of an exported folder: what the model is, how it was
    trained and how it scored."""
    brain = hparams["brain_class"]
    doc = (brain.__doc__ or "").strip().split("\n\n")[0]
    info = read_run_info(run_dir)
    command = " ".join(info["argv"]) if info.get("argv") else \
        "not recorded (the run predates run.json)"
    n_params = sum(p.numel() for p in model.parameters())
    meta = {k: v for k, v in ckpt.meta.items() if k != "unixtime"}
    k = int(hparams.get("average_checkpoints") or 0)
    chosen = (f"the average of the {k} best by `{hparams.get('select_by')}`"
              if k and hparams.get("select_by") != "last" else
              f"selected by `{hparams.get('select_by', 'last')}`")
    lines = [
        f"# {brain.__name__}: {os.path.basename(run_dir.rstrip(os.sep))}",
        "",
        " ".join(doc.split()),
        "",
        "## Use",
        "",
        "```python",
        "from speechbrain_remix.inference import RemixEnhancer",
        'enhancer = RemixEnhancer.from_hparams(source="<this folder>")',
        'enhancer.enhance_file("noisy.wav", "enhanced.wav")',
        "```",
        "",
        "or `speechbrain-remix enhance <this folder> NOISY... --out DIR` "
        "(any rate, any length; see the package README).",
        "",
    ]
    if outputs_unordered(hparams):
        lines += [
            "**Trained from scratch: its outputs come in no fixed order.** "
            "Output 0, written as the speech, is the speech on some "
            "recordings only; write the rest of the mixture too "
            "(`--noise`: the other output of a two-output model, the sum "
            "of the others otherwise) and keep whichever is speech.",
            "",
        ]
    lines += [
        "## Model",
        "",
        f"* class: `{class_path(model)}`, {n_params:,} parameters",
        f"* sample rate: {hparams['sample_rate']} Hz",
        f"* checkpoint: `{ckpt.path.name}` ({chosen}); meta "
        f"`{json.dumps(meta)}`",
        "",
        "## Training",
        "",
        f"* scheme: `{brain.__module__}.{brain.__name__}`",
        f"* command: `{command}`" + (f" (in `{info['cwd']}`)"
                                     if info.get("cwd") else ""),
        f"* data folder: `{hparams.get('data_folder')}`",
    ]
    for key in ("train_csv", "valid_csv", "test_csv"):
        lines.append(f"* {key}: `{hparams.get(key)}`")
    for key in ("teacher_source", "init_source", "cae_source"):
        if hparams.get(key):
            lines.append(f"* {key}: `{hparams[key]}`")
    if info.get("version"):
        lines.append(f"* speechbrain-remix {info['version']}, "
                     f"{info.get('date', '')}")
    summary = read_summary(run_dir)
    lines += ["", "## Test results", ""]
    if summary:
        cols = list(summary[0])
        lines += ["| " + " | ".join(cols) + " |",
                  "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(row[c] for c in cols) + " |"
                  for row in summary]
        lines += ["", f"on `{hparams.get('test_csv')}` (the run's "
                  "`summary.csv`)."]
    else:
        lines.append("The run was not evaluated (no summary.csv).")
    return "\n".join(lines) + "\n"


def export_run(run_dir, out_dir, onnx=False, force=False, device="cpu"):
    """Writes the model a run's evaluation selected into ``out_dir``.

    The folder is checked before returning: it is loaded back with
    :class:`~speechbrain_remix.inference.RemixEnhancer` and must enhance
    a test signal exactly as the run's model does.

    Returns
    -------
    str
        ``out_dir``.
    """
    from speechbrain_remix.inference import RemixEnhancer

    if os.path.isdir(out_dir) and os.listdir(out_dir) and not force:
        raise FileExistsError(f"{out_dir} exists and is not empty; choose "
                              "another folder or pass --force")
    model, hparams, ckpt = load_run(run_dir, device)
    run_dir = os.path.realpath(run_dir)
    os.makedirs(out_dir, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out_dir, "model.ckpt"))
    header = f"# exported from {run_dir}, {ckpt.path.name}\n"
    with open(os.path.join(out_dir, "hyperparams.yaml"), "w") as f:
        f.write(inference_yaml(model, hparams["sample_rate"], header,
                               outputs_unordered(hparams)))
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(model_card(run_dir, hparams, ckpt, model))
    exported = RemixEnhancer.from_hparams(out_dir, run_opts={
        "device": device})
    original = RemixEnhancer(modules={"model": model}, hparams={
        "sample_rate": hparams["sample_rate"]}, run_opts={"device": device})
    probe = torch.randn(1, int(hparams["sample_rate"]),
                        generator=torch.Generator().manual_seed(0))
    if not torch.equal(exported.enhance_batch(probe),
                       original.enhance_batch(probe)):
        raise RuntimeError(f"{out_dir}: the exported model does not "
                           "reproduce the run's; please report this")
    if onnx:
        from speechbrain_remix.onnx_export import export_onnx

        export_onnx(model, os.path.join(out_dir, "model.onnx"),
                    hparams["sample_rate"])
    return out_dir
