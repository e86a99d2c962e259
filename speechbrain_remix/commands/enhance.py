"""``speechbrain-remix enhance MODEL INPUT... --out DIR``.

MODEL is an exported folder (``speechbrain-remix export``) or a
``train.py`` run folder.  INPUTs are files or folders (searched
recursively for every format libsndfile reads, whatever the case of the
extension); a folder's files keep their relative paths under ``--out``,
and each output keeps its input's format.  Unreadable, empty or
non-finite files are skipped and listed at the end, and the exit status
is then 1.  Nothing is written over an input.
"""

import os

import soundfile as sf

from speechbrain_remix.inference import CHANNEL_POLICIES

# extensions libsndfile reads that are not a format's own name
ALIASES = {"oga", "opus", "aif", "aifc"}


def add_arguments(parser):
    parser.add_argument("model", help="exported model folder or train.py "
                        "run folder")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="audio files or folders")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--noise", action="store_true",
                        help="also write the noise estimate, NAME_noise.EXT")
    parser.add_argument("--keep-model-rate", action="store_true",
                        help="write at the model's rate, not the input's")
    parser.add_argument("--channels", choices=CHANNEL_POLICIES,
                        default="downmix",
                        help="multi-channel input: average to mono "
                        "(default) or enhance each channel")
    parser.add_argument("--window", type=float, default=20.0,
                        help="seconds per window of long recordings")
    parser.add_argument("--overlap", type=float, default=1.0,
                        help="seconds of crossfade between windows")
    parser.add_argument("--streaming", action="store_true",
                        help="a causal model: enhance block by block as a "
                        "device would (input at the model's rate)")
    parser.add_argument("--block-ms", type=float, default=None,
                        help="milliseconds per streamed block (default: "
                        "the model's smallest)")
    parser.add_argument("--device", default="cpu")


def audio_extensions():
    """Lower-case extensions of the formats libsndfile reads here."""
    return {f.lower() for f in sf.available_formats()} | ALIASES


def output_name(path):
    """The output's file name: the input's, with ``.wav`` where libsndfile
    cannot write the input's format."""
    stem, ext = os.path.splitext(os.path.basename(path))
    fmt = ext[1:].upper()
    fmt = {"OGA": "OGG", "OPUS": "OGG", "AIF": "AIFF", "AIFC": "AIFF"}.get(
        fmt, fmt)
    return stem + ext if fmt in sf.available_formats() else stem + ".wav"


def plan(inputs, out):
    """``(source, destination)`` pairs for ``inputs`` and the inputs that do
    not exist.

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> for name in ("a.WAV", "sub/b.flac", "notes.txt"):
    ...     os.makedirs(os.path.dirname(os.path.join(root, name)),
    ...                 exist_ok=True)
    ...     open(os.path.join(root, name), "w").close()
    >>> pairs, missing = plan([root, "nope.wav"], "out")
    >>> [os.path.relpath(d, "out") for _, d in pairs], missing
    (['a.WAV', 'sub/b.flac'], ['nope.wav'])
    """
    exts = audio_extensions()
    pairs, missing = [], []
    for item in inputs:
        if os.path.isdir(item):
            for root, dirs, files in os.walk(item):
                dirs.sort()
                for name in sorted(files):
                    if os.path.splitext(name)[1][1:].lower() not in exts:
                        continue  # not audio (notes, manifests, images)
                    src = os.path.join(root, name)
                    rel = os.path.relpath(root, item)
                    pairs.append((src, os.path.normpath(os.path.join(
                        out, rel, output_name(name)))))
        elif os.path.isfile(item):  # named explicitly: always tried
            pairs.append((item, os.path.join(out, output_name(item))))
        else:
            missing.append(item)
    seen, unique = set(), []
    for src, dst in pairs:  # a file named twice (itself and its folder)
        if os.path.realpath(src) not in seen:
            seen.add(os.path.realpath(src))
            unique.append((src, dst))
    return unique, missing


def check_outputs(pairs):
    """Refuses to write over an input or twice to one file."""
    inputs = {os.path.realpath(src) for src, _ in pairs}
    seen = {}
    for src, dst in pairs:
        real = os.path.realpath(dst)
        if real in inputs:
            raise SystemExit(
                f"error: {dst} would overwrite an input; choose an --out "
                "folder that holds none of the inputs")
        if real in seen:
            raise SystemExit(
                f"error: {seen[real]} and {src} would both be written to "
                f"{dst}; enhance them into separate --out folders")
        seen[real] = src


def noise_name(path):
    stem, ext = os.path.splitext(path)
    return f"{stem}_noise{ext}"


def run(args):
    from tqdm import tqdm

    from speechbrain_remix.inference import RemixEnhancer

    pairs, missing = plan(args.inputs, args.out)
    check_outputs(pairs + [(s, noise_name(d)) for s, d in pairs]
                  if args.noise else pairs)
    try:
        enhancer = RemixEnhancer.load(args.model, device=args.device)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    if args.streaming:
        try:  # refuse a model that cannot stream before any file
            separator = enhancer.streaming_separator(args.block_ms)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
        print(f"streaming: blocks of {separator.block} samples, algorithmic"
              f" latency {1000 * separator.latency / enhancer.sample_rate:.1f}"
              " ms")
    failed = [(path, "not found") for path in missing]
    done = 0
    for src, dst in tqdm(pairs, desc="enhancing", unit="file"):
        try:
            enhancer.enhance_file(
                src, dst, noise_path=noise_name(dst) if args.noise else None,
                keep_model_rate=args.keep_model_rate,
                channels=args.channels, window_seconds=args.window,
                overlap_seconds=args.overlap, streaming=args.streaming,
                block_ms=args.block_ms)
            done += 1
        except Exception as err:  # one bad file must not stop the others
            why = str(err).splitlines()[0] if str(err) else repr(err)
            failed.append((src, why.removeprefix(f"{src}: ")))
    print(f"enhanced {done} file(s) into {args.out}")
    if failed:
        print(f"skipped {len(failed)} input(s):")
        for path, why in failed:
            print(f"  {path}: {why}")
        return 1
    return 0
