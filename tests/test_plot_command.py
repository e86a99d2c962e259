"""``speechbrain-remix plot RUN_DIR`` on fake run folders: every figure
whose inputs exist is written, the others are skipped with a reason; and
the numbers of the teacher-bracket figure (Fig. 3 of RemixIT)."""

import csv
import math
import os

import numpy as np
import pytest
import soundfile as sf
from speechbrain.utils.train_logger import FileTrainLogger

from speechbrain_remix.cli import main as cli
from speechbrain_remix.plots import teacher_brackets

RATE = 8000
# per-utterance SI-SDR (dB) of mixture, initial teacher and student
SCORES = {
    "u1": (-14.0, -12.0, -12.5),
    "u2": (-3.0, 0.0, 2.0),  # on an edge: the bracket [0, 5)
    "u3": (1.0, 4.0, 5.0),
    "u4": (6.0, 16.0, 16.5),
}


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def wav(path, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    noise = np.random.default_rng(seed).standard_normal(RATE // 2)
    sf.write(path, 0.1 * noise, RATE)


def fake_run(root, references=True, teacher=True):
    """``root/results/fake``, written by ``train.py`` started in ``root``
    (its YAML's paths are relative to ``root``), as RemixIT writes it."""
    run = os.path.join(root, "results", "fake")
    os.makedirs(run)
    with open(os.path.join(run, "hyperparams.yaml"), "w") as f:
        f.write("output_folder: results/fake\ndata_folder: data\n"
                "test_csv: data/test.csv\nsample_rate: 8000\n"
                "model: !new:no_such_package.Model  # never built\n"
                "    size: 3\n")
    logger = FileTrainLogger(os.path.join(run, "train_log.txt"))
    for epoch, (train, valid) in enumerate([(-1.0, -2.0), (-3.0, -3.5)]):
        logger.log_stats({"epoch": epoch + 1, "lr": 1e-3},
                         train_stats={"loss": train},
                         valid_stats={"loss": valid})
    header = ["ID", "duration", "mix_wav"] + (["clean_wav"] if references
                                              else [])
    rows = []
    for i, uid in enumerate(SCORES):
        rows.append([uid, "0.5", f"$data_root/mix/{uid}.wav"]
                    + ([f"$data_root/clean/{uid}.wav"] if references
                       else []))
        wav(os.path.join(root, "data", "mix", f"{uid}.wav"), i)
        wav(os.path.join(root, "data", "clean", f"{uid}.wav"), 10 + i)
    write_csv(os.path.join(root, "data", "test.csv"), header, rows)
    systems = {"mixture": 0, "student": 2} | ({"teacher": 1} if teacher
                                              else {})
    for name, k in systems.items():
        file = "test_results.csv" if name == "student" \
            else f"test_results_{name}.csv"
        if references:
            rows = [[u, s[k], s[k] - s[0]] for u, s in SCORES.items()]
            rows.append(["avg", 0.0, 0.0])
            write_csv(os.path.join(run, file), ["ID", "si_sdr", "si_sdri"],
                      rows)
        else:  # a reference-free evaluation
            write_csv(os.path.join(run, file), ["ID", "dnsmos_ovrl"],
                      [[u, 3.0] for u in SCORES])
        if name != "mixture":  # save_enhanced: 2
            for uid in ("u1", "u2"):
                wav(os.path.join(run, "enhanced", name, f"{uid}.wav"), 20)
    return run


def test_every_figure_of_a_remixit_run(tmp_path, monkeypatch, capsys):
    run = fake_run(str(tmp_path / "project"))
    monkeypatch.chdir(tmp_path)  # paths resolve from the run, not here
    assert cli(["plot", run]) == 0
    out = os.path.join(run, "plots")
    assert sorted(os.listdir(out)) == [
        "si_sdri.png", "spectrograms_u1.png", "spectrograms_u2.png",
        "teacher_brackets.csv", "teacher_brackets.png", "training.png"]
    assert all(os.path.getsize(os.path.join(out, n)) > 1000
               for n in os.listdir(out) if n.endswith(".png"))
    assert "skipped" not in capsys.readouterr().out
    with open(os.path.join(out, "teacher_brackets.csv")) as f:
        table = {r["bracket"]: r for r in csv.DictReader(f)}
    # default edges -10 0 5 10 15: u1 < -10; u2, u3 in [0, 5); u4 >= 15
    assert {k: int(r["n"]) for k, r in table.items()} == {
        "< -10": 1, "[-10, 0)": 0, "[0, 5)": 2, "[5, 10)": 0,
        "[10, 15)": 0, ">= 15": 1}
    assert float(table["[0, 5)"]["mean_delta_db"]) == pytest.approx(1.5)
    assert float(table["< -10"]["median_delta_db"]) == pytest.approx(-0.5)


def test_brackets_by_input_and_other_edges(tmp_path, capsys):
    run = fake_run(str(tmp_path))
    out = str(tmp_path / "figs")
    assert cli(["plot", run, "--out", out, "--bracket-by", "input",
                "--edges", "-5", "0", "--examples", "1"]) == 0
    with open(os.path.join(out, "teacher_brackets.csv")) as f:
        table = {r["bracket"]: r for r in csv.DictReader(f)}
    # by the mixture's SI-SDR: u1 (-14 dB; delta -0.5) < -5; u2 (-3 dB;
    # +2) in [-5, 0); u3 (1 dB; +1) and u4 (6 dB; +0.5) >= 0
    assert [r["n"] for r in table.values()] == ["1", "1", "2"]
    assert float(table["< -5"]["mean_delta_db"]) == pytest.approx(-0.5)
    assert float(table["[-5, 0)"]["mean_delta_db"]) == pytest.approx(2.0)
    assert float(table[">= 0"]["mean_delta_db"]) == pytest.approx(0.75)
    assert [n for n in os.listdir(out) if n.startswith("spectro")] == [
        "spectrograms_u1.png"]


def test_teacher_brackets_by_hand():
    teacher = {"a": -20.0, "b": -10.0, "c": 2.0, "d": 4.0, "e": 30.0}
    student = {"a": -21.0, "b": -7.0, "c": 3.0, "d": 7.0, "e": 31.0,
               "x": 0.0}  # x: no teacher score, left out
    got = teacher_brackets(teacher, student, edges=(-10, 5, 15))
    assert [b["label"] for b in got] == ["< -10", "[-10, 5)", "[5, 15)",
                                         ">= 15"]
    assert [b["n"] for b in got] == [1, 3, 0, 1]
    # [-10, 5): deltas +3 (b, on the lower edge), +1 (c), +3 (d)
    assert sorted(got[1]["deltas"]) == [1.0, 3.0, 3.0]
    assert got[1]["mean"] == pytest.approx(7 / 3)
    assert got[1]["median"] == 3.0
    assert got[0]["mean"] == -1.0 and got[3]["median"] == 1.0
    assert math.isnan(got[2]["mean"])
    with pytest.raises(ValueError, match="increase"):
        teacher_brackets(teacher, student, edges=(5, 0))


def test_reference_free_run_without_teacher(tmp_path, capsys):
    run = fake_run(str(tmp_path), references=False, teacher=False)
    assert cli(["plot", run]) == 0
    printed = capsys.readouterr().out
    assert "skipped SI-SDRi histogram: no test_results CSV with an si_sdri" \
        in printed
    assert "skipped teacher brackets: no test_results_teacher.csv" in printed
    names = sorted(os.listdir(os.path.join(run, "plots")))
    assert names == ["spectrograms_u1.png", "spectrograms_u2.png",
                     "training.png"]  # noisy and enhanced, no reference


def test_a_folder_with_nothing_to_plot(tmp_path, capsys):
    assert cli(["plot", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert printed.count("skipped") == 4
    assert cli(["plot", str(tmp_path / "missing")]) == 1


def test_a_damaged_results_file_costs_only_its_figures(tmp_path, capsys):
    run = fake_run(str(tmp_path))
    write_csv(os.path.join(run, "test_results_teacher.csv"),
              ["ID", "si_sdr", "si_sdri"], [["u1", "oops", "oops"]])
    assert cli(["plot", run]) == 0
    printed = capsys.readouterr().out
    assert "skipped SI-SDRi histogram: ValueError" in printed
    assert "skipped teacher brackets" in printed
    assert sorted(os.listdir(os.path.join(run, "plots"))) == [
        "spectrograms_u1.png", "spectrograms_u2.png", "training.png"]
