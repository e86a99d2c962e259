"""Tests of checked audio I/O, manifests and batch helpers (data.py)."""

import os
import zlib

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_remix.data import (
    DataError,
    NoisePool,
    check_manifest,
    make_dataset,
    random_crop,
    read_audio,
    write_manifest,
)

SR = 16000
FIELDS = ["ID", "duration", "mix_wav", "clean_wav"]


def _wav(path, n=1600, sr=SR, channels=1, value=None, subtype=None):
    rng = np.random.default_rng(zlib.crc32(str(path).encode()))
    if value is None:
        data = 0.1 * rng.standard_normal((n, channels)).astype("float32")
    else:
        data = np.full((n, channels), value, dtype="float32")
    if channels == 1:
        data = data[:, 0]
    sf.write(str(path), data, sr, subtype=subtype)
    return str(path)


def _lines(path):
    with open(path) as f:
        return f.read().splitlines()


def _write_csv(path, text):
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------
# read_audio
# --------------------------------------------------------------------------


def test_read_audio_good_file(tmp_path):
    data = np.linspace(-0.5, 0.5, 800, dtype="float32")
    path = str(tmp_path / "good.wav")
    sf.write(path, data, SR, subtype="FLOAT")
    wav = read_audio(path, SR)
    assert wav.dtype == torch.float32 and wav.shape == (800,)
    np.testing.assert_allclose(wav.numpy(), data)


def test_read_audio_pcm16(tmp_path):
    path = _wav(tmp_path / "pcm.wav", n=321)
    wav = read_audio(path, SR)
    assert wav.shape == (321,)
    assert wav.abs().max() <= 1.0


def test_read_audio_missing(tmp_path):
    path = str(tmp_path / "nope.wav")
    with pytest.raises(DataError, match="not found") as err:
        read_audio(path, SR)
    assert path in str(err.value)


def test_read_audio_unreadable(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"this is not a wav file at all" * 10)
    with pytest.raises(DataError, match="cannot read") as err:
        read_audio(str(path), SR)
    assert str(path) in str(err.value)


def test_read_audio_empty(tmp_path):
    path = _wav(tmp_path / "empty.wav", n=0)
    with pytest.raises(DataError, match="empty") as err:
        read_audio(path, SR)
    assert path in str(err.value)


def test_read_audio_stereo(tmp_path):
    path = _wav(tmp_path / "stereo.wav", channels=2)
    with pytest.raises(DataError, match="2 channels") as err:
        read_audio(path, SR)
    assert path in str(err.value)


def test_read_audio_wrong_rate(tmp_path):
    path = _wav(tmp_path / "8k.wav", sr=8000)
    with pytest.raises(DataError, match="8000 Hz") as err:
        read_audio(path, SR)
    assert path in str(err.value)
    assert read_audio(path, 8000).shape == (1600,)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_read_audio_non_finite(tmp_path, bad):
    data = np.zeros(100, dtype="float32")
    data[37] = bad
    path = str(tmp_path / "nan.wav")
    sf.write(path, data, SR, subtype="FLOAT")
    with pytest.raises(DataError, match="NaN or inf") as err:
        read_audio(path, SR)
    assert path in str(err.value)


def test_data_error_is_value_error():
    assert issubclass(DataError, ValueError)


# --------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path):
    """Two mixtures with clean references, paths relative to $data_root."""
    root = tmp_path / "root"
    root.mkdir()
    for name, n in [("a", 1600), ("b", 2400)]:
        _wav(root / f"{name}_mix.wav", n=n)
        _wav(root / f"{name}_clean.wav", n=n)
    rows = [
        {
            "ID": name,
            "duration": n / SR,
            "mix_wav": f"$data_root/{name}_mix.wav",
            "clean_wav": f"$data_root/{name}_clean.wav",
        }
        for name, n in [("a", 1600), ("b", 2400)]
    ]
    csv_path = str(tmp_path / "manifest.csv")
    write_manifest(csv_path, rows, FIELDS)
    return str(root), csv_path, rows


def test_write_manifest_round_trip(corpus, tmp_path):
    root, csv_path, rows = corpus
    assert not os.path.exists(csv_path + ".tmp")
    assert sorted(os.listdir(tmp_path)) == ["manifest.csv", "root"]
    back = check_manifest(csv_path, root, required=("mix_wav", "clean_wav"))
    assert [r["ID"] for r in back] == ["a", "b"]
    for row, orig in zip(back, rows):
        assert float(row["duration"]) == pytest.approx(orig["duration"])
        # $data_root substitution
        assert row["mix_wav"] == os.path.join(root, f"{row['ID']}_mix.wav")
        assert row["clean_wav"] == os.path.join(root, f"{row['ID']}_clean.wav")
        assert os.path.isfile(row["mix_wav"])


def test_write_manifest_only_named_fields(tmp_path):
    path = str(tmp_path / "sub" / "m.csv")  # folder created on demand
    write_manifest(
        path, [{"ID": "x", "duration": 1.0, "extra": 3}], ["ID", "duration"]
    )
    assert _lines(path) == ["ID,duration", "x,1.0"]
    assert os.listdir(tmp_path / "sub") == ["m.csv"]


def test_write_manifest_interrupted_leaves_no_manifest(tmp_path):
    path = str(tmp_path / "m.csv")
    with pytest.raises(KeyError):
        # The second row lacks a field: the writer fails mid-way.
        write_manifest(
            path,
            [{"ID": "x", "duration": 1.0}, {"ID": "y"}],
            ["ID", "duration"],
        )
    assert not os.path.exists(path)


def test_write_manifest_replaces_existing(tmp_path):
    path = str(tmp_path / "m.csv")
    write_manifest(path, [{"ID": "x"}], ["ID"])
    write_manifest(path, [{"ID": "y"}, {"ID": "z"}], ["ID"])
    assert _lines(path) == ["ID", "y", "z"]
    assert os.listdir(tmp_path) == ["m.csv"]


def _check_error(csv_path, root, match, **kwargs):
    with pytest.raises(DataError, match=match) as err:
        check_manifest(csv_path, root, **kwargs)
    assert csv_path in str(err.value)
    return str(err.value)


def test_check_manifest_missing_file(tmp_path):
    _check_error(str(tmp_path / "none.csv"), str(tmp_path), "not found")


def test_check_manifest_missing_columns(tmp_path):
    path = _write_csv(tmp_path / "m.csv", "ID,mix_wav\na,x.wav\n")
    message = _check_error(path, str(tmp_path), "missing column")
    assert "duration" in message
    path = _write_csv(tmp_path / "n.csv", "ID,duration,mix_wav\na,1,x\n")
    message = _check_error(
        path, str(tmp_path), "missing column", required=("noise_wav",)
    )
    assert "noise_wav" in message


def test_check_manifest_empty_file(tmp_path):
    path = _write_csv(tmp_path / "m.csv", "")
    _check_error(path, str(tmp_path), "missing column")


def test_check_manifest_no_rows(tmp_path):
    path = _write_csv(tmp_path / "m.csv", "ID,duration,mix_wav\n")
    _check_error(path, str(tmp_path), "no rows")


def test_check_manifest_duplicate_ids(tmp_path):
    _wav(tmp_path / "a.wav")
    path = _write_csv(
        tmp_path / "m.csv",
        "ID,duration,mix_wav\na,0.1,$data_root/a.wav\na,0.1,$data_root/a.wav\n",
    )
    message = _check_error(path, str(tmp_path), "duplicate ID")
    assert "line 3" in message


@pytest.mark.parametrize("duration", ["abc", "", "nan", "-1", "0", "inf"])
def test_check_manifest_bad_duration(tmp_path, duration):
    _wav(tmp_path / "a.wav")
    path = _write_csv(
        tmp_path / "m.csv",
        f"ID,duration,mix_wav\na,{duration},$data_root/a.wav\n",
    )
    _check_error(path, str(tmp_path), "duration")


def test_check_manifest_audio_missing(tmp_path):
    _wav(tmp_path / "a.wav")
    path = _write_csv(
        tmp_path / "m.csv",
        "ID,duration,mix_wav\na,0.1,$data_root/a.wav\nb,0.1,$data_root/b.wav\n",
    )
    message = _check_error(path, str(tmp_path), "does not exist")
    assert os.path.join(str(tmp_path), "b.wav") in message
    assert "line 3" in message


def test_check_manifest_empty_required(tmp_path):
    _wav(tmp_path / "a.wav")
    path = _write_csv(
        tmp_path / "m.csv",
        "ID,duration,mix_wav,clean_wav\na,0.1,$data_root/a.wav,\n",
    )
    _check_error(
        path,
        str(tmp_path),
        "empty clean_wav",
        required=("mix_wav", "clean_wav"),
    )
    assert len(check_manifest(path, str(tmp_path))) == 1


def test_check_manifest_min_duration(corpus):
    root, csv_path, _ = corpus
    assert len(check_manifest(csv_path, root, min_duration=0.1)) == 2
    message = _check_error(csv_path, root, "shorter than", min_duration=0.12)
    assert "a lasts 0.10 s" in message


def test_check_manifest_data_root_substitution(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    _wav(other / "a.wav")
    path = _write_csv(
        tmp_path / "m.csv", "ID,duration,mix_wav\na,0.1,$data_root/a.wav\n"
    )
    rows = check_manifest(path, str(other))
    assert rows[0]["mix_wav"] == f"{other}/a.wav"
    # With the wrong root the file is not found.
    _check_error(path, str(tmp_path), "does not exist")


# --------------------------------------------------------------------------
# make_dataset
# --------------------------------------------------------------------------


def test_make_dataset_keys(corpus):
    root, csv_path, _ = corpus
    ds = make_dataset(csv_path, root, SR, required=("mix_wav", "clean_wav"))
    assert len(ds) == 2
    items = {item["id"]: item for item in ds}
    assert set(items) == {"a", "b"}
    for uid, n in [("a", 1600), ("b", 2400)]:
        item = items[uid]
        assert set(item) == {"id", "mix", "clean"}
        assert item["mix"].shape == (n,) and item["clean"].shape == (n,)
        expected = read_audio(os.path.join(root, f"{uid}_clean.wav"), SR)
        assert torch.equal(item["clean"], expected)
        assert not torch.equal(item["mix"], item["clean"])


def test_make_dataset_only_present_columns(tmp_path):
    _wav(tmp_path / "a.wav")
    path = _write_csv(
        tmp_path / "m.csv",
        "ID,duration,mix_wav,clean_wav\na,0.1,$data_root/a.wav,\n",
    )
    ds = make_dataset(path, str(tmp_path), SR)
    assert set(ds[0]) == {"id", "mix"}


def test_make_dataset_wrong_rate_fails_on_read(corpus):
    root, csv_path, _ = corpus
    ds = make_dataset(csv_path, root, 8000)
    with pytest.raises(DataError, match="expected 8000"):
        ds[0]


# --------------------------------------------------------------------------
# random_crop
# --------------------------------------------------------------------------


def _arange_batch(lengths, pad=-1.0):
    """Row b holds 1000 * b + arange(lengths[b]), then padding."""
    t = max(lengths)
    batch = torch.full((len(lengths), t), pad)
    for b, n in enumerate(lengths):
        batch[b, :n] = 1000.0 * b + torch.arange(n, dtype=torch.float32)
    return batch, torch.tensor(lengths)


def test_random_crop_bounds_and_contiguity():
    lengths = [50, 20, 33, 20]
    wavs, lens = _arange_batch(lengths)
    g = torch.Generator().manual_seed(0)
    starts = {b: set() for b in range(len(lengths))}
    for _ in range(200):
        out = random_crop(wavs, lens, 20, g)
        assert out.shape == (4, 20)
        for b, n in enumerate(lengths):
            row = out[b] - 1000.0 * b
            start = int(row[0])
            assert 0 <= start <= n - 20
            assert torch.equal(row, torch.arange(start, start + 20.0))
            starts[b].add(start)
    # Items as long as the crop have one position; longer ones vary and
    # reach both ends of their valid region.
    assert starts[1] == starts[3] == {0}
    assert starts[0] == set(range(31))
    assert min(starts[2]) == 0 and max(starts[2]) == 13


def test_random_crop_list_cropped_alike():
    lengths = [40, 25]
    wavs, lens = _arange_batch(lengths)
    g = torch.Generator().manual_seed(1)
    mix, clean = random_crop([wavs, 2.0 * wavs], lens, 10, g)
    assert mix.shape == clean.shape == (2, 10)
    assert torch.equal(clean, 2.0 * mix)


def test_random_crop_too_short_names_item():
    wavs, lens = _arange_batch([30, 9])
    g = torch.Generator().manual_seed(0)
    with pytest.raises(DataError, match="utt_b") as err:
        random_crop(wavs, lens, 10, g, ids=["utt_a", "utt_b"])
    assert "9 samples" in str(err.value)
    with pytest.raises(DataError, match="item 1"):
        random_crop(wavs, lens, 10, g)


def test_random_crop_deterministic():
    wavs, lens = _arange_batch([100, 80, 60])
    a = [
        random_crop(wavs, lens, 16, torch.Generator().manual_seed(4))
        for _ in range(2)
    ]
    assert torch.equal(a[0], a[1])
    g1, g2 = (torch.Generator().manual_seed(4) for _ in range(2))
    for _ in range(5):
        assert torch.equal(
            random_crop(wavs, lens, 16, g1), random_crop(wavs, lens, 16, g2)
        )


# --------------------------------------------------------------------------
# NoisePool
# --------------------------------------------------------------------------


@pytest.fixture
def noise_pool(tmp_path):
    """Two noise recordings: a long one (values 1..) and a short one."""
    long = np.linspace(0.01, 0.5, 1000, dtype="float32")
    short = np.array([-0.1, -0.2, -0.3], dtype="float32")
    sf.write(str(tmp_path / "long.wav"), long, SR, subtype="FLOAT")
    sf.write(str(tmp_path / "short.wav"), short, SR, subtype="FLOAT")
    path = _write_csv(
        tmp_path / "noise.csv",
        "ID,duration,noise_wav\n"
        f"long,{1000 / SR},$data_root/long.wav\n"
        f"short,{3 / SR},$data_root/short.wav\n",
    )
    return NoisePool(path, str(tmp_path), SR), long, short


def test_noise_pool_draw_shape(noise_pool):
    pool, _, _ = noise_pool
    assert len(pool) == 2
    out = pool.draw(5, 64, torch.Generator().manual_seed(0))
    assert out.shape == (5, 64) and out.dtype == torch.float32


def test_noise_pool_excerpts_and_tiling(noise_pool):
    pool, long, short = noise_pool
    g = torch.Generator().manual_seed(0)
    seen = set()
    tiled = np.tile(short, 20)
    for _ in range(20):
        out = pool.draw(4, 10, g).numpy()
        for row in out:
            if row[0] > 0:  # an excerpt of the long recording
                seen.add("long")
                start = int(np.argmin(np.abs(long - row[0])))
                np.testing.assert_allclose(row, long[start : start + 10])
            else:  # the short recording, tiled
                seen.add("short")
                offset = int(np.argmin(np.abs(short - row[0])))
                np.testing.assert_allclose(row, tiled[offset : offset + 10])
    assert seen == {"long", "short"}


def test_noise_pool_length_longer_than_every_recording(noise_pool):
    pool, long, short = noise_pool
    out = pool.draw(8, 2500, torch.Generator().manual_seed(3)).numpy()
    assert out.shape == (8, 2500)
    for row in out:
        source = long if row[0] > 0 else short
        # A contiguous excerpt of the recording repeated end to end.
        tiled = np.tile(source, 2500 // len(source) + 2)
        start = int(np.argmin(np.abs(source - row[0])))
        np.testing.assert_allclose(row, tiled[start : start + 2500])


def test_noise_pool_deterministic(noise_pool):
    pool, _, _ = noise_pool
    g1, g2 = (torch.Generator().manual_seed(9) for _ in range(2))
    for _ in range(3):
        assert torch.equal(pool.draw(4, 50, g1), pool.draw(4, 50, g2))
    a = pool.draw(16, 50, torch.Generator().manual_seed(1))
    b = pool.draw(16, 50, torch.Generator().manual_seed(2))
    assert not torch.equal(a, b)


def test_noise_pool_checks_manifest(tmp_path):
    path = _write_csv(
        tmp_path / "noise.csv", "ID,duration,mix_wav\na,1.0,x.wav\n"
    )
    with pytest.raises(DataError, match="noise_wav"):
        NoisePool(path, str(tmp_path), SR)


def test_virtual_mixtures_are_synthesised_when_read(tmp_path):
    """Rows with clean_wav + noise_wav and no mix_wav give
    mix = clean + noise_gain * noise[noise_start:] (noise tiled)."""
    rng = np.random.default_rng(0)
    clean = rng.standard_normal(1600).astype("float32") * 0.1
    noise = rng.standard_normal(500).astype("float32") * 0.1
    sf.write(str(tmp_path / "c.wav"), clean, 16000, subtype="FLOAT")
    sf.write(str(tmp_path / "n.wav"), noise, 16000, subtype="FLOAT")
    path = str(tmp_path / "v.csv")
    write_manifest(path, [{
        "ID": "v", "duration": 0.1, "clean_wav": "$data_root/c.wav",
        "noise_wav": "$data_root/n.wav", "noise_gain": 0.5,
        "noise_start": 120,
    }], ["ID", "duration", "clean_wav", "noise_wav", "noise_gain",
         "noise_start"])
    item = make_dataset(path, str(tmp_path), 16000)[0]  # requires mix_wav
    expected = 0.5 * np.tile(noise, 5)[120:120 + 1600]
    np.testing.assert_allclose(item["noise"].numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(item["mix"].numpy(), clean + expected,
                               atol=1e-6)
    np.testing.assert_allclose(item["clean"].numpy(), clean)


def test_virtual_mixture_needs_both_sources(tmp_path):
    sf.write(str(tmp_path / "c.wav"), np.zeros(160, "float32"), 16000)
    path = str(tmp_path / "v.csv")
    write_manifest(path, [{"ID": "v", "duration": 0.01,
                           "clean_wav": "$data_root/c.wav"}],
                   ["ID", "duration", "clean_wav"])
    with pytest.raises(DataError, match="mix_wav"):
        make_dataset(path, str(tmp_path), 16000)


def test_short_clips_can_be_dropped_and_counted(tmp_path, caplog):
    for name, n in (("long", 3200), ("short", 800)):
        sf.write(str(tmp_path / f"{name}.wav"), np.zeros(n, "float32"),
                 16000)
    path = str(tmp_path / "m.csv")
    write_manifest(path, [
        {"ID": "long", "duration": 0.2, "mix_wav": "$data_root/long.wav"},
        {"ID": "short", "duration": 0.05, "mix_wav": "$data_root/short.wav"},
    ], ["ID", "duration", "mix_wav"])
    with pytest.raises(DataError, match="short_clips: drop"):
        check_manifest(path, str(tmp_path), min_duration=0.1)
    with caplog.at_level("WARNING"):
        kept = check_manifest(path, str(tmp_path), min_duration=0.1,
                              short_clips="drop")
    assert [r["ID"] for r in kept] == ["long"]
    assert "1 of 2 clips shorter" in caplog.text
    with pytest.raises(DataError, match="every clip is shorter"):
        check_manifest(path, str(tmp_path), min_duration=1.0,
                       short_clips="drop")
