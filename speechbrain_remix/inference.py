"""Enhance audio files with a trained model.

From Python::

    from speechbrain_remix.inference import Enhancer
    enhancer = Enhancer.from_run("results/demo/remixit")
    enhancer.enhance_file("noisy.wav", "enhanced.wav")

From the command line (files or whole folders)::

    python -m speechbrain_remix.inference --run results/demo/remixit \\
        --input noisy_folder --output enhanced_folder

A run folder is what ``train.py`` wrote: its ``hyperparams.yaml`` rebuilds
the model and its ``save`` folder holds the checkpoint, chosen as the run
chose it for evaluation (``select_by``).
"""

import argparse
import glob
import os

import soundfile as sf
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.checkpoints import Checkpointer, average_checkpoints

from speechbrain_remix.apply import separate
from speechbrain_remix.data import read_audio


class Enhancer:
    """Applies a separation model as training did (normalization, mixture
    consistency) and keeps its speech output; a model whose
    ``outputs_speech`` is true (the latent-space enhancer) is applied as
    it is.

    Arguments
    ---------
    model : torch.nn.Module
        Maps ``[B, T]`` mixtures to ``[B, M, T]`` sources, speech first.
    sample_rate : int
        Rate the model was trained at; inputs must have it.
    device : str
        Where to run.

    Example
    -------
    >>> from speechbrain_remix.models import SudoRmRf
    >>> model = SudoRmRf(num_blocks=1, enc_num_basis=16, out_channels=8,
    ...                  in_channels=16, upsampling_depth=2, groups=2)
    >>> Enhancer(model).enhance_batch(torch.randn(2, 1600)).shape
    torch.Size([2, 1600])
    """

    def __init__(self, model, sample_rate=16000, device="cpu"):
        self.model = model.to(device).eval()
        self.sample_rate = sample_rate
        self.device = device

    @classmethod
    def from_run(cls, run_folder, module=None, device="cpu"):
        """Loads the evaluated model of a ``train.py`` run folder.

        Arguments
        ---------
        run_folder : str
            The run's ``output_folder``.
        module : str, optional
            Name of the module to load (default: ``student`` for RemixIT
            runs, ``model`` otherwise).
        device : str
            Where to run.
        """
        path = os.path.join(run_folder, "hyperparams.yaml")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} not found: run_folder must be the output_folder of"
                " a train.py run"
            )
        with open(path) as f:
            hparams = load_hyperpyyaml(f)
        modules = hparams["modules"]
        module = module or ("student" if "student" in modules else "model")
        select = hparams.get("select_by", "last")
        keys = {} if select == "last" else (
            {"min_key": "valid_loss"} if select == "valid_loss"
            else {"max_key": select})
        saved = Checkpointer(hparams["save_folder"])
        k = int(hparams.get("average_checkpoints") or 0)
        ckpts = saved.find_checkpoints(max_num_checkpoints=max(1, k), **keys)
        if not ckpts:
            raise FileNotFoundError(
                f"{hparams['save_folder']}: no checkpoint; train first"
            )
        brain_class = hparams.get("brain_class")
        if hasattr(brain_class, "inference_model"):  # not a separator
            return cls(brain_class.inference_model(hparams, ckpts[0]),
                       hparams["sample_rate"], device)
        if module not in modules:  # e.g. an SNR predictor: no enhancer
            raise ValueError(
                f"{run_folder}: this run trained {sorted(modules)}, not an "
                "enhancement model; give the folder of a run that enhances "
                "(supervised, MixIT, RemixIT, Self-Remixing, MAE or PSE)")
        if k and select != "last":  # as evaluation did: the k best averaged
            state = average_checkpoints(ckpts, module)
        else:
            state = torch.load(ckpts[0].paramfiles[module],
                               map_location="cpu")
        model = modules[module]
        if hasattr(model, "with_depth"):  # a sequential run may have grown
            depth = 1 + max(int(k.split(".")[1]) for k in state
                            if k.startswith("blocks."))
            model = model.with_depth(depth)
        model.load_state_dict(state)
        return cls(model, hparams["sample_rate"], device)

    @torch.no_grad()
    def enhance_batch(self, mixtures):
        """``[B, T]`` mixtures -> ``[B, T]`` speech estimates."""
        mixtures = mixtures.to(self.device)
        if getattr(self.model, "outputs_speech", False):
            return self.model(mixtures).cpu()  # e.g. E_m -> D_c
        return separate(self.model, mixtures)[:, 0].cpu()

    def enhance_file(self, path, out_path):
        """Enhances one mono file at the model's rate into ``out_path``."""
        wav = read_audio(path, self.sample_rate)
        speech = self.enhance_batch(wav.unsqueeze(0))[0]
        peak = max(1.0, float(speech.abs().max()))  # never clip on write
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        sf.write(out_path, (speech / peak).numpy(), self.sample_rate)
        return out_path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Enhance audio files.")
    parser.add_argument("--run", required=True, help="train.py output folder")
    parser.add_argument("--input", required=True, help="file or folder")
    parser.add_argument("--output", required=True, help="file or folder")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    enhancer = Enhancer.from_run(args.run, device=args.device)
    if os.path.isdir(args.input):
        files = sorted(glob.glob(os.path.join(args.input, "*.wav")) +
                       glob.glob(os.path.join(args.input, "*.flac")))
        pairs = [(f, os.path.join(args.output, os.path.basename(f)))
                 for f in files]
    else:
        pairs = [(args.input, args.output)]
    from tqdm import tqdm

    for src, dst in tqdm(pairs, desc="enhancing"):
        enhancer.enhance_file(src, dst)
    print(f"enhanced {len(pairs)} file(s) into {args.output}")


if __name__ == "__main__":
    main()
