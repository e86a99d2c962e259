"""End-to-end runs of the recipes on the shipped demo corpus, shrunk to a
tiny model and a handful of mixtures."""

import csv
import os

import pytest
import soundfile as sf
import torch
from conftest import argv
from speechbrain.utils.checkpoints import Checkpointer

import train

METRICS = ["si_sdr", "si_sdri", "pesq", "stoi"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def teacher_run(demo_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("supervised"))
    summary = train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                              output_folder=out))
    return out, summary


def test_supervised_demo_writes_results(teacher_run):
    out, summary = teacher_run
    assert list(summary) == ["mixture", "model"]
    rows = read_csv(os.path.join(out, "test_results.csv"))
    assert list(rows[0]) == ["ID", *METRICS]
    assert rows[-1]["ID"] == "avg" and len(rows) == 3 + 1
    assert abs(float(rows[-1]["si_sdr"]) - summary["model"]["si_sdr"]) < 1e-3
    mixture = read_csv(os.path.join(out, "test_results_mixture.csv"))
    assert all(abs(float(r["si_sdri"])) < 1e-6 for r in mixture)
    assert os.listdir(os.path.join(out, "enhanced", "model"))


def test_remixit_demo_summary(teacher_run, demo_data, tmp_path):
    teacher_out, teacher_summary = teacher_run
    out = str(tmp_path / "remixit")
    summary = train.main(argv(
        "remixit_demo.yaml", data_folder=demo_data, output_folder=out,
        teacher_source=os.path.join(teacher_out, "save"),
    ))
    rows = read_csv(os.path.join(out, "summary.csv"))
    assert [r["ID"] for r in rows] == ["mixture", "teacher", "student"]
    assert list(rows[0]) == ["ID", *METRICS]
    # the "teacher" row is the pre-trained teacher, untouched by EMA updates
    assert summary["teacher"]["si_sdr"] == pytest.approx(
        teacher_summary["model"]["si_sdr"], abs=1e-3
    )
    results = read_csv(os.path.join(out, "test_results.csv"))
    assert results[-1]["ID"] == "avg"
    for figure in ("training.png", "si_sdri.png", "spectrograms.png"):
        assert os.path.getsize(os.path.join(out, figure)) > 1000

    # the trained student enhances files: from Python and from the CLI
    from speechbrain_remix.inference import Enhancer, main

    mix = read_csv(os.path.join(demo_data, "B_test.csv"))[0]["mix_wav"]
    mix = mix.replace("$data_root", demo_data)
    enhanced = Enhancer.from_run(out).enhance_file(mix, str(tmp_path / "e.wav"))
    wav, rate = sf.read(enhanced)
    assert rate == 16000 and wav.shape == sf.read(mix)[0].shape
    main(["--run", out, "--input", os.path.dirname(mix),
          "--output", str(tmp_path / "all")])
    assert len(os.listdir(tmp_path / "all")) == 3


def test_causal_student_by_remixit_streams(teacher_run, demo_data, tmp_path,
                                           capsys):
    """hparams/remixit_causal_demo.yaml: a non-causal teacher trains a
    causal student, which then enhances a test file in streaming mode
    (Python and CLI) exactly as it does offline."""
    from speechbrain_remix.cli import main
    from speechbrain_remix.inference import RemixEnhancer

    out = str(tmp_path / "causal")
    summary = train.main(argv(
        "remixit_causal_demo.yaml", data_folder=demo_data, output_folder=out,
        teacher_source=os.path.join(teacher_run[0], "save"),
        student_upsampling_depth=2,
    ))
    assert list(summary) == ["mixture", "teacher", "student"]
    assert summary["teacher"]["si_sdr"] == pytest.approx(
        teacher_run[1]["model"]["si_sdr"], abs=1e-3)
    enhancer = RemixEnhancer.from_run(out)
    assert enhancer.mods.model.causal
    assert not enhancer.mods.model.state_dict().keys() & {"encoder.weight"}
    mix = read_csv(os.path.join(demo_data, "B_test.csv"))[0]["mix_wav"]
    mix = mix.replace("$data_root", demo_data)
    streamed = enhancer.enhance_file(mix, streaming=True, block_ms=100)
    assert (streamed - enhancer.enhance_file(mix)).abs().max() < 1e-5
    assert main(["enhance", out, mix, "--out", str(tmp_path / "e"),
                 "--streaming", "--block-ms", "9"]) == 0
    # 9 ms rounded up to 160 samples (blocks of 20: hop 10, depth 2) + 11
    # samples of synthesis overlap, at 16 kHz
    assert "blocks of 160 samples, algorithmic latency 10.7 ms" in \
        capsys.readouterr().out
    assert sf.read(os.path.join(tmp_path, "e", os.path.basename(mix)))[
        0].shape == sf.read(mix)[0].shape


def test_missing_teacher_is_a_clear_error(demo_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="train the teacher first"):
        train.main(argv("remixit_demo.yaml", data_folder=demo_data,
                        output_folder=str(tmp_path / "r"),
                        teacher_source=str(tmp_path / "nothing")))


def test_mixit_teacher_then_remixit(demo_data, tmp_path):
    """The unsupervised path: a MixIT teacher (3 outputs, OOD noise) whose
    two noise outputs are summed by RemixIT; the 3-output student starts
    from it and feeds its EMA."""
    mixit_out = str(tmp_path / "mixit")
    summary = train.main(argv("mixit_demo.yaml", data_folder=demo_data,
                              output_folder=mixit_out))
    assert list(summary) == ["mixture", "model"]
    out = str(tmp_path / "remixit")
    summary = train.main(argv(
        "remixit_demo.yaml", data_folder=demo_data, output_folder=out,
        teacher_source=os.path.join(mixit_out, "save"),
        teacher_num_sources=3, student_num_sources=3,
    ))
    assert list(summary) == ["mixture", "teacher", "student"]


def test_wrong_data_folder_is_named(tmp_path):
    from speechbrain_remix.data import DataError
    from speechbrain_remix.prepare.demo import prepare_demo

    with pytest.raises(DataError, match="shipped demo corpus"):
        prepare_demo(str(tmp_path), str(tmp_path / "out"))


def test_test_only_reevaluates_the_selected_checkpoint(teacher_run,
                                                      demo_data):
    out, summary = teacher_run
    again = train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                            output_folder=out) + ["--test_only"])
    assert again["model"]["si_sdr"] == pytest.approx(
        summary["model"]["si_sdr"], abs=1e-4)


def test_mixit_extra_noise_and_generalized_assignments(demo_data, tmp_path):
    summary = train.main(argv("mixit_demo.yaml", data_folder=demo_data,
                              output_folder=str(tmp_path / "m"),
                              extra_noise=True, all_assignments=True))
    assert list(summary) == ["mixture", "model"]


def test_self_remixing_demo_from_scratch(demo_data, tmp_path):
    out = str(tmp_path / "sr")
    summary = train.main(argv("self_remixing_demo.yaml",
                              data_folder=demo_data, output_folder=out,
                              number_of_epochs=2))
    assert list(summary) == ["mixture", "model"]
    rows = read_csv(os.path.join(out, "test_results.csv"))
    assert rows[-1]["ID"] == "avg"


def test_average_of_best_checkpoints(demo_data, tmp_path):
    """average_checkpoints: k keeps the k best checkpoints and evaluates
    the average of their parameters."""
    from speechbrain.utils.checkpoints import average_checkpoints

    out = str(tmp_path / "avg")
    summary = train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                              output_folder=out, number_of_epochs=3,
                              average_checkpoints=2))
    ckpts = Checkpointer(os.path.join(out, "save")).find_checkpoints(
        min_key="valid_loss", max_num_checkpoints=2)
    assert len(ckpts) == 2
    expected = average_checkpoints(ckpts, "model")
    again = train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                            output_folder=out, number_of_epochs=3,
                            average_checkpoints=2) + ["--test_only"])
    assert again["model"]["si_sdr"] == pytest.approx(
        summary["model"]["si_sdr"], abs=1e-4)
    assert all(torch.isfinite(v).all() for v in expected.values())
    single = train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                             output_folder=out, number_of_epochs=3,
                             average_checkpoints=0) + ["--test_only"])
    assert single["model"]["si_sdr"] != pytest.approx(
        summary["model"]["si_sdr"], abs=1e-4)


def test_selection_by_a_validation_metric(demo_data, tmp_path):
    out = str(tmp_path / "sel")
    train.main(argv("supervised_demo.yaml", data_folder=demo_data,
                    output_folder=out, number_of_epochs=2,
                    select_by="si_sdr"))
    ckpts = Checkpointer(os.path.join(out, "save")).find_checkpoints()
    assert all("si_sdr" in c.meta for c in ckpts)
    best = max(c.meta["si_sdr"] for c in ckpts)
    chosen = Checkpointer(os.path.join(out, "save")).find_checkpoint(
        max_key="si_sdr")
    assert chosen.meta["si_sdr"] == best


def test_metric_selection_without_references_is_named(demo_data, tmp_path,
                                                       teacher_run):
    from speechbrain_remix.data import DataError

    teacher_out, _ = teacher_run
    with pytest.raises(DataError, match="needs references"):
        train.main(argv("remixit_demo.yaml", data_folder=demo_data,
                        output_folder=str(tmp_path / "r"),
                        teacher_source=os.path.join(teacher_out, "save"),
                        select_by="si_sdr"))
