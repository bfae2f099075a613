"""`vocal prepare`: statuses, resumability, workers, shards, ids, config errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import voice, write
from typer.testing import CliRunner

from vocalcli import prepare as prep
from vocalcli import project as project_mod
from vocalcli.cli import app

runner = CliRunner()


def make_songs(root: Path, singers: int = 2, songs: int = 3, seconds: float = 5.0) -> Path:
    for s in range(singers):
        (root / f"singer{s}").mkdir(parents=True, exist_ok=True)
        for j in range(songs):
            sf.write(root / f"singer{s}" / f"song{j}.flac", voice(seconds, 22050, f0=150 + 40 * s, seed=j), 22050)
    return root


def run(*args: str):
    return runner.invoke(app, list(args))


def catalog(proj: Path) -> dict[str, dict[str, str]]:
    return {r["source"]: r for r in project_mod.read_csv(proj / "catalog.csv")}


def test_prepare_happy_path_and_rerun(tiny_project: Path, tmp_path: Path) -> None:
    songs = make_songs(tmp_path / "songs")
    (songs / "singers.csv").write_text("singer,gender,genre\nsinger0,F,pop\nsinger1,male,jazz\n")
    r = run("prepare", str(songs), "-p", str(tiny_project), "--json")
    assert r.exit_code == 0, r.output
    cat = catalog(tiny_project)
    assert len(cat) == 6 and all(row["status"] == "ok" for row in cat.values())
    row = cat["singer0/song0.flac"]
    assert row["gender"] == "female" and row["genre"] == "pop" and cat["singer1/song2.flac"]["gender"] == "male"
    mel = np.load(tiny_project / row["mel"])
    assert mel.dtype == np.float16 and mel.shape == (48, 188)  # 1 + 3 s * 16000 / 256
    assert json.loads(r.stdout)["processed"] == 6
    info = json.loads((tiny_project / "prepare.json").read_text())
    assert info["songs_dir"] == str(songs.resolve())

    before = (tiny_project / row["mel"]).stat().st_mtime_ns
    r = run("prepare", str(songs), "-p", str(tiny_project), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["skipped"] == 6
    assert (tiny_project / row["mel"]).stat().st_mtime_ns == before

    r = run("prepare", str(songs), "-p", str(tiny_project), "--json", "--force")
    assert json.loads(r.stdout)["processed"] == 6


def test_the_f0_track_is_stored_on_the_mels_frames_and_older_rows_are_redone(tiny_project: Path,
                                                                             tmp_path: Path) -> None:
    """The melody vector reads pitch/<id>.npy: the sung f0 on the mel's frames. A catalog row from before
    tracks were stored (no pitch column) is redone by a rerun; the others are skipped."""
    songs = make_songs(tmp_path / "songs", singers=1, songs=2)
    assert run("prepare", str(songs), "-p", str(tiny_project)).exit_code == 0
    cat = catalog(tiny_project)
    row = cat["singer0/song0.flac"]
    track = np.load(tiny_project / row["pitch"])
    mel = np.load(tiny_project / row["mel"])
    assert row["pitch"] == f"pitch/{row['song_id']}.npy"
    assert track.shape == (2, mel.shape[1]) and track.dtype == np.float32
    loud = track[1] >= np.median(track[1])
    semis = 12 * np.log2(track[0, loud] / 150.0)  # voice() sings 150 Hz and 1 and 2 semitones above
    assert np.mean((semis > -0.7) & (semis < 2.7)) > 0.9
    rows = list(cat.values())
    rows[0] = {**rows[0], "pitch": ""}
    from vocalcli import catalog as catalog_mod

    catalog_mod.write(tiny_project / "catalog.csv", rows)
    out = json.loads(run("prepare", str(songs), "-p", str(tiny_project), "--json").stdout)
    assert out["processed"] == 1 and out["skipped"] == 1
    assert catalog(tiny_project)["singer0/song0.flac"]["pitch"] == row["pitch"]


def test_changed_source_is_redone(tiny_project: Path, tmp_path: Path) -> None:
    songs = make_songs(tmp_path / "songs", singers=1, songs=2)
    assert run("prepare", str(songs), "-p", str(tiny_project)).exit_code == 0
    sf.write(songs / "singer0/song1.flac", voice(5, 22050, f0=300), 22050)
    r = run("prepare", str(songs), "-p", str(tiny_project), "--json")
    out = json.loads(r.stdout)
    assert out["processed"] == 1 and out["skipped"] == 1


def test_bad_inputs_each_get_a_status(tiny_project: Path, tmp_path: Path) -> None:
    songs = make_songs(tmp_path / "songs", singers=1, songs=2)
    bad = songs / "singer0"
    (bad / "empty.wav").write_bytes(b"")
    (bad / "notaudio.mp3").write_text("hello, I am a text file\n" * 100)
    (bad / "corrupt.flac").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    sf.write(bad / "silent.wav", np.zeros(22050 * 5, dtype=np.float32), 22050)
    sf.write(bad / "short.wav", voice(2, 22050), 22050)
    full = bad / "full.wav"
    sf.write(full, voice(5, 22050), 22050)
    trunc = bad / "truncated.wav"
    trunc.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 3])
    full.unlink()
    r = run("prepare", str(songs), "-p", str(tiny_project))
    assert r.exit_code == 1
    cat = catalog(tiny_project)
    status = {k.split("/")[1]: v["status"] for k, v in cat.items()}
    assert status == {"song0.flac": "ok", "song1.flac": "ok", "empty.wav": "decode_error",
                      "notaudio.mp3": "decode_error", "corrupt.flac": "decode_error", "silent.wav": "silent",
                      "short.wav": "too_short", "truncated.wav": "decode_error"}
    assert all(cat[k]["reason"] for k in cat if cat[k]["status"] != "ok")
    assert "truncated" in cat["singer0/truncated.wav"]["reason"]
    assert not list((tiny_project / "mels").glob("*.tmp"))


@pytest.mark.parametrize(("method", "warmed"), [("harmonic", False), ("repet", True)])
def test_worker_pool_warms_librosa_only_for_a_separator_that_runs_it(tiny_project: Path, tmp_path: Path,
                                                                     monkeypatch, method: str, warmed: bool) -> None:
    calls: list[int] = []
    monkeypatch.setattr(prep, "warm_librosa_cache", lambda: calls.append(1))
    songs = make_songs(tmp_path / "songs", singers=1, songs=2)
    r = run("prepare", str(songs), "-p", str(tiny_project), "--separate", method, "-w", "2")
    assert r.exit_code == 0, r.output
    assert bool(calls) is warmed


def test_workers_two_equals_one_and_shards_union(tiny_project: Path, tmp_path: Path) -> None:
    songs = make_songs(tmp_path / "songs", singers=2, songs=3)
    one = tmp_path / "one"
    shutil.copytree(tiny_project, one)
    assert run("prepare", str(songs), "-p", str(one), "-w", "1").exit_code == 0
    assert run("prepare", str(songs), "-p", str(tiny_project), "-w", "2").exit_code == 0
    c1, c2 = catalog(one), catalog(tiny_project)
    assert c1.keys() == c2.keys()
    for k in c1:
        np.testing.assert_array_equal(np.load(one / c1[k]["mel"]), np.load(tiny_project / c2[k]["mel"]))

    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_project.parent / "proj", sharded, ignore=shutil.ignore_patterns("catalog.csv", "mels"))
    for i in (1, 2, 3):
        assert run("prepare", str(songs), "-p", str(sharded), "--shard", f"{i}/3").exit_code == 0
    parts = [project_mod.read_csv(p) for p in sorted((sharded / "shards").glob("*.csv"))]
    ids = [r["song_id"] for part in parts for r in part]
    assert len(ids) == len(set(ids)) == 6
    assert run("prepare", "-p", str(sharded), "--merge-shards").exit_code == 0
    assert catalog(sharded).keys() == c1.keys()
    assert run("prepare", str(songs), "-p", str(sharded), "--shard", "4/3").exit_code != 0


@pytest.mark.parametrize("singer,name", [("Zoë Ångström", "my song (live).wav"), ("a b", "..wav"),
                                         ("..", "x.wav"), ("歌手", "歌 1.wav")])
def test_song_ids_are_filesystem_safe(singer: str, name: str) -> None:
    sid = prep.song_id(singer, f"{singer}/{name}")
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in sid)
    assert not sid.startswith(".") and "/" not in sid
    assert prep.song_id(singer, f"{singer}/{name}") == sid
    assert prep.song_id(singer, f"{singer}/{name}x") != sid


def test_unicode_paths_prepare(tiny_project: Path, tmp_path: Path) -> None:
    songs = tmp_path / "songs"
    write(songs / "Zoë Ångström" / "my song (live).wav", voice(5, 16000), 16000)
    write(songs / "歌手" / "歌 1.wav", voice(5, 16000), 16000)
    assert run("prepare", str(songs), "-p", str(tiny_project)).exit_code == 0
    assert all(r["status"] == "ok" and (tiny_project / r["mel"]).is_file() for r in catalog(tiny_project).values())


@pytest.mark.parametrize("yaml_text,key", [("audio:\n  n_melz: 40\n", "audio.n_melz"),
                                           ("audio:\n  n_mels: forty\n", "audio.n_mels"),
                                           ("prepare:\n  separate: magic\n", "prepare.separate"),
                                           ("balance:\n  split: {train: 0.9, val: 0.2, test: 0.1}\n",
                                            "balance.split"),
                                           ("contrastive:\n  residue_db: [0, -12]\n", "contrastive.residue_db"),
                                           ("contrastive:\n  positives: labels\n", "contrastive.positives")])
def test_config_errors_name_the_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    (tmp_path / "vocal.yaml").write_text(yaml_text)
    songs = make_songs(tmp_path / "songs", singers=1, songs=1)
    r = run("prepare", str(songs), "-p", str(tmp_path))
    assert r.exit_code == 1
    assert key in r.output


def test_missing_project_says_how_to_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VOCAL_PROJECT", raising=False)
    r = run("balance")
    assert r.exit_code == 1 and "vocal prepare" in r.output


def test_prepare_query_short_file_warns(tmp_path: Path) -> None:
    from vocalcli.config import from_dict

    cfg = from_dict({"audio": {"start_s": 1.0, "end_s": 4.0}, "prepare": {"separate": "none"}})
    mel, info, _ = prep.prepare_query(write(tmp_path / "q.wav", voice(2.5, 16000), 16000), cfg)
    assert mel.shape[0] == 48 and info["warnings"]
    mel, info, _ = prep.prepare_query(write(tmp_path / "q2.wav", voice(5, 16000), 16000), cfg)
    assert mel.shape == (48, 188) and not info["warnings"]


def test_full_size_prepare_with_separation(tmp_path: Path) -> None:
    """The real defaults end to end: a 2:35 stereo 44.1 kHz song -> one (48, 7501) float16 mel."""
    songs = tmp_path / "songs"
    (songs / "solo").mkdir(parents=True)
    sf.write(songs / "solo" / "long.flac", voice(155, 44100, channels=2), 44100)
    proj = project_mod.init(tmp_path / "proj")
    r = run("prepare", str(songs), "-p", str(proj.root), "--separate", "harmonic", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["separation"] == "harmonic"
    (row,) = project_mod.read_csv(proj.catalog)
    assert row["status"] == "ok" and row["separation"] == "harmonic" and float(row["duration_s"]) == 155.0
    mel = np.load(proj.root / row["mel"])
    assert mel.shape == (48, 7501) and mel.dtype == np.float16 and np.isfinite(mel).all()


def _fake_demucs(monkeypatch: pytest.MonkeyPatch) -> None:
    """An untrained tiny HTDemucs stands in for the downloaded one (speed and plumbing, not quality)."""
    pytest.importorskip("demucs")
    import torch
    from demucs.htdemucs import HTDemucs

    from vocalcli import separation

    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=8, t_layers=1, segment=4).eval()
    monkeypatch.setattr(separation, "demucs_available", lambda: (True, ""))
    monkeypatch.setattr(separation, "load_demucs", lambda: model)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_prepare_with_demucs_runs_it_on_the_window_at_its_own_rate(tiny_project: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   workers: str) -> None:
    _fake_demucs(monkeypatch)
    from vocalcli import separation

    seen: list[tuple[int, ...]] = []
    real = separation.demucs_vocals

    def spy(model, windows, sr, out_sr, device="cpu"):  # noqa: ANN001, ANN202
        seen.extend(w.shape for w in windows)
        assert sr == 44100 and out_sr == 16000
        return real(model, windows, sr, out_sr, device)

    monkeypatch.setattr(separation, "demucs_vocals", spy)
    songs = make_songs(tmp_path / "songs", singers=1, songs=2)
    (songs / "singer0" / "short.flac").write_bytes((songs / "singer0" / "song0.flac").read_bytes()[:2000])
    _keep_residues(tiny_project)
    r = run("prepare", str(songs), "-p", str(tiny_project), "--separate", "demucs", "--device", "cpu", "-w", workers)
    assert r.exit_code == 1, r.output  # the truncated file fails; the others do not
    rows = catalog(tiny_project)
    ok = [row for row in rows.values() if row["status"] == "ok"]
    assert len(ok) == 2 and all(row["separation"] == "demucs" and float(row["f0_hz"]) > 0 for row in ok)
    assert seen == [(2, 3 * 44100)] * 2  # the 1-4 s window of a 22.05 kHz mono file, as 44.1 kHz stereo
    mel = np.load(tiny_project / ok[0]["mel"])
    assert mel.shape == (48, 188) and np.isfinite(mel.astype(np.float32)).all()
    res = np.load(tiny_project / ok[0]["residue"])  # what demucs took away, at the mel's rate
    assert res.shape == mel.shape and np.isfinite(res.astype(np.float32)).all()


def test_auto_says_how_long_demucs_would_take_on_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from vocalcli import separation

    monkeypatch.setattr(separation, "demucs_available", lambda: (True, ""))
    said: list[str] = []
    assert prep.resolve_separation("auto", "cpu", 4500, 120.0, said.append) == "harmonic"
    assert "would take" in said[-1] and "4500 songs" in said[-1] and "--separate demucs" in said[-1]
    assert prep.resolve_separation("auto", "cpu", 10, 120.0, said.append) == "demucs" and "min" in said[-1]
    assert prep.resolve_separation("auto", "cuda", 4500, 120.0, said.append) == "demucs"
    monkeypatch.setattr(separation, "demucs_available", lambda: (False, "weights missing"))
    assert prep.resolve_separation("auto", "cuda", 1, log=said.append) == "harmonic"  # auto never downloads


def test_separate_demucs_fetches_missing_weights_saying_what_and_where(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("demucs")
    import demucs.pretrained

    from vocalcli import separation

    weights = tmp_path / "955717e8-8726e21a.th"
    monkeypatch.setattr(separation, "demucs_available", lambda: (False, "weights for htdemucs are not cached"))
    monkeypatch.setattr(separation, "_weights_path", lambda: weights if weights.exists() else None)
    monkeypatch.setattr(demucs.pretrained, "get_model", lambda name: weights.write_bytes(b"w"))
    said: list[str] = []
    assert prep.resolve_separation("demucs", log=said.append) == "demucs"
    assert weights.exists() and "downloading the htdemucs weights" in said[0]
    assert separation.weights_destination() in said[0]

    def offline(name):  # noqa: ANN001, ANN202
        raise OSError("network unreachable")

    weights.unlink()
    monkeypatch.setattr(demucs.pretrained, "get_model", offline)
    with pytest.raises(separation.SeparationError, match="could not download.*--separate harmonic"):
        prep.resolve_separation("demucs")


def test_prepare_gpu_without_cuda_is_a_clear_error(tiny_project: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    songs = make_songs(tmp_path / "songs", singers=1, songs=1)
    r = run("prepare", str(songs), "-p", str(tiny_project), "--gpu")
    assert r.exit_code != 0 and "CUDA was requested" in r.output


def _keep_residues(project: Path) -> None:
    """prepare.residue: true in the project's vocal.yaml (off by default)."""
    yaml = project / "vocal.yaml"
    yaml.write_text(yaml.read_text().replace("prepare:\n", "prepare:\n  residue: true\n"))


def test_residue_is_what_separation_took_away(tiny_project: Path, tmp_path: Path) -> None:
    """With MR removal, prepare also stores the residue mel; vocal + residue powers give the mixture's mel."""
    from vocalcli import audio
    from vocalcli.config import AudioConfig

    songs = tmp_path / "songs"
    (songs / "a").mkdir(parents=True)
    sr = 16000
    t = np.arange(5 * sr) / sr
    band = 0.2 * np.sin(2 * np.pi * 97.0 * t) + 0.1 * np.sin(2 * np.pi * 1234.0 * t)  # a steady organ
    mix = (voice(5, sr, f0=330) + band).astype(np.float32)
    sf.write(songs / "a" / "s.wav", mix, sr)
    _keep_residues(tiny_project)
    r = run("prepare", str(songs), "-p", str(tiny_project), "--separate", "harmonic", "--json")
    assert r.exit_code == 0, r.output
    row = catalog(tiny_project)["a/s.wav"]
    assert row["residue"] == "residues/" + Path(row["mel"]).name
    vocal, residue = (np.load(tiny_project / row[k]).astype(np.float32) for k in ("mel", "residue"))
    a = AudioConfig(start_s=1.0, end_s=4.0)
    whole = audio.fit_frames(audio.log_mel(mix[sr: 4 * sr], a), a.n_frames)
    assert residue.shape == vocal.shape == whole.shape
    # powers add up to the mixture's up to the phase cross term (and the float16 storage)
    assert np.median(np.abs(np.logaddexp(vocal, residue) - whole)) < 0.5
    assert np.mean(residue[2]) > np.mean(vocal[2]) + 1  # the organ's 97 Hz band went to the residue

    # a row from before residues were kept is redone; --separate none stores none (and clears the column)
    rows = project_mod.read_csv(tiny_project / "catalog.csv")
    rows[0]["residue"] = ""
    from vocalcli import catalog as catalog_mod

    catalog_mod.write(tiny_project / "catalog.csv", rows)
    assert json.loads(run("prepare", str(songs), "-p", str(tiny_project), "--separate", "harmonic",
                          "--json").stdout)["processed"] == 1
    r = run("prepare", str(songs), "-p", str(tiny_project), "--separate", "none", "--json")
    assert json.loads(r.stdout)["processed"] == 1 and catalog(tiny_project)["a/s.wav"]["residue"] == ""
