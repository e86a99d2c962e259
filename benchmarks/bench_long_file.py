"""Peak memory and time of enhancing long recordings, windowed (the
default of ``enhance_file``) against whole-file enhancement, printed as a
table.  Each measurement runs in a fresh process (peak RSS only grows).

    python benchmarks/bench_long_file.py --model pretrained/remixit_demo \\
        --minutes 1 5 10

``--model`` is an exported folder or a run folder; without it a randomly
initialised model of the demo's size is used (memory and time do not
depend on the weights).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import soundfile as sf

PROBE = textwrap.dedent("""
    import resource, sys, time, soundfile as sf, torch
    from speechbrain_remix.inference import RemixEnhancer
    model, path, mode = sys.argv[1:4]
    if model:
        enh = RemixEnhancer.load(model)
    else:
        from speechbrain_remix.models import SudoRmRf
        enh = RemixEnhancer(
            modules={"model": SudoRmRf(num_blocks=4, enc_num_basis=256,
                     out_channels=128, in_channels=256, groups=8)},
            hparams={"sample_rate": 16000}, run_opts={"device": "cpu"})
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if mode == "whole":
        wav = torch.from_numpy(sf.read(path, dtype="float32")[0])
        enh.enhance_batch(wav[None])
    else:
        enh.enhance_file(path, path + ".out.wav")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((peak - base) / 1024, seconds)
""")


def measure(model, path, mode):
    out = subprocess.run([sys.executable, "-c", PROBE, model or "", path,
                          mode], capture_output=True, text=True)
    if out.returncode:
        return float("nan"), float("nan")
    mb, seconds = out.stdout.split()[-2:]
    return float(mb), float(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--minutes", type=float, nargs="+",
                        default=[1, 5, 10])
    parser.add_argument("--whole", action="store_true",
                        help="also measure whole-file enhancement")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'minutes':>8} {'mode':>9} {'peak MB':>9} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = os.path.join(tmp, f"{minutes}.wav")
            with sf.SoundFile(path, "w", 16000, 1) as f:
                for _ in range(int(minutes * 6)):  # 10 s at a time
                    f.write(0.1 * rng.standard_normal(160000))
            modes = ["windowed", "whole"] if args.whole else ["windowed"]
            for mode in modes:
                mb, seconds = measure(args.model, path, mode)
                print(f"{minutes:>8g} {mode:>9} {mb:>9.0f} {seconds:>8.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
