"""The use commands through the CLI: happy paths, --json on stdout, one-line errors."""

from __future__ import annotations

import json

import pytest
from test_index import make_use_project
from test_plot import png_size
from test_recommend import FakeEmbedder, fake_models  # noqa: F401  (fixture)
from typer.testing import CliRunner

from vocalcli.cli import app

runner = CliRunner()


@pytest.fixture
def proj(tmp_path):
    return make_use_project(tmp_path / "proj")


def run(proj, *args: str):
    return runner.invoke(app, [*args, "-p", str(proj.root)])


def test_help_lists_the_use_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("classify-gender", "index", "recommend", "evaluate", "plot"):
        assert cmd in res.stdout


def test_index_then_recommend_json(proj):
    res = run(proj, "index", "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["n"] == 36 and info["recall_at_10"] >= 0.99
    res = run(proj, "recommend", "--song-id", "ann-song0", "-k", "3", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["items"]) == 3 and all(it["singer"] != "ann" for it in out["items"])
    assert set(out["items"][0]) >= {"rank", "singer", "title", "score", "timbre_sim", "melody_sim", "gender"}


def test_recommend_table_and_filters(proj):
    assert run(proj, "index").exit_code == 0
    res = run(proj, "recommend", "--song-id", "cid-song1", "--gender", "f", "--mode", "voice", "-k", "4")
    assert res.exit_code == 0, res.output
    assert "timbre sim" in res.stdout and "melody sim" in res.stdout
    res = run(proj, "recommend", "--song-id", "cid-song1", "--gender", "f", "-k", "4", "--json")
    assert {it["gender"] for it in json.loads(res.stdout)["items"]} == {"f"}
    res = run(proj, "recommend", "--song-id", "cid-song1", "--include-singer", "--json", "-k", "2",
              "--mode", "voice")
    assert [it["singer"] for it in json.loads(res.stdout)["items"]] == ["cid", "cid"]


def test_recommend_errors_are_one_line(proj, tmp_path, fake_models):  # noqa: F811
    res = run(proj, "recommend", "--song-id", "ann-song0")
    assert res.exit_code == 1 and "vocal index" in res.stderr and "Traceback" not in res.output
    assert run(proj, "index").exit_code == 0
    res = run(proj, "recommend", "--song-id", "nope")
    assert res.exit_code == 1 and "not in the index" in res.stderr
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00garbage" * 50)
    res = run(proj, "recommend", str(bad))
    assert res.exit_code == 1 and "error:" in res.stderr
    res = run(proj, "recommend")
    assert res.exit_code == 1 and "exactly one query" in res.stderr


def test_stale_index_is_refused_by_name(proj):
    from vocalcli import project as project_mod

    assert run(proj, "index").exit_code == 0
    project_mod.write_bytes(proj.checkpoint("tcae"), b"retrained")
    res = run(proj, "recommend", "--song-id", "ann-song0")
    assert res.exit_code == 1 and "vocal index" in res.stderr


def test_classify_gender_train_and_predict(proj, tmp_path, fake_models):  # noqa: F811
    import soundfile as sf
    from audio_fixtures import voice

    res = run(proj, "classify-gender", "train", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["features"] == "pitch_cepstral" and set(rep["compare"]) == {"pitch_cepstral", "pitch", "timbre", "mel"}
    res = run(proj, "classify-gender", "train")
    assert res.exit_code == 0 and "balanced acc." in res.stdout
    wav = tmp_path / "q.wav"
    sf.write(wav, voice(5.0, 16000), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope" * 10)
    res = run(proj, "classify-gender", "predict", str(wav), str(bad), "--catalog", "--json")
    assert res.exit_code == 1  # one file failed: reported, the batch went on
    rows = json.loads(res.stdout)
    assert rows[0]["gender"] in ("f", "m") and "error" in rows[1]
    assert {r["singer"] for r in rows[2:]} == {"unk"}
    res = run(proj, "classify-gender", "predict")
    assert res.exit_code == 1 and "--catalog" in res.stderr


def test_evaluate_json_keys(proj):
    res = run(proj, "evaluate", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    for key in ("singer_id.top1", "singer_id.top1_mfcc", "singer_id.map", "singer_id.eer",
                "gender.balanced_accuracy", "melody.map", "melody.map_chroma", "index.recall_at_10"):
        assert key in rep
    assert rep["melody.map"] is None
    res = run(proj, "evaluate")
    assert res.exit_code == 0 and "MFCC mean+std" in res.stdout


def test_plot_command(proj, tmp_path):
    out = tmp_path / "m.png"
    res = run(proj, "plot", "-o", str(out), "--width", "400", "--height", "300", "--color", "gender")
    assert res.exit_code == 0, res.output
    assert png_size(out) == (400, 300)
    res = run(proj, "plot", "-o", str(out), "--singers", "ann,ghost")
    assert res.exit_code == 1 and "ghost" in res.stderr


def test_commands_outside_a_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VOCAL_PROJECT", raising=False)
    res = runner.invoke(app, ["recommend", "--song-id", "x"])
    assert res.exit_code == 1 and "vocal.yaml" in res.stderr
