"""Every experiment configuration of the RemixIT paper runs one tiny epoch
(tiny model, a handful of files) on a fake tree of its dataset's layout."""

import glob
import os

import pytest
import torch
from conftest import ROOT, TINY_RUN, argv
from fake_datasets import (
    make_daps,
    make_dns,
    make_fsd50k,
    make_fuss,
    make_librispeech,
    make_librispeech100,
    make_musan,
    make_vctk,
    make_wham,
    make_wsj_chime,
    write_wav,
)
from hyperpyyaml import load_hyperpyyaml

import train
from speechbrain_remix.models import GRUMasker, SNRPredictor, SudoRmRf
from speechbrain_remix.prepare.librifsd50k import prepare_librifsd50k
from speechbrain_remix.prepare.personal import prepare_personal_librispeech

PAPER_YAMLS = sorted(
    os.path.basename(p)
    for p in glob.glob(os.path.join(ROOT, "hparams", "*.yaml"))
    if "_demo" not in p and "_folders" not in p  # a user's own folders:
)  # tests/test_personalized.py
DATASETS = ("librifsd50k", "wham", "vctk", "fuss", "wsjmix", "dns", "daps",
            "librispeech")
# the FUSS recipes' Conformer, shrunk (its other keys are not top-level)
TINY_FUSS = {"num_layers": 1, "batch_size": 4, "crop_seconds": 1.0,
             "number_of_epochs": 2, "save_enhanced": 1, "warmup_steps": 2,
             "average_checkpoints": 2}
# the latent autoencoders, shrunk, on a fake DAPS of 8 speakers, 3 scripts
TINY_DAPS = {"batch_size": 4, "number_of_epochs": 1, "save_enhanced": 1,
             "cae_dims": "[513, 16, 8]", "mae_dims": "[513, 12, 8]",
             "kernel_size": 3, "speaker_split": "[4, 2, 2]",
             "script_split": "[1, 1, 1]", "segment_seconds": 0.5,
             "environments": "[ipad_office1, iphone_bedroom1]"}
# personalized enhancement (Sivaraman et al.): tiny GRUs on a fake
# train-clean-100 of 6 speakers (2 test speakers, 2 test utterances each:
# evaluation is what takes time)
TINY_PSE = {"batch_size": 4, "number_of_epochs": 1, "save_enhanced": 1,
            "hidden": 8, "predictor_hidden": 8, "skip_prep": True}


def dataset_of(name):
    stem = name[: -len(".yaml")]
    for ds in DATASETS:
        if ds in stem.split("_from_")[0]:
            return ds
    raise AssertionError(name)


@pytest.fixture(scope="module")
def fake_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("datasets")
    lfsd = str(base / "lfsd")
    make_librispeech(os.path.join(lfsd, "LibriSpeech"))
    make_fsd50k(os.path.join(lfsd, "FSD50K"))
    lfsd_manifests = str(base / "lfsd_manifests")
    prepare_librifsd50k(os.path.join(lfsd, "LibriSpeech"),
                        os.path.join(lfsd, "FSD50K"), lfsd_manifests,
                        n_mixtures=(6, 2, 3))
    pse = str(base / "pse")
    make_librispeech100(os.path.join(pse, "LibriSpeech"), n_speakers=6,
                        n_utt=8)
    make_musan(pse)
    make_fsd50k(os.path.join(pse, "FSD50K"))
    prepare_personal_librispeech(  # as the YAMLs do (their runs skip it)
        os.path.join(pse, "LibriSpeech"), os.path.join(pse, "musan"),
        os.path.join(pse, "FSD50K"), os.path.join(pse, "PSE"),
        n_test_speakers=2, n_test_utterances=2)  # the runs skip preparing
    street = str(base / "street")
    for k in range(3):
        write_wav(os.path.join(street, f"London_{k}.wav"), 2.0, seed=k)
    # WSJ-mix is simulated (room acoustics) once, as its recipes' shared
    # `prepare` does, for all its YAMLs (12 s each otherwise);
    # test_prepare_datasets checks the simulation itself
    wsjmix = make_wsj_chime(str(base / "wsjmix"))
    with open(os.path.join(ROOT, "hparams", "mixit_wsjmix.yaml")) as f:
        hp = load_hyperpyyaml(f, {"data_folder": wsjmix,
                                  "output_folder": str(base / "wsjmix_out"),
                                  "n_mixtures": [8, 4, 3]})
    hp["prepare"]()
    return {
        "wsjmix_manifests": hp["manifest_folder"],
        "daps": make_daps(str(base / "daps")),
        "street": street,
        "dns": make_dns(str(base / "dns")),
        "wham": make_wham(str(base / "wham")),
        "vctk": make_vctk(str(base / "vctk")),
        "fuss": make_fuss(str(base / "fuss_dev")),
        "wsjmix": wsjmix,
        "librifsd50k": lfsd,
        "lfsd_manifests": lfsd_manifests,
        "librispeech": os.path.join(pse, "PSE"),
    }


def yaml_keys(name):
    with open(os.path.join(ROOT, "hparams", name)) as f:
        text = f.read()
    return {line.split(":")[0] for line in text.splitlines()
            if line and line[0].isalpha()}


@pytest.mark.parametrize("name", PAPER_YAMLS)
def test_one_tiny_epoch(name, fake_roots, tmp_path):
    keys = yaml_keys(name)
    ds = dataset_of(name)
    extra = {"data_folder": fake_roots[ds],
             "output_folder": str(tmp_path / "out")}
    if "n_valid" in keys:
        extra["n_valid"] = 2
    if ds == "wsjmix":  # simulated once by the fixture
        extra.update(manifest_folder=fake_roots["wsjmix_manifests"],
                     skip_prep=True)
    elif "n_mixtures" in keys:
        extra["n_mixtures"] = "[6, 2, 3]"
    if "ood_noise_folder" in keys:
        extra["ood_noise_folder"] = fake_roots["lfsd_manifests"]
    if "teacher_source" in keys:
        with open(os.path.join(ROOT, "hparams", name)) as f:
            hp = load_hyperpyyaml(f, {"data_folder": fake_roots[ds],
                                      "output_folder": str(tmp_path / "h")})
        model_keys = ("num_blocks", "enc_num_basis", "enc_kernel_size",
                      "out_channels", "in_channels", "upsampling_depth",
                      "groups")
        teacher = SudoRmRf(num_sources=hp["teacher_num_sources"],
                           **{k: TINY_RUN[k] for k in model_keys})
        extra["teacher_source"] = str(tmp_path / "teacher.ckpt")
        torch.save(teacher.state_dict(), extra["teacher_source"])
    if "student_schedule" in keys:
        extra.update(student_schedule="[1, 2]", teacher_update_every=1,
                     number_of_epochs=2)
    if "student_blocks" in keys:
        extra["student_blocks"] = 1
    base = TINY_FUSS if ds in ("fuss", "wsjmix") else TINY_RUN
    if ds == "daps":
        base = {k: v for k, v in TINY_DAPS.items() if k in keys}
        extra["manifest_folder"] = str(tmp_path / "manifests")
    if "cae_source" in keys:  # a tiny CAE, as hparams/cae_daps.yaml trains
        from speechbrain_remix.models import SpectralVAE

        extra["cae_source"] = str(tmp_path / "cae.ckpt")
        torch.save(SpectralVAE([513, 16, 8], kernel_size=3).state_dict(),
                   extra["cae_source"])
        extra["noise_only_percent"] = 30
    if "environment" in keys:
        extra["environment"] = "ipad_office1"
    if "street_noise_folder" in keys:
        extra["street_noise_folder"] = fake_roots["street"]
    if ds == "librispeech":
        base = {k: v for k, v in TINY_PSE.items() if k in keys}
        if "speaker" in keys:  # the first test speaker drawn
            with open(os.path.join(fake_roots[ds], "speakers.csv")) as f:
                extra["speaker"] = f.read().splitlines()[1].split(",")[0]
        if "snr_predictor_source" in keys:
            extra["snr_predictor_source"] = str(tmp_path / "predictor.ckpt")
            torch.save(SNRPredictor(hidden=8).state_dict(),
                       extra["snr_predictor_source"])
        if name.startswith("personal_se_pse"):  # SE -> PSE
            extra["init_source"] = str(tmp_path / "se.ckpt")
            torch.save(GRUMasker(hidden=8).state_dict(), extra["init_source"])
    summary = train.main(argv(name, base=base, **extra))
    if ds == "daps":
        assert list(summary) == (["cae"] if name.startswith("cae") else [
            "mixture", "spectral_subtraction", "sse"])
        assert "csig" in summary[list(summary)[-1]] or name.startswith("cae")
    elif ds == "wsjmix":
        assert set(summary) == {"model"}
        assert set(summary["model"]) == {"si_sdr", "si_sdri", "pesq", "stoi"}
    elif ds == "fuss":
        assert set(summary) == {"model"}
        assert set(summary["model"]) == {"1S", "2Si", "3Si", "4Si", "MSi",
                                         "TRF"}
    elif name.startswith("snr_predictor"):
        assert set(summary) == {"predictor"}
    else:
        assert summary["mixture"]["si_sdri"] == 0.0
    assert os.path.isfile(tmp_path / "out" / "test_results.csv")
