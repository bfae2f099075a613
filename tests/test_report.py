"""`vocal report` as a library: clips, reasons, playlists, the site's data files, resuming, degrading.

The browser side is tests/test_report_browser.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import voice, write
from report_fixtures import make_report_project

from vocalcli import clips, playlist, reasons, report
from vocalcli import project as project_mod
from vocalcli.config import from_dict
from vocalcli.errors import ConfigError, VocalError


def read_js(path: Path, call: str) -> list:
    """The arguments of a data file ``VOCAL.call(a, b);`` as Python values."""
    text = path.read_text(encoding="utf-8")
    head = f"VOCAL.{call}("
    assert text.startswith(head) and text.endswith(");\n")
    return json.loads("[" + text[len(head):-3] + "]")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    proj = make_report_project(root)
    res = report.write_report(proj, proj.load_config())
    return proj, res


# ------------------------------------------------------------------------------------------- clips
def test_loudest_start_finds_the_loudest_stretch():
    mel = np.full((4, 100), -10.0)
    mel[:, 60:70] = 0.0
    assert clips.loudest_start(mel, 10) == 60
    assert clips.loudest_start(mel, 200) == 0  # shorter than a clip: from the start
    assert clips.loudest_start(np.zeros((4, 30)), 10) == 0  # ties: the earliest


def test_opus_clips_have_the_asked_bitrate_and_decode(tmp_path):
    y = voice(10.0, 16000)
    size = clips.encode_opus(tmp_path / "a.opus", y, 16000, 20.0)
    assert 0.6 * 25_000 < size < 1.4 * 25_000  # 20 kbit/s x 10 s = 25 kB
    z, sr = sf.read(tmp_path / "a.opus")
    assert abs(len(z) / sr - 10.0) < 0.05
    assert clips.encode_opus(tmp_path / "b.opus", y, 16000, 40.0) > 1.5 * size


def test_clip_pair_is_the_same_seconds_of_mix_and_voice(tmp_path):
    song = write(tmp_path / "s.wav", voice(6.0, 16000) + 0.2 * np.sin(np.arange(96000) * 0.05).astype(np.float32),
                 16000)
    job = clips.ClipJob("x", str(song), 2.0, 3.0, "harmonic", 20.0, str(tmp_path / "x.mix.opus"),
                        str(tmp_path / "x.voice.opus"))
    res = clips.write_clip_pair(job)
    assert res["status"] == "ok" and res["separation"] == "harmonic" and res["seconds"] == 3.0
    mix, _ = sf.read(tmp_path / "x.mix.opus")
    vox, _ = sf.read(tmp_path / "x.voice.opus")
    assert abs(len(mix) - len(vox)) < 200 and abs(len(mix) / 16000 - 3.0) < 0.05
    assert np.sqrt(np.mean(mix**2)) == pytest.approx(0.1, rel=0.25)  # -20 dBFS RMS
    assert np.sqrt(np.mean(vox**2)) < np.sqrt(np.mean(mix**2))  # the band was taken out, same gain


def test_a_bad_song_file_is_a_result_not_an_exception(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    job = clips.ClipJob("x", str(bad), 0.0, 3.0, "none", 20.0, str(tmp_path / "m.opus"), str(tmp_path / "v.opus"))
    res = clips.write_clip_pair(job)
    assert res["status"] == "error" and res["reason"].startswith("decode:")
    assert not (tmp_path / "m.opus").exists()


# ----------------------------------------------------------------------------------------- reasons
def test_reasons_place_a_similarity_among_pairs_of_different_singers():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(40, 8))
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    singers = [f"s{i // 4}" for i in range(40)]
    stats = reasons.pair_stats(t, t, singers, seed=0, n_pairs=2000)
    assert stats.timbre.size == 2000 and np.all(np.diff(stats.timbre) >= 0)
    assert stats.percentile("timbre", 1.0) == 1.0 and stats.percentile("timbre", -1.0) == 0.0
    assert reasons.level(0.995) == "very close" and reasons.level(0.5) == "no closer than usual"
    assert reasons.note_name(220.0) == "A3" and reasons.note_name(261.63) == "C4" and reasons.note_name(None) is None
    text = reasons.reason(0.99, 0.1, stats, (0.8, 0.2), {"f0_hz": "220", "gender": "f", "genre": "pop"},
                          {"f0_hz": "233", "gender": "f", "genre": "pop"})
    assert text.startswith("voice very close (0.99, closer than 99.9% of pairs by different singers); melody")
    assert "both sing around A#3" in text and "both female" in text and "both pop" in text
    text = reasons.reason(0.2, 0.99, stats, (0.0, 1.0), {"f0_hz": "110"}, {"f0_hz": "440"})
    assert text.startswith("melody very close") and "registers differ (A2 vs A4)" in text


# ---------------------------------------------------------------------------------------- playlist
def test_m3u8_is_extended_m3u_with_absolute_paths(tmp_path):
    entries = [playlist.Entry("/music/a b/é.flac", "Ann", "Song\none", 181.6, "why: voice")]
    path = playlist.write_m3u8(tmp_path / "p.m3u8", entries, "Sung like X")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines() == ["#EXTM3U", "#PLAYLIST:Sung like X", "# why: voice", "#EXTINF:182,Ann - Song one",
                                 "/music/a b/é.flac"]
    assert playlist.read_m3u8(path) == ["/music/a b/é.flac"]
    with pytest.raises(VocalError, match="line break"):
        playlist.m3u8_text([playlist.Entry("/a\nb.wav", "x", "y")])


# ------------------------------------------------------------------------------------------- the site
def test_report_writes_a_self_contained_site(built):
    proj, res = built
    out = res.out_dir
    assert res.path == proj.root / "report" / "index.html"
    assert (res.songs, res.singers, res.not_prepared, res.mapped, res.with_recommendations) == (36, 7, 1, 36, 36)
    assert res.clips_written == 36 and not res.clips_failed and res.notes == []
    html = res.path.read_text()
    for ref in ("assets/app.js", "assets/style.css", "data/site.js"):
        assert ref in html and (out / ref).is_file()
    assert "http://" not in html and "https://" not in html  # no CDN: nothing from the network
    assert "http" not in (out / "assets" / "app.js").read_text().replace("http://www.w3.org/2000/svg", "")
    (site,) = read_js(out / "data" / "site.js", "site")
    songs = site["songs"]
    assert len(songs["id"]) == 36 and all(0 <= x <= 1 for x in songs["x"] + songs["y"])
    assert site["failed"] == [{"source": "zed/s.wav", "singer": "zed", "status": "too_short", "reason": "1.0 s < 4 s"}]
    assert {s["name"]: s["gender"] for s in site["singers"]}["eve"] == "f"  # 'F' in singers.csv
    assert site["evaluation"]["rows"][0]["metric"] == "singer_id.top1"
    assert site["featured"] in songs["id"]


def test_every_song_has_clips_and_recommendations_by_other_singers(built):
    proj, res = built
    (site,) = read_js(res.out_dir / "data" / "site.js", "site")
    singer = {i: site["singers"][s]["name"] for i, s in zip(site["songs"]["id"], site["songs"]["singer"], strict=True)}
    details = {}
    for f in sorted((res.out_dir / "data").glob("songs-*.js")):
        n, chunk = read_js(f, "chunk")
        details.update(chunk)
    assert set(details) == set(singer)
    total = 0
    for sid, d in details.items():
        for kind in ("mix", "voice"):
            clip = res.out_dir / d["clip"][kind]
            assert clip.is_file()
            total += clip.stat().st_size
        assert len(d["recs"]) == 10
        assert all(singer[r[0]] != singer[sid] and r[4] for r in d["recs"])  # other singers, with a reason
        scores = [r[1] for r in d["recs"]]
        assert scores == sorted(scores, reverse=True)
        entries = playlist.read_m3u8(res.out_dir / d["playlist"])
        assert len(entries) == 11 and entries[0] == d["path"] and Path(entries[0]).is_file()
    assert total / len(details) < 30_000  # two 3-second clips at 20 kbit/s: ~15 kB


def test_a_rerun_reuses_clips_and_force_rewrites_them(built, tmp_path):
    proj, res = built
    again = report.write_report(proj, proj.load_config())
    assert again.clips_written == 0 and again.clips_reused == 36
    stale = res.out_dir / "data" / "songs-009.js"
    project_mod.write_text(stale, "VOCAL.chunk(9, {});\n")
    (res.out_dir / "clips" / "gone.mix.opus").write_bytes(b"x")
    one = report.write_report(proj, from_dict({**proj.load_config().to_dict(),
                                               "report": {"songs_per_chunk": 100, "map_method": "pca"}}))
    assert not stale.exists() and not (res.out_dir / "clips" / "gone.mix.opus").exists()
    assert one.clips_reused == 36


def test_without_index_and_songs_the_report_still_opens_and_says_what_to_run(tmp_path):
    proj = make_report_project(tmp_path, with_index=False, with_runs=False)
    project_mod.write_json(proj.prepare_info, {"songs_dir": str(tmp_path / "moved")})
    res = report.write_report(proj, proj.load_config(), tmp_path / "site")
    assert res.path.is_file() and res.mapped == 36 and res.with_recommendations == 0 and res.clips_written == 0
    assert any("no recommendations" in n and "vocal index" in n for n in res.notes)
    assert any("no audio clips" in n and "vocal prepare" in n for n in res.notes)
    (site,) = read_js(res.out_dir / "data" / "site.js", "site")
    assert site["notes"] == res.notes and site["evaluation"] is None and site["curves"] == []


def test_the_report_never_writes_into_a_folder_of_other_files(tmp_path):
    proj = make_report_project(tmp_path, with_index=False, with_runs=False)
    with pytest.raises(VocalError, match="holds other files"):
        report.write_report(proj, proj.load_config(), proj.root)
    music = tmp_path / "music"
    (music / "clips").mkdir(parents=True)
    (music / "clips" / "mine.opus").write_bytes(b"a user's file")
    with pytest.raises(VocalError, match="-o NEW_DIR"):
        report.write_report(proj, proj.load_config(), music)
    assert (music / "clips" / "mine.opus").read_bytes() == b"a user's file"


def test_training_curves_follow_a_resumed_run(tmp_path):
    proj = project_mod.Project(tmp_path)
    for name, resumed, steps in (("20260101-000000-000000", 0, range(1, 6)), ("20260102-000000-000000", 1,
                                                                               range(6, 11))):
        run = proj.runs / "contrastive" / name
        project_mod.write_json(run / "config.json", {"resumed_from_epoch": resumed})
        project_mod.write_text(run / "metrics.jsonl", "".join(
            json.dumps({"type": "step", "step": s, "loss": 1.0 / s, "ln_n": 2.0}) + "\n" for s in steps) + '{"cut')
    (curve,) = report.training_curves(proj)
    loss = next(s for s in curve["series"] if s["key"] == "loss")
    assert loss["xs"] == list(range(1, 11)) and curve["runs"] == ["20260101-000000-000000", "20260102-000000-000000"]
    # a fresh run later starts a new curve
    run = proj.runs / "contrastive" / "20260103-000000-000000"
    project_mod.write_json(run / "config.json", {"resumed_from_epoch": 0})
    project_mod.write_text(run / "metrics.jsonl", json.dumps({"type": "step", "step": 1, "loss": 3.0}) + "\n")
    (curve,) = report.training_curves(proj)
    assert curve["runs"] == ["20260103-000000-000000"]


def test_long_curves_are_averaged_down():
    x, y = report._bin_mean(list(range(1000)), [float(v) for v in range(1000)], 10)
    assert len(x) == 10 and y[0] == pytest.approx(49.5)


def test_evaluation_rows_know_that_a_lower_eer_is_better():
    rows = {r["metric"]: r for r in report.evaluation_rows({"singer_id.eer": 0.1, "singer_id.eer_mfcc": 0.2,
                                                            "singer_id.top1": 0.5, "singer_id.top1_mfcc": 0.7})}
    assert rows["singer_id.eer"]["vocal_at_least_baseline"] is True
    assert rows["singer_id.top1"]["vocal_at_least_baseline"] is False
    assert rows["melody.map"]["vocal_at_least_baseline"] is None


def test_report_settings_are_checked():
    with pytest.raises(ConfigError, match="report.clip_kbps"):
        from_dict({"report": {"clip_kbps": 1.0}})
    with pytest.raises(ConfigError, match="report.map_method"):
        from_dict({"report": {"map_method": "umap"}})


# ---------------------------------------------------------------------------------------------- the CLI
def test_vocal_report_command_writes_the_site_and_says_where(built, tmp_path):
    from typer.testing import CliRunner

    from vocalcli.cli import app

    proj, _ = built
    r = CliRunner().invoke(app, ["report", "-p", str(proj.root), "-o", str(tmp_path / "site"), "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout[r.stdout.index("{"):])
    assert payload["songs"] == 36 and payload["clips_written"] == 36 and Path(payload["path"]).is_file()
    r = CliRunner().invoke(app, ["report", "-p", str(proj.root), "-o", str(tmp_path / "site")])
    assert r.exit_code == 0 and (tmp_path / "site" / "index.html").as_uri() in r.output.replace("\n", "")


def test_vocal_report_without_a_prepared_project_says_what_to_run(tmp_path):
    from typer.testing import CliRunner

    from vocalcli.cli import app

    (tmp_path / "vocal.yaml").write_text("")
    r = CliRunner().invoke(app, ["report", "-p", str(tmp_path)])
    assert r.exit_code == 1 and "vocal prepare" in " ".join(r.output.split())


def test_recommend_m3u_writes_the_query_and_its_matches(built, tmp_path):
    from typer.testing import CliRunner

    from vocalcli.cli import app

    proj, _ = built
    out = tmp_path / "like.m3u8"
    r = CliRunner().invoke(app, ["recommend", "--song-id", "ann-song2", "-k", "4", "--m3u", str(out), "-p",
                                 str(proj.root), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout[r.stdout.index("{"):])["playlist"] == str(out)
    paths = playlist.read_m3u8(out)
    assert len(paths) == 5 and paths[0].endswith("ann/2.wav") and all(Path(p).is_file() for p in paths)
    assert not any("/ann/" in p for p in paths[1:])  # other singers, as the table says
    assert out.read_text().count("#EXTINF:5,") == 5
