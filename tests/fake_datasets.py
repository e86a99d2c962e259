"""Tiny fake copies of the papers' datasets, with their real folder layout
and file naming, built inside the tests (white noise as audio)."""

import os

import numpy as np
import soundfile as sf


def write_wav(path, seconds, rate=16000, seed=0, channels=1, gain=0.1,
              nan=False, subtype=None):
    """White noise at ``gain`` (0: digital silence); ``nan``: one NaN
    sample (then a float wav, which can hold it)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (int(seconds * rate), channels) if channels > 1 else (
        int(seconds * rate),)
    data = (gain * rng.standard_normal(shape)).astype(np.float32)
    if nan:
        data[len(data) // 2] = np.nan
    sf.write(path, data, rate, subtype="FLOAT" if nan else subtype)
    return path


def make_dns(root, n_clean=12, n_noise=4, n_test=3):
    """DNS-Challenge (Interspeech 2020) ``datasets`` tree."""
    ds = os.path.join(root, "datasets")
    for i in range(n_clean):
        write_wav(os.path.join(
            ds, "clean", f"book_{i:05d}_chp_0001_reader_{i % 3:05d}_0.wav"),
            2.0, seed=i)
    for i in range(n_noise):
        write_wav(os.path.join(ds, "noise", f"noise_class_{i}.wav"), 1.2,
                  seed=100 + i)
    for sub in ("no_reverb", "with_reverb"):
        base = os.path.join(ds, "test_set", "synthetic", sub)
        for i in range(n_test):
            write_wav(os.path.join(base, "clean", f"clean_fileid_{i}.wav"),
                      1.5, seed=200 + i)
            write_wav(os.path.join(
                base, "noisy",
                f"clnsp{i}_train_{i}_snr5_tl-21_fileid_{i}.wav"), 1.5,
                seed=300 + i)
    return root


def make_wham(root, n=(6, 3, 3)):
    """Output of the WHAM! generation scripts (wav16k/min)."""
    for split, count in zip(("tr", "cv", "tt"), n):
        for i in range(count):
            name = f"40{i}o030a_1.2_20{i}o0310_-1.2.wav"
            for k, part in enumerate(("mix_single", "s1", "noise")):
                write_wav(os.path.join(root, "wav16k", "min", split, part,
                                       name), 1.5, seed=10 * i + k)
    return root


def make_vctk(root, n=4):
    """Valentini VCTK-DEMAND test set at 48 kHz."""
    for i in range(n):
        for k, part in enumerate(("clean", "noisy")):
            write_wav(os.path.join(root, f"{part}_testset_wav",
                                   f"p232_{i:03d}.wav"), 1.5, rate=48000,
                      seed=10 * i + k)
    return root


def make_librispeech(root, subsets=("train-clean-360", "dev-clean",
                                    "test-clean"), n=4):
    for s, subset in enumerate(subsets):
        for i in range(n):
            spk, chapter = 100 + s * 10 + i % 2, 200 + i
            path = os.path.join(root, subset, str(spk), str(chapter),
                                f"{spk}-{chapter}-{i:04d}.flac")
            write_wav(path, 1.5, seed=s * 100 + i)
    return root


def make_librispeech100(root, n_speakers=24, n_utt=8):
    """LibriSpeech ``train-clean-100/<spk>/<ch>/<spk>-<ch>-<utt>.flac``:
    ``n_utt`` utterances of 1.2-2 s per speaker, over two chapters."""
    for s in range(n_speakers):
        spk = 19 + 7 * s  # real IDs are sparse integers
        for i in range(n_utt):
            chapter = 198 + 10 * s + i % 2
            path = os.path.join(root, "train-clean-100", str(spk),
                                str(chapter), f"{spk}-{chapter}-{i:04d}.flac")
            write_wav(path, 1.2 + 0.1 * (i % 9), seed=1000 * s + i)
    return root


def make_musan(root, n=4):
    """MUSAN's noise part at 16 kHz (``musan/noise/<source>/noise-<source>-
    0000.wav``, the real naming), ``n`` files per source."""
    for k, source in enumerate(("free-sound", "sound-bible")):
        for i in range(n):
            write_wav(os.path.join(root, "musan", "noise", source,
                                   f"noise-{source}-{i:04d}.wav"),
                      0.7 + 0.4 * i, seed=700 + 10 * k + i)
    return root


def make_fsd50k(root, n=4):
    """FSD50K audio (44.1 kHz) and ground truth, with one human-sound clip
    per split that must be excluded."""
    gt = os.path.join(root, "FSD50K.ground_truth")
    os.makedirs(gt, exist_ok=True)
    dev, ev = [], []
    for i in range(2 * n):
        split = "train" if i < n else "val"
        labels = "Speech,Human_voice" if i % n == 0 else "Rain,Water"
        dev.append(f"{1000 + i},\"{labels}\",/m/x,{split}")
        write_wav(os.path.join(root, "FSD50K.dev_audio", f"{1000 + i}.wav"),
                  0.8, rate=44100, seed=500 + i)
    for i in range(n):
        labels = "Laughter" if i == 0 else "Engine,Vehicle"
        ev.append(f"{2000 + i},\"{labels}\",/m/y")
        write_wav(os.path.join(root, "FSD50K.eval_audio", f"{2000 + i}.wav"),
                  0.8, rate=44100, seed=600 + i)
    with open(os.path.join(gt, "dev.csv"), "w") as f:
        f.write("fname,labels,mids,split\n" + "\n".join(dev) + "\n")
    with open(os.path.join(gt, "eval.csv"), "w") as f:
        f.write("fname,labels,mids\n" + "\n".join(ev) + "\n")
    return root


def make_fuss(root, n=(8, 4, 4)):
    """fuss_dev/ssdata with 1-4 sources per mixture."""
    for split, count in zip(("train", "validation", "eval"), n):
        for i in range(count):
            base = os.path.join(root, "ssdata", split, f"example{i:05d}")
            names = ["background0_sound"] + [
                f"foreground{j}_sound" for j in range(i % 4)]
            for j, name in enumerate(names):
                write_wav(os.path.join(base + "_sources", name + ".wav"), 1.5,
                          seed=100 * i + j)
            write_wav(base + ".wav", 1.5, seed=1000 + i)
    return root


def make_wsj_chime(root, n_per_split=3):
    """WSJ (as wav, corpus folder layout) and CHiME-3 backgrounds."""
    for s, split in enumerate(("si_tr_s", "si_dt_05", "si_et_05")):
        for spk in range(3):
            for i in range(n_per_split):
                name = f"{s}{spk}{i}c0201.wav"
                write_wav(os.path.join(root, "wsj", "wsj0", split,
                                       f"{s}{spk}0", name), 1.2, rate=16000,
                          seed=100 * s + 10 * spk + i)
    for i, env in enumerate(("BUS", "CAF")):
        write_wav(os.path.join(root, "CHiME3", "data", "audio", "16kHz",
                               "backgrounds", f"BGD_{env}.wav"), 3.0,
                  seed=900 + i)
    return root


def make_daps(root, speakers=("f1", "f2", "f3", "f4", "m1", "m2", "m3", "m4"),
              scripts=("script1", "script2", "script3"),
              environments=("ipad_office1", "iphone_bedroom1"), seconds=3.0,
              rate=44100, lead_in=1.0, lags=None):
    """DAPS (``daps/<version>/<speaker>_<script>_<version>.wav``): a clean
    version (``lead_in`` s of digital silence, then 0.25 s bursts of white
    noise 0.1 s apart, as speech) and device x room versions of the same
    length: the clean take delayed by ``lags[env]`` samples (default 0)
    plus low room noise, as the dataset's alignment leaves them."""
    lags = lags or {}
    n, start = int(seconds * rate), int(lead_in * rate)
    on, period = int(0.25 * rate), int(0.35 * rate)
    gate = np.zeros(n)
    for s in range(start, n, period):
        gate[s : s + on] = 1.0
    for i, spk in enumerate(speakers):
        for j, script in enumerate(scripts):
            take = f"{spk}_{script}"
            rng = np.random.default_rng(100 * i + j)
            clean = (0.1 * gate * rng.standard_normal(n)).astype(np.float32)
            os.makedirs(os.path.join(root, "clean"), exist_ok=True)
            sf.write(os.path.join(root, "clean", f"{take}_clean.wav"),
                     clean, rate)
            for k, env in enumerate(environments):
                lag = lags.get(env, 0)
                device = np.r_[np.zeros(lag), clean[: n - lag]] + (
                    0.005 * rng.standard_normal(n))
                os.makedirs(os.path.join(root, env), exist_ok=True)
                sf.write(os.path.join(root, env, f"{take}_{env}.wav"),
                         device.astype(np.float32), rate)
    return root
