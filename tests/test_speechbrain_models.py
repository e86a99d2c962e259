"""SpeechBrain models in RemixIT: tiny folders in SpeechBrain's pretrained
layout (hyperparams.yaml with modules and pretrainer, <name>.ckpt files,
as on SpeechBrain's model cards) as the teacher, a student of SpeechBrain
lobes."""

import os

import huggingface_hub
import pytest
import torch
from conftest import TINY, argv
from hyperpyyaml import load_hyperpyyaml
from speechbrain.inference.enhancement import SpectralMaskEnhancement
from speechbrain.inference.separation import SepformerSeparation

import train
from speechbrain_remix.models.speechbrain_models import (
    SpeechBrainSeparator,
    SpeechBrainTeacher,
    load_interface,
)
from speechbrain_remix.teacher import SequentialTeacher

# The layout of speechbrain/sepformer-wham-enhancement's hyperparams.yaml,
# with tiny sizes.
SEPFORMER_YAML = """\
sample_rate: {rate}
num_spks: {num_spks}
Encoder: !new:speechbrain.lobes.models.dual_path.Encoder
    kernel_size: 8
    out_channels: 8
SBtfintra: !new:speechbrain.lobes.models.dual_path.SBTransformerBlock
    num_layers: 1
    d_model: 8
    nhead: 1
    d_ffn: 16
    dropout: 0
    use_positional_encoding: True
    norm_before: True
SBtfinter: !new:speechbrain.lobes.models.dual_path.SBTransformerBlock
    num_layers: 1
    d_model: 8
    nhead: 1
    d_ffn: 16
    dropout: 0
    use_positional_encoding: True
    norm_before: True
MaskNet: !new:speechbrain.lobes.models.dual_path.Dual_Path_Model
    num_spks: !ref <num_spks>
    in_channels: 8
    out_channels: 8
    num_layers: 1
    K: 25
    intra_model: !ref <SBtfintra>
    inter_model: !ref <SBtfinter>
    norm: ln
    linear_layer_after_inter_intra: False
    skip_around_intra: True
Decoder: !new:speechbrain.lobes.models.dual_path.Decoder
    in_channels: 8
    out_channels: 1
    kernel_size: 8
    stride: 4
    bias: False
modules:
    encoder: !ref <Encoder>
    decoder: !ref <Decoder>
    masknet: !ref <MaskNet>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        encoder: !ref <Encoder>
        masknet: !ref <MaskNet>
        decoder: !ref <Decoder>
"""

# The layout of speechbrain/metricgan-plus-voicebank's, with a one-layer
# masker on 33 frequency bins.
MASKER_YAML = """\
sample_rate: 16000
window_fn: !name:torch.hamming_window
    periodic: False
compute_stft: !new:speechbrain.processing.features.STFT
    n_fft: 64
    hop_length: 2
    win_length: 4
    sample_rate: !ref <sample_rate>
    window_fn: !ref <window_fn>
compute_istft: !new:speechbrain.processing.features.ISTFT
    n_fft: 64
    hop_length: 2
    win_length: 4
    sample_rate: !ref <sample_rate>
    window_fn: !ref <window_fn>
spectral_magnitude: !name:speechbrain.processing.features.spectral_magnitude
    power: 0.5
resynth: !name:speechbrain.processing.signal_processing.resynthesize
    stft: !ref <compute_stft>
    istft: !ref <compute_istft>
    normalize_wavs: False
enhance_model: !new:torch.nn.Sequential
    - !new:torch.nn.Linear [33, 33]
    - !new:torch.nn.Sigmoid
modules:
    enhance_model: !ref <enhance_model>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        enhance_model: !ref <enhance_model>
"""


def write_folder(folder, text, seed=0):
    """A pretrained-layout folder: the YAML and one random-weights
    ``<name>.ckpt`` per loadable."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "hyperparams.yaml"), "w") as f:
        f.write(text)
    torch.manual_seed(seed)
    hparams = load_hyperpyyaml(text)
    for name, module in hparams["pretrainer"].loadables.items():
        for p in module.parameters():  # away from the default init
            p.data.normal_(0, 0.3)
        torch.save(module.state_dict(), os.path.join(folder, f"{name}.ckpt"))
    return str(folder)


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Any attempt to reach a model hub fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"tried the hub: {args} {kwargs}")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr("speechbrain.utils.fetching.download_file", refuse)


@pytest.fixture
def sepformer(tmp_path):
    return write_folder(tmp_path / "sepformer",
                        SEPFORMER_YAML.format(rate=16000, num_spks=2))


def test_sepformer_teacher_is_the_interface_output(sepformer):
    mix = torch.randn(3, 400)
    reference = SepformerSeparation.from_hparams(sepformer, savedir=None)
    expected = reference.separate_batch(mix)  # [B, T, M]
    for output in (0, 1):
        teacher = SpeechBrainTeacher(sepformer, speech_output=output)
        assert isinstance(teacher.interface, SepformerSeparation)  # detected
        estimates = teacher(mix)
        assert estimates.shape == (3, 2, 400)
        torch.testing.assert_close(estimates[:, 0], expected[..., output])
        assert torch.equal(estimates[:, 1], mix - estimates[:, 0])
    # weights frozen, eval mode; the folder's names are ours
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not any(m.training for m in teacher.modules())
    assert {n.split(".")[0] for n, _ in teacher.named_parameters()} == {
        "encoder", "masknet", "decoder"}
    with pytest.raises(ValueError, match="speech_output=2.*2 outputs"):
        SpeechBrainTeacher(sepformer, speech_output=2)(mix)


def test_loudest_rule_picks_the_louder_output_per_mixture(sepformer):
    teacher = SpeechBrainTeacher(sepformer, speech_output="loudest")
    mix = torch.randn(4, 400)
    outputs = teacher.interface.separate_batch(mix).transpose(1, 2)
    power = outputs.pow(2).mean(-1)
    speech = teacher(mix)[:, 0]
    for b in range(4):
        assert torch.equal(speech[b], outputs[b, power[b].argmax()])
    # a louder second output is picked
    scaled = torch.stack([outputs[:, 0], 10 * outputs[:, 1]], 1)
    assert torch.equal(teacher.pick_speech(scaled), scaled[:, 1])
    with pytest.raises(ValueError, match="speech_output"):
        SpeechBrainTeacher(speech_output="first")


def test_spectral_enhancer_teacher(tmp_path):
    folder = write_folder(tmp_path / "masker", MASKER_YAML)
    mix = torch.randn(2, 300)
    expected = SpectralMaskEnhancement.from_hparams(
        folder, savedir=None).enhance_batch(mix)
    teacher = SpeechBrainTeacher(folder)
    assert isinstance(teacher.interface, SpectralMaskEnhancement)
    estimates = teacher(mix)
    torch.testing.assert_close(estimates[:, 0], expected)
    assert torch.equal(estimates[:, 1], mix - estimates[:, 0])
    assert not any(p.requires_grad for p in teacher.parameters())
    # input_std: the model sees mixtures at that level, estimates come back
    level = SpeechBrainTeacher(folder, input_std=0.1)(mix)
    scale = 0.1 / mix.std(-1, keepdim=True)
    expected = teacher.interface.enhance_batch(mix * scale) / scale
    torch.testing.assert_close(level[:, 0], expected)


def test_sample_rate_mismatch_resamples(tmp_path):
    import torchaudio.functional as AF

    folder = write_folder(tmp_path / "sep8k",
                          SEPFORMER_YAML.format(rate=8000, num_spks=1))
    teacher = SpeechBrainTeacher(folder, sample_rate=16000)
    assert teacher.model_rate == 8000
    mix = torch.randn(2, 800)
    low = teacher.interface.separate_batch(AF.resample(mix, 16000, 8000))
    expected = AF.resample(low[..., 0], 8000, 16000)[:, :800]
    estimates = teacher(mix)
    torch.testing.assert_close(estimates[:, 0], expected)
    assert torch.equal(estimates[:, 1], mix - estimates[:, 0])


def test_own_interface_named_in_the_folder(sepformer, tmp_path):
    """A folder whose YAML names its interface (as an export of this
    package's runs does) is loaded with it."""
    folder = tmp_path / "named"
    text = open(os.path.join(sepformer, "hyperparams.yaml")).read()
    write_folder(folder, text + "interface: "
                 "speechbrain.inference.separation.SepformerSeparation\n")
    assert isinstance(load_interface(str(folder)), SepformerSeparation)
    with pytest.raises(ValueError, match="no such class"):
        SpeechBrainTeacher(str(folder), interface="speechbrain.NoSuch")


def test_missing_folder_or_file_is_clear_and_never_tries_the_hub(
        sepformer, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder.*hub"):
        SpeechBrainTeacher("speechbrain/sepformer-wham-enhancement")
    with pytest.raises(FileNotFoundError, match="no hyperparams.yaml"):
        SpeechBrainTeacher(str(tmp_path))
    os.remove(os.path.join(sepformer, "masknet.ckpt"))
    with pytest.raises(FileNotFoundError, match="no masknet.ckpt"):
        SpeechBrainTeacher(sepformer)
    # a hub path named in the YAML is not followed either
    folder = write_folder(tmp_path / "paths", MASKER_YAML.replace(
        "    loadables:", "    paths:\n        enhance_model: "
        "speechbrain/metricgan-plus-voicebank/enhance_model.ckpt\n"
        "    loadables:"))
    SpeechBrainTeacher(folder)  # its own enhance_model.ckpt
    os.remove(os.path.join(folder, "enhance_model.ckpt"))
    with pytest.raises(FileNotFoundError, match="not a local file"):
        SpeechBrainTeacher(folder)


# the tiny run of conftest, less its Sudo rm -rf sizes
DEMO_RUN = {k: TINY[k] for k in (
    "batch_size", "crop_seconds", "number_of_epochs", "save_enhanced",
    "demo_folder", "n_train", "n_valid", "n_test")}


def lobes_student(num_layers=1):
    """A separator of SpeechBrain lobes with the tiny Sepformer's names
    and sizes."""
    return SpeechBrainSeparator(*[
        load_hyperpyyaml(SEPFORMER_YAML.format(rate=16000, num_spks=2))[k]
        for k in ("Encoder", "MaskNet", "Decoder")])


def test_lobes_student_computes_separate_batch(sepformer):
    reference = SepformerSeparation.from_hparams(sepformer, savedir=None)
    student = SpeechBrainSeparator(reference.mods.encoder,
                                   reference.mods.masknet,
                                   reference.mods.decoder)
    mix = torch.randn(2, 403)
    torch.testing.assert_close(
        student(mix), reference.separate_batch(mix).transpose(1, 2))
    # the sequential protocol's next student: fresh weights, deeper
    deeper = student.with_depth(2)
    assert deeper.num_blocks == 2 and deeper(mix).shape == (2, 2, 403)
    fresh = student.with_depth(None)
    assert not torch.equal(fresh.decoder.weight, student.decoder.weight)


def test_same_architecture_student_starts_from_the_teacher(sepformer):
    """The folder's module names are the lobes student's: EMA and
    ``student_init: teacher`` work between the two."""
    from speechbrain_remix.brains.remixit import copy_matching
    from speechbrain_remix.teacher import EMATeacher

    teacher, student = SpeechBrainTeacher(sepformer), lobes_student()
    copy_matching(student, teacher)
    mix = torch.randn(2, 400)
    torch.testing.assert_close(student(mix)[:, 0], teacher(mix)[:, 0])
    hook = EMATeacher(gamma=1.0)
    hook.attach(teacher)
    student.decoder.weight.data.mul_(2.0)

    class Brain:
        pass

    brain = Brain()
    brain.student = student
    hook.update(brain)  # the interface runs the updated weights
    torch.testing.assert_close(teacher(mix)[:, 0], student(mix)[:, 0])


def test_remixit_from_a_speechbrain_folder(demo_data, sepformer, tmp_path):
    """RemixIT with the tiny Sepformer folder as the teacher and a lobes
    student: the student learns, the (static) teacher does not; a resumed
    run rebuilds the teacher from its folder."""
    out = str(tmp_path / "run")
    before = {k: v.clone() for k, v in
              SpeechBrainTeacher(sepformer).state_dict().items()}
    def args(**extra):
        tiny = dict(data_folder=demo_data, output_folder=out,
                    teacher_folder=sepformer, student_channels=8,
                    student_nhead=1, student_d_ffn=32, student_layers=1,
                    student_blocks=1, student_chunk=25,
                    student_kernel_size=8)
        return argv("remixit_speechbrain_demo.yaml", base=DEMO_RUN,
                    **{**tiny, **extra})

    hparams_file, run_opts, overrides = train.sb.parse_arguments(args())
    hparams = train.load_hparams(hparams_file, overrides)
    initial = {k: v.clone() for k, v in hparams["student"].state_dict()
               .items()}
    summary = train.main(args())
    assert list(summary) == ["mixture", "teacher", "student"]
    from speechbrain.utils.checkpoints import Checkpointer

    ckpt = Checkpointer(os.path.join(out, "save")).find_checkpoint()
    student = torch.load(ckpt.paramfiles["student"])
    assert any(not torch.equal(student[k], initial[k]) for k in initial)
    saved = torch.load(ckpt.paramfiles["teacher_update"])["teacher"]
    assert saved["config"]["source"] == sepformer
    assert all(torch.equal(saved["state_dict"][k], v)
               for k, v in before.items())

    # one more epoch: resumed, the teacher rebuilt from its folder
    train.main(args(number_of_epochs=2))
    ckpt = Checkpointer(os.path.join(out, "save")).find_checkpoint()
    again = torch.load(ckpt.paramfiles["teacher_update"])["teacher"]
    assert all(torch.equal(again["state_dict"][k], v)
               for k, v in before.items())
    assert any(not torch.equal(v, student[k]) for k, v in torch.load(
        ckpt.paramfiles["student"]).items())

    # EMA needs the student's architecture (its d_ffn differs from the
    # teacher's): refused before training
    with pytest.raises(ValueError, match="same architecture"):
        train.main(args(teacher_update="!new:speechbrain_remix.teacher."
                        "EMATeacher", output_folder=str(tmp_path / "ema")))


def test_sequential_teacher_becomes_the_lobes_student(sepformer):
    """After K epochs the foreign teacher is replaced by a copy of the
    student (another architecture), and the next student is deeper."""
    student = lobes_student()

    class Brain:
        def start_new_student(self, blocks):
            self.student = self.student.with_depth(blocks)

    brain = Brain()
    brain.student = student
    hook = SequentialTeacher(1, [1, 2])
    hook.attach(SpeechBrainTeacher(sepformer))
    hook.before_epoch(brain, 2)
    assert isinstance(hook.teacher, SpeechBrainSeparator)
    assert hook.teacher.num_blocks == 1 and brain.student.num_blocks == 2
    assert not any(p.requires_grad for p in hook.teacher.parameters())
