"""SpeechBrain models in RemixIT: a pretrained SpeechBrain enhancement or
separation model as the teacher, SpeechBrain lobes as the student.

* :class:`SpeechBrainTeacher` wraps a local folder in SpeechBrain's
  pretrained layout (``hyperparams.yaml`` with ``modules`` and
  ``pretrainer``, one ``<name>.ckpt`` per loadable, as on SpeechBrain's
  model cards) and maps mixtures ``[B, T]`` to ``[speech, mixture -
  speech]``, ``[B, 2, T]``, the slots RemixIT's teacher fills.
* :class:`SpeechBrainSeparator` runs an encoder / mask network / decoder
  triple of :mod:`speechbrain.lobes.models.dual_path` (a Sepformer, a
  DPRNN, a Conv-TasNet ...) as this package's separation models do,
  ``[B, T] -> [B, M, T]``, speech first.

No model hub is ever contacted: the teacher folder must exist, and every
file the folder's ``pretrainer`` names is looked up inside it (SpeechBrain's
``fetch`` would take a missing folder for a HuggingFace model id).
"""

import copy
import importlib
import logging
import os

import torch
import torch.nn.functional as F
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.fetching import FetchConfig, LocalStrategy

logger = logging.getLogger(__name__)

#: the interfaces told apart by the modules a folder's YAML defines
SEPFORMER = "speechbrain.inference.separation.SepformerSeparation"
SPECTRAL_MASK = "speechbrain.inference.enhancement.SpectralMaskEnhancement"
WAVEFORM = "speechbrain.inference.enhancement.WaveformEnhancement"


def fit_length(signal, length):
    """Trims or zero-pads the last dimension to ``length`` samples.

    Example
    -------
    >>> fit_length(torch.ones(2, 5), 3).shape, fit_length(torch.ones(5), 7)
    (torch.Size([2, 3]), tensor([1., 1., 1., 1., 1., 0., 0.]))
    """
    if signal.shape[-1] >= length:
        return signal[..., :length]
    return F.pad(signal, (0, length - signal.shape[-1]))


def import_class(name):
    """The class ``name`` (``package.module.Class`` or
    ``package.module:Class``) names; a class is returned as it is.

    Example
    -------
    >>> import_class(SEPFORMER).__name__
    'SepformerSeparation'
    """
    if not isinstance(name, str):
        return name
    module, _, qualname = name.replace(":", ".").rpartition(".")
    try:
        return getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"interface {name!r}: no such class ({err})") from None


def detect_interface(hparams):
    """The inference interface of a pretrained-layout YAML (loaded).

    In this order: the YAML's own ``interface`` key (a class path, or a
    ``!name:`` class), else by the modules it defines: ``encoder``,
    ``masknet`` and ``decoder`` are a Sepformer-style separator
    (``SepformerSeparation``); an ``enhance_model`` with ``compute_stft``,
    ``spectral_magnitude`` and ``resynth`` a spectral masker
    (``SpectralMaskEnhancement``, e.g. MetricGAN+); another
    ``enhance_model`` a waveform enhancer (``WaveformEnhancement``).

    Example
    -------
    >>> detect_interface({"modules": {"enhance_model": None}})
    'speechbrain.inference.enhancement.WaveformEnhancement'
    """
    if hparams.get("interface") is not None:
        return hparams["interface"]
    modules = set(hparams.get("modules") or {})
    if {"encoder", "masknet", "decoder"} <= modules:
        return SEPFORMER
    if "enhance_model" in modules:
        spectral = ("compute_stft", "spectral_magnitude", "resynth")
        return SPECTRAL_MASK if all(k in hparams for k in spectral) \
            else WAVEFORM
    raise ValueError(
        f"cannot tell which SpeechBrain interface runs modules "
        f"{sorted(modules)}; name it: interface: {SEPFORMER} (or "
        f"{SPECTRAL_MASK}, {WAVEFORM}, or any Pretrained class with "
        "separate_batch or enhance_batch)"
    )


def load_interface(folder, interface=None):
    """A SpeechBrain ``Pretrained`` interface loaded from a local folder,
    never from a model hub: what ``Interface.from_hparams(folder)`` does,
    with every file looked up inside ``folder``.

    Arguments
    ---------
    folder : str
        ``hyperparams.yaml`` (with ``modules`` and ``pretrainer``) and the
        pretrainer's loadables as ``<name>.ckpt``.
    interface : str or type, optional
        The ``Pretrained`` subclass; ``None``: :func:`detect_interface`.

    Returns
    -------
    speechbrain.inference.interfaces.Pretrained
        On the CPU, frozen (eval mode, no gradients).
    """
    if not os.path.isdir(folder):
        # SpeechBrain would read this string as a HuggingFace model id
        raise FileNotFoundError(
            f"{folder}: no such folder. A SpeechBrain teacher is a local "
            "folder in pretrained layout (hyperparams.yaml and "
            "<module>.ckpt files); model hub ids are not fetched: download "
            "the model into a folder first (or export a run with "
            "`speechbrain-remix export RUN_DIR OUT_DIR`)"
        )
    hparams_file = os.path.join(folder, "hyperparams.yaml")
    if not os.path.isfile(hparams_file):
        raise FileNotFoundError(
            f"{folder}: no hyperparams.yaml; a SpeechBrain pretrained-layout "
            "folder has one, with 'modules' and 'pretrainer'"
        )
    with open(hparams_file, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f)
    for key in ("modules", "pretrainer"):
        if key not in hparams:
            raise ValueError(f"{hparams_file}: no '{key}' key; a pretrained-"
                             "layout hyperparams.yaml has 'modules' and "
                             "'pretrainer'")
    pretrainer = hparams["pretrainer"]
    for name in pretrainer.loadables:
        # a path the YAML names (often a hub id) is used only if it is a
        # file here; else the loadable's file in this folder
        named = pretrainer.paths.get(name)
        if named is not None and os.path.isfile(str(named)):
            continue
        path = os.path.join(os.path.abspath(folder), f"{name}.ckpt")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{folder}: no {name}.ckpt for the pretrainer's loadable "
                f"'{name}'" + (f" (the YAML names {named}, not a local "
                               "file)" if named is not None else "")
            )
        pretrainer.paths[name] = path
    pretrainer.set_collect_in(None)  # no links written anywhere
    pretrainer.collect_files(
        default_source=os.path.abspath(folder),
        local_strategy=LocalStrategy.NO_LINK,
        fetch_config=FetchConfig(allow_network=False),
    )
    pretrainer.load_collected()
    cls = import_class(interface or detect_interface(hparams))
    if not (hasattr(cls, "separate_batch") or hasattr(cls, "enhance_batch")):
        raise ValueError(f"interface {cls.__name__} has neither "
                         "separate_batch nor enhance_batch")
    return cls(modules=hparams["modules"], hparams=hparams,
               run_opts={"device": "cpu"})


def model_sample_rate(hparams):
    """The sample rate a pretrained model declares (``sample_rate``, else
    its STFT's), ``None`` when it declares none."""
    rate = getattr(hparams, "sample_rate", None)
    if rate is None:
        rate = getattr(getattr(hparams, "compute_stft", None),
                       "sample_rate", None)
    return rate


class SpeechBrainTeacher(torch.nn.Module):
    """A SpeechBrain enhancement or separation model (a local folder in
    pretrained layout) as RemixIT's teacher: ``[B, T] -> [B, 2, T]``,
    ``[speech, mixture - speech]``.

    The speech estimate is

    * an enhancer's output (an interface with ``enhance_batch``:
      ``SpectralMaskEnhancement``, ``WaveformEnhancement``, this package's
      ``RemixEnhancer`` ...);
    * else a separator's output ``speech_output`` (``separate_batch``:
      ``SepformerSeparation``, ``[B, T, M]``): an index (default 0, the
      first output: the speech slot of a model trained on ``[speech,
      noise]`` targets and the only slot of a one-output Sepformer
      enhancer), or ``"loudest"``: per mixture, the output of the highest
      power (for a model whose slot order is arbitrary, e.g. trained with
      PIT; it presumes speech louder than noise, positive SNRs).

    The noise estimate is always ``mixture - speech``, so the two sum to
    the mixture exactly (the other outputs of a separator are noise).

    The model's weights are frozen (eval mode, no gradients).  Its modules
    are this module's own children under the folder's names (``encoder``,
    ``masknet``, ``decoder`` of a Sepformer), so a student of the same
    architecture (:class:`SpeechBrainSeparator` with those names) can start
    from it (``student_init: teacher``) and follow it by EMA; another
    architecture can only be followed by the static or the sequential
    protocol (after ``K`` epochs the teacher is a copy of the student).

    Arguments
    ---------
    source : str, optional
        The folder; ``None``: loaded later by :meth:`load_folder` (what
        ``teacher_source`` of a RemixIT YAML does).
    interface : str, optional
        The ``Pretrained`` class, e.g.
        ``speechbrain.inference.separation.SepformerSeparation``;
        ``None``: the folder's YAML's ``interface`` key, else told by its
        modules (:func:`detect_interface`).
    speech_output : int or str
        A separator's speech output: an index, or ``"loudest"``.
    sample_rate : int, optional
        The run's rate.  When it and the model's declared rate
        (``sample_rate``, or its STFT's) differ, mixtures are resampled to
        the model's rate and its estimates back; ``None``, or a model that
        declares no rate: no resampling.
    input_std : float, optional
        The models here see mean/std-normalized mixtures (unit std); a
        level-dependent model (a spectral masker on log magnitudes) may
        want its training level instead: each mixture is scaled to this
        standard deviation before the model, and the estimate back.

    Example
    -------
    >>> teacher = SpeechBrainTeacher(speech_output="loudest")
    >>> teacher.pick_speech(torch.stack([torch.zeros(2, 8),
    ...                                  torch.ones(2, 8)], 1))[:, 0]
    tensor([1., 1.])
    """

    def __init__(self, source=None, interface=None, speech_output=0,
                 sample_rate=None, input_std=None):
        super().__init__()
        if not (speech_output == "loudest" or (
                isinstance(speech_output, int) and speech_output >= 0)):
            raise ValueError("speech_output must be an output index (int "
                             f">= 0) or 'loudest', got {speech_output!r}")
        # rebuilds this teacher (teacher-update checkpoints)
        self.config = dict(source=source, interface=interface,
                           speech_output=speech_output,
                           sample_rate=sample_rate, input_std=input_std)
        self.interface = None
        self.model_rate = None
        if source is not None:
            self.load_folder(source)

    def load_folder(self, source):
        """Loads the model of ``source`` (see :func:`load_interface`);
        ``load_pretrained`` calls this with a YAML's ``teacher_source``.
        Returns the folder's ``hyperparams.yaml``."""
        interface = load_interface(source, self.config["interface"])
        for name in list(self._modules):
            del self._modules[name]
        for name, module in interface.mods.items():
            self.add_module(name, module)
        # kept out of the module tree: its modules are ours (above), once
        self.__dict__["interface"] = interface
        self.config["source"] = source
        self.model_rate = model_sample_rate(interface.hparams)
        rate = self.config["sample_rate"]
        if rate is not None and self.model_rate is None:
            logger.info("%s declares no sample rate: assumed %d Hz",
                        source, rate)
        self.requires_grad_(False).eval()
        return os.path.join(source, "hyperparams.yaml")

    def pick_speech(self, outputs):
        """The speech estimate ``[B, T]`` among a separator's ``[B, M, T]``
        outputs, by the ``speech_output`` rule."""
        rule = self.config["speech_output"]
        if rule == "loudest":
            index = outputs.pow(2).mean(-1).argmax(1)
            return outputs[torch.arange(len(outputs)), index]
        if rule >= outputs.shape[1]:
            raise ValueError(f"speech_output={rule}, but the model has "
                             f"{outputs.shape[1]} outputs")
        return outputs[:, rule]

    def speech(self, mix):
        """The model's speech estimate of ``mix`` ``[B, T]`` (at the
        model's rate), ``[B, T']``."""
        if self.interface is None:
            raise RuntimeError("no SpeechBrain model loaded: give a source "
                               "folder or call load_folder")
        self.interface.device = str(mix.device)  # where it moves inputs
        if hasattr(self.interface, "enhance_batch"):
            # an enhancer's output is speech, whatever else it can do
            speech = self.interface.enhance_batch(mix)
            if speech.dim() == 3:  # [B, 1, T] or [B, T, 1]
                speech = speech.squeeze(1 if speech.shape[1] == 1 else -1)
            return speech.to(mix.device)
        outputs = self.interface.separate_batch(mix)  # [B, T, M]
        return self.pick_speech(outputs.transpose(1, 2)).to(mix.device)

    def forward(self, mix):
        """``[B, T]`` mixtures to ``[B, 2, T]``: speech, mixture - speech."""
        x, scale = mix, None
        if self.config["input_std"] is not None:
            scale = self.config["input_std"] / (
                mix.std(-1, keepdim=True) + 1e-9)
            x = mix * scale
        rate = self.config["sample_rate"]
        resample = rate is not None and self.model_rate is not None \
            and rate != self.model_rate
        if resample:
            import torchaudio.functional as AF

            x = AF.resample(x, rate, self.model_rate)
        speech = self.speech(x)
        if resample:
            speech = AF.resample(speech, self.model_rate, rate)
        speech = fit_length(speech, mix.shape[-1])
        if scale is not None:
            speech = speech / scale
        return torch.stack([speech, mix - speech], 1)


def reinitialise(module):
    """Fresh parameters for every submodule that can reset its own."""
    for sub in module.modules():
        if sub is not module and hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
    return module


class SpeechBrainSeparator(torch.nn.Module):
    """A mask-based separator of SpeechBrain lobes, ``[B, T] -> [B, M, T]``
    (what ``SepformerSeparation.separate_batch`` computes, sources on the
    second axis).

    ``encoder`` maps ``[B, T]`` to ``[B, N, L]``, ``masknet`` to ``M``
    masks ``[M, B, N, L]`` (its ``num_spks``), ``decoder`` each masked
    representation back to ``[B, T']``; the outputs are trimmed or padded
    to ``T``.  With ``M = 2`` it is a RemixIT student (speech, noise) whose
    names match a Sepformer folder's modules (see
    :class:`SpeechBrainTeacher`).

    Arguments
    ---------
    encoder : torch.nn.Module
        E.g. ``speechbrain.lobes.models.dual_path.Encoder``.
    masknet : torch.nn.Module
        E.g. ``speechbrain.lobes.models.dual_path.Dual_Path_Model`` with
        ``SBTransformerBlock`` intra and inter models (a Sepformer).
    decoder : torch.nn.Module
        E.g. ``speechbrain.lobes.models.dual_path.Decoder``.

    Example
    -------
    >>> from speechbrain.lobes.models.dual_path import (
    ...     Decoder, Dual_Path_Model, Encoder, SBTransformerBlock)
    >>> block = SBTransformerBlock(num_layers=1, d_model=8, nhead=1,
    ...                            d_ffn=16)
    >>> model = SpeechBrainSeparator(
    ...     Encoder(kernel_size=8, out_channels=8),
    ...     Dual_Path_Model(8, 8, block, block, num_layers=1, K=10,
    ...                     num_spks=2),
    ...     Decoder(in_channels=8, out_channels=1, kernel_size=8, stride=4,
    ...             bias=False))
    >>> model(torch.randn(3, 161)).shape
    torch.Size([3, 2, 161])
    >>> model.with_depth(2).num_blocks
    2
    """

    #: rebuilt from its modules, not from a configuration
    config = None

    def __init__(self, encoder, masknet, decoder):
        super().__init__()
        self.encoder = encoder
        self.masknet = masknet
        self.decoder = decoder

    @property
    def num_blocks(self):
        """Depth of a dual-path mask network (``None`` for others)."""
        return getattr(self.masknet, "num_layers", None)

    def forward(self, mix):
        represented = self.encoder(mix)  # [B, N, L]
        masks = self.masknet(represented)  # [M, B, N, L]
        sources = torch.stack(
            [self.decoder(represented * mask) for mask in masks], 1)
        return fit_length(sources, mix.shape[-1])

    def with_depth(self, num_blocks=None):
        """A freshly initialised separator of this architecture,
        ``num_blocks`` dual-path blocks deep (a dual-path mask network's
        ``num_layers``; ``None``: this one's): the sequential protocol's
        next student."""
        new = reinitialise(copy.deepcopy(self))
        if num_blocks is None or num_blocks == self.num_blocks:
            return new
        blocks = getattr(new.masknet, "dual_mdl", None)
        if blocks is None or not len(blocks):
            raise ValueError(
                f"a {type(self.masknet).__name__} mask network has no depth "
                f"to set to {num_blocks}: leave student_blocks_schedule "
                "out, or make it constant")
        # Dual_Path_Model builds its blocks as copies of one block
        new.masknet.dual_mdl = torch.nn.ModuleList(
            reinitialise(copy.deepcopy(blocks[0])) for _ in range(num_blocks))
        new.masknet.num_layers = num_blocks
        return new
