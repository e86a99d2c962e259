"""End-to-end runs of the recipes on the shipped demo corpus, shrunk to a
tiny model and a handful of mixtures."""

import csv
import os

import pytest
from conftest import ROOT, argv

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


def test_remixit_sequential_resumes_at_grown_depth(teacher_run, demo_data,
                                                   tmp_path):
    """A sequential run grows the student 1 -> 2 blocks after epoch 1; a
    second invocation resumes from that checkpoint with the deeper student
    and the updated teacher."""
    teacher_out, _ = teacher_run
    out = str(tmp_path / "sequential")
    common = dict(
        data_folder=demo_data, output_folder=out,
        teacher_source=os.path.join(teacher_out, "save"),
        student_init="scratch",
        teacher_update="!new:speechbrain_remix.teacher.SequentialTeacher "
        "{every_n_epochs: 1, student_blocks_schedule: [1, 2]}",
    )
    train.main(argv("remixit_demo.yaml", number_of_epochs=1, **common))
    summary = train.main(argv("remixit_demo.yaml", number_of_epochs=2,
                              **common))
    log = open(os.path.join(out, "train_log.txt")).read()
    assert "epoch: 1" in log and "epoch: 2" in log
    assert set(summary) == {"mixture", "teacher", "student"}


def test_missing_teacher_is_a_clear_error(demo_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="train the teacher first"):
        train.main(argv("remixit_demo.yaml", data_folder=demo_data,
                        output_folder=str(tmp_path / "r"),
                        teacher_source=str(tmp_path / "nothing")))


def test_hparams_load_with_only_folders_overridden(tmp_path):
    from hyperpyyaml import load_hyperpyyaml

    for name in sorted(os.listdir(os.path.join(ROOT, "hparams"))):
        if name.endswith(".yaml"):
            with open(os.path.join(ROOT, "hparams", name)) as f:
                hparams = load_hyperpyyaml(f, {
                    "data_folder": str(tmp_path),
                    "output_folder": str(tmp_path / "out"),
                })
            assert "brain_class" in hparams, name
