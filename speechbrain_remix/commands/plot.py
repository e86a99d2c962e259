"""``speechbrain-remix plot RUN_DIR [--out DIR]``: the figures of a
``train.py`` run, from the files it wrote.

Into ``--out`` (default ``RUN_DIR/plots``):

* ``training.png``: train and validation loss per epoch (``train_log.txt``);
* ``si_sdri.png``: histogram of the per-utterance SI-SDR improvements of
  every system but the mixture (``test_results*.csv``);
* ``teacher_brackets.png`` (RemixIT runs): the student's SI-SDR gain over
  its initial teacher per bracket of the teacher's SI-SDR, like Fig. 3 of
  RemixIT (``test_results_teacher.csv`` against ``test_results.csv``;
  ``--bracket-by input`` brackets by the mixture's SI-SDR instead), and
  ``teacher_brackets.csv`` with its numbers;
* ``spectrograms_<ID>.png``: noisy, enhanced (each system with a wav) and
  reference spectrograms of the first ``--examples`` test utterances
  whose enhanced wav exists under ``RUN_DIR/enhanced/``.

A figure whose inputs are missing (no ``si_sdri`` column in a
reference-free run, no teacher outside RemixIT, no enhanced wavs) is
skipped with the reason printed; the exit status is 1 only when no figure
at all could be drawn.

Paths in the run's ``hyperparams.yaml`` (``test_csv``, ``data_folder``)
are usually relative to the directory ``train.py`` ran in.  They are
resolved against the run folder, never the current directory: first
against the directory the run was started from as the run folder's own
location shows it (``output_folder: results/demo/remixit`` for a run now
at ``/x/results/demo/remixit``: ``/x``; see
:func:`speechbrain_remix.runs.origin`), then against ``RUN_DIR`` itself.
The YAML is read as plain data: nothing in it (``!new:`` models,
``!apply:`` calls) is built.
"""

import csv
import os

import numpy as np

#: the file of the evaluated model's per-utterance results
RESULTS = "test_results.csv"


def add_arguments(parser):
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="a train.py output folder")
    parser.add_argument("--out", help="output folder (default "
                        "RUN_DIR/plots)")
    parser.add_argument("--examples", type=int, default=3,
                        help="utterances with spectrograms (default 3)")
    parser.add_argument("--bracket-by", choices=("teacher", "input"),
                        default="teacher",
                        help="bracket the teacher-vs-student figure by the "
                        "teacher's SI-SDR (Fig. 3 of RemixIT, default) or "
                        "by the input mixture's")
    parser.add_argument("--edges", type=float, nargs="+", metavar="DB",
                        help="bracket edges in dB (default: "
                        "-10 0 5 10 15)")


def run(args):
    """Draws every figure it can; returns 0 if at least one was drawn."""
    from speechbrain_remix import plots

    run_dir = os.path.realpath(args.run_dir)
    if not os.path.isdir(run_dir):
        print(f"{args.run_dir}: no such folder")
        return 1
    out = args.out or os.path.join(run_dir, "plots")
    os.makedirs(out, exist_ok=True)
    drawn = []

    def draw(name, figure, *extra):
        # a damaged file costs its figure only, never the others
        try:
            results = figure(run_dir, out, plots, *extra)
        except Exception as error:  # noqa: BLE001 (reported, not hidden)
            results = [f"{type(error).__name__}: {error}"]
        for result in results if isinstance(results, list) else [results]:
            if result.endswith(".png"):
                print(f"wrote {result}")
                drawn.append(result)
            else:
                print(f"skipped {name}: {result}")

    edges = args.edges or plots.TEACHER_EDGES
    draw("training curves", training_curves)
    draw("SI-SDRi histogram", sisdri_histogram)
    draw("teacher brackets", teacher_figure, args.bracket_by, edges)
    draw("spectrograms", spectrogram_figures, args.examples)
    return 0 if drawn else 1


# ----------------------------------------------------------------------
# each figure: the path written, or the reason it was skipped (a string
# not ending in .png)


def training_curves(run_dir, out, plots):
    log = os.path.join(run_dir, "train_log.txt")
    if not os.path.isfile(log):
        return "no train_log.txt"
    png = plots.plot_training_curves(log, os.path.join(out, "training.png"))
    return png or "train_log.txt has no epoch line yet"


def sisdri_histogram(run_dir, out, plots):
    systems = {name: path for name, path in result_files(run_dir).items()
               if name != "mixture" and "si_sdri" in columns(path)}
    if not systems:
        return "no test_results CSV with an si_sdri column (a run without " \
            "references, or not evaluated yet)"
    return plots.plot_sisdri_histogram(systems,
                                       os.path.join(out, "si_sdri.png"))


def teacher_figure(run_dir, out, plots, bracket_by="teacher",
                   edges=None):
    files = result_files(run_dir)
    student_name = evaluated_name(run_dir)
    if "teacher" not in files or student_name not in files:
        return "no test_results_teacher.csv next to test_results.csv " \
            "(only RemixIT runs evaluate their initial teacher)"
    teacher = read_metric(files["teacher"], "si_sdr")
    student = read_metric(files[student_name], "si_sdr")
    if not teacher or not student:
        return "no si_sdr column (a run without references)"
    by, xlabel = teacher, "initial teacher SI-SDR (dB)"
    if bracket_by == "input":
        by = read_metric(files.get("mixture", ""), "si_sdr")
        xlabel = "input mixture SI-SDR (dB)"
        if not by:
            return "--bracket-by input: no test_results_mixture.csv " \
                "with an si_sdr column"
    brackets = plots.teacher_brackets(teacher, student,
                                      edges or plots.TEACHER_EDGES, by=by)
    if not any(b["n"] for b in brackets):
        return "no utterance scored by both teacher and student"
    write_brackets(os.path.join(out, "teacher_brackets.csv"), brackets)
    return plots.plot_teacher_brackets(
        brackets, os.path.join(out, "teacher_brackets.png"), xlabel)


def spectrogram_figures(run_dir, out, plots, k):
    """Spectrograms of the first ``k`` utterances of the test manifest
    with an enhanced wav (one path or one reason per figure)."""
    if k <= 0:
        return []
    enhanced = os.path.join(run_dir, "enhanced")
    model = evaluated_name(run_dir)  # drawn last, below its baselines
    systems = sorted((d for d in os.listdir(enhanced)
                      if os.path.isdir(os.path.join(enhanced, d))),
                     key=lambda d: (d == model, d)) \
        if os.path.isdir(enhanced) else []
    if not systems:
        return ["no enhanced/ wavs (save_enhanced: 0, or not evaluated)"]
    hparams = read_hparams(run_dir)
    manifest = resolve(run_dir, hparams.get("test_csv"))
    if not manifest or not os.path.isfile(manifest):
        return [f"test manifest {hparams.get('test_csv')!r} of "
                "hyperparams.yaml not found"]
    data_root = resolve(run_dir, hparams.get("data_folder")) or ""
    written = []
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            if len(written) == k:
                break
            wavs = {s: os.path.join(enhanced, s, f"{row['ID']}.wav")
                    for s in systems}
            wavs = {s: p for s, p in wavs.items() if os.path.isfile(p)}
            if not wavs:
                continue
            written.append(utterance_figure(row, wavs, data_root, out,
                                            plots))
    return written or ["no enhanced wav of an utterance of "
                       f"{os.path.basename(manifest)}"]


def utterance_figure(row, enhanced, data_root, out, plots):
    import soundfile as sf

    signals, rate = {}, None
    columns_ = [("noisy", "mix_wav"), *((s, None) for s in enhanced),
                ("reference", "clean_wav")]
    for name, column in columns_:
        path = enhanced[name] if column is None else row.get(column)
        if not path:
            continue  # a reference-free manifest has no clean_wav
        path = path.replace("$data_root", data_root)
        if not os.path.isfile(path):
            print(f"  {row['ID']}: {name} {path} not found, left out")
            continue
        wav, rate = sf.read(path, dtype="float32", always_2d=True)
        signals[f"{name} ({row['ID']})" if name == "noisy" else name] = \
            wav.mean(axis=1)
    return plots.plot_spectrograms(
        signals, rate, os.path.join(out, f"spectrograms_{row['ID']}.png"))


# ----------------------------------------------------------------------
# reading the run folder


def result_files(run_dir):
    """``{system: per-utterance CSV}``: ``test_results_<system>.csv`` and
    ``test_results.csv`` under the evaluated model's name."""
    files = {}
    for name in sorted(os.listdir(run_dir)):
        if name.startswith("test_results_") and name.endswith(".csv"):
            files[name[len("test_results_"):-4]] = os.path.join(run_dir,
                                                                name)
    if os.path.isfile(os.path.join(run_dir, RESULTS)):
        files[evaluated_name(run_dir)] = os.path.join(run_dir, RESULTS)
    return files


def evaluated_name(run_dir):
    """The evaluated model's system name (``student`` in RemixIT,
    ``model`` in supervised runs): the ``enhanced/`` folder that has no
    ``test_results_<name>.csv`` of its own; ``model`` if none is."""
    enhanced = os.path.join(run_dir, "enhanced")
    if os.path.isdir(enhanced):
        for name in sorted(os.listdir(enhanced)):
            if not os.path.isfile(os.path.join(
                    run_dir, f"test_results_{name}.csv")):
                return name
    return "model"


def columns(path):
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def read_metric(path, metric):
    """``{ID: value}`` of a results CSV's ``metric`` (the ``avg`` row and
    NaN values left out; empty if the file or column is missing)."""
    if not path or not os.path.isfile(path):
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    values = {}
    for row in rows:
        try:
            value = float(row.get(metric) or "nan")
        except ValueError:
            continue
        if row["ID"] != "avg" and np.isfinite(value):
            values[row["ID"]] = value
    return values


def write_brackets(path, brackets):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["bracket", "n", "mean_delta_db", "median_delta_db"])
        for b in brackets:
            writer.writerow([b["label"], b["n"], f"{b['mean']:.4f}",
                             f"{b['median']:.4f}"])


def read_hparams(run_dir):
    """The top-level mapping of ``RUN_DIR/hyperparams.yaml``, as plain
    data: tagged nodes (``!new:``, ``!name:``) are left unbuilt."""
    path = os.path.join(run_dir, "hyperparams.yaml")
    if not os.path.isfile(path):
        return {}
    from ruamel.yaml import YAML

    with open(path) as f:
        data = YAML(typ="rt").load(f)
    return data if isinstance(data, dict) else {}


def resolve(run_dir, path):
    """``path`` from the run's YAML as it was meant in training (see the
    module docstring): absolute paths as they are; a relative one against
    the directory the run was started from, else against ``run_dir``."""
    if not path or not isinstance(path, str):
        return None
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return path
    from speechbrain_remix.runs import origin

    for base in (origin(run_dir), run_dir):
        candidate = os.path.normpath(os.path.join(base, path))
        if os.path.exists(candidate):
            return candidate
    return os.path.normpath(os.path.join(run_dir, path))
