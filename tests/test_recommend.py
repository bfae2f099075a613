"""recommend(): queries (song, singer, file), modes, filters, and its errors."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import voice
from test_index import DM, DT, make_use_project, write_embeddings

from vocalcli import index
from vocalcli import project as project_mod
from vocalcli.errors import AudioError, MissingArtifact, StaleArtifact, VocalError
from vocalcli.recommend import mode_mix, recommend
from vocalcli.vectors import l2_rows


class FakeEmbedder:
    """Stands in for vocalcli.embed.Embedder: a fixed projection of mel statistics (deterministic)."""

    def __init__(self, hashes: dict[str, str]) -> None:
        rng = np.random.default_rng(42)
        self.pt, self.pm = rng.normal(size=(DT, 96)), rng.normal(size=(DM, 96))
        self.checkpoint_hashes = hashes

    @classmethod
    def from_project(cls, project, device="auto"):
        for t in ("contrastive", "tcae"):
            if not project.checkpoint(t).is_file():
                raise MissingArtifact(f"no {t} model; run 'vocal train-{t}'")
        return cls(index.checkpoint_digests(project))

    def embed(self, log_mel, track=None):
        from vocalcli.gender import mel_stats

        s = mel_stats(np.asarray(log_mel, dtype=np.float32))
        return l2_rows(self.pt @ s), l2_rows(self.pm @ s)


@pytest.fixture
def fake_models(monkeypatch):
    """Fake encoders; and, until vocalcli.separation exists, a pass-through separation module."""
    import vocalcli.embed

    monkeypatch.setattr(vocalcli.embed, "Embedder", FakeEmbedder)
    if importlib.util.find_spec("vocalcli.separation") is None:
        sep = types.ModuleType("vocalcli.separation")
        sep.separate = lambda y, sr, method: (y, "none")
        sep.demucs_available = lambda: (False, "not installed")
        monkeypatch.setitem(sys.modules, "vocalcli.separation", sep)
        import vocalcli

        monkeypatch.setattr(vocalcli, "separation", sep, raising=False)


@pytest.fixture
def indexed(tmp_path):
    proj = make_use_project(tmp_path / "proj")
    cfg = proj.load_config()
    index.build_index(proj, cfg)
    return proj, cfg


def singer_of(proj: project_mod.Project) -> dict[str, str]:
    return {r["song_id"]: r["singer"] for r in project_mod.read_csv(proj.catalog)}


def test_song_query_excludes_own_singer_by_default(indexed):
    proj, cfg = indexed
    res = recommend(proj, cfg, song_id="ann-song0", k=5)
    assert len(res.items) == 5 and res.filters["exclude_singer"]
    assert all(it.singer != "ann" for it in res.items)
    assert [it.rank for it in res.items] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(res.items, res.items[1:], strict=False))


def test_include_singer_finds_the_same_voice_first(indexed):
    proj, cfg = indexed
    res = recommend(proj, cfg, song_id="ann-song0", k=5, mode="voice", exclude_singer=False)
    assert "ann-song0" not in [it.song_id for it in res.items]  # the query itself is never returned
    assert [it.singer for it in res.items] == ["ann"] * 5


def test_modes_score_by_the_right_part(indexed):
    proj, cfg = indexed
    voice_ = recommend(proj, cfg, song_id="cid-song2", k=4, mode="voice")
    for it in voice_.items:
        assert it.score == pytest.approx(it.timbre_sim)
    mel = recommend(proj, cfg, song_id="cid-song2", k=4, mode="melody")
    for it in mel.items:
        assert it.score == pytest.approx(it.melody_sim)
    assert all(it.song_id.endswith("-song2") for it in mel.items)  # same melody, other singers
    both = recommend(proj, cfg, song_id="cid-song2", k=4, mode="both")
    a, b = mode_mix("both", {"timbre": 1.0, "melody": 0.5})
    assert (a, b) == pytest.approx((0.8, 0.2))
    for it in both.items:
        assert it.score == pytest.approx(a * it.timbre_sim + b * it.melody_sim, abs=1e-5)


def test_exact_rescoring_matches_brute_force(indexed):
    proj, cfg = indexed
    idx = index.load_index(proj, cfg)
    res = recommend(proj, cfg, song_id="bea-song1", k=10, exclude_singer=False)
    q = idx.row_of["bea-song1"]
    scores = 0.8 * (idx.timbre @ idx.timbre[q]) + 0.2 * (idx.melody @ idx.melody[q])
    scores[q] = -np.inf
    best = [idx.ids[i] for i in np.argsort(-scores)[:10]]
    assert [it.song_id for it in res.items] == best


def test_gender_filter_uses_labels_and_never_guesses_without_a_classifier(indexed):
    proj, cfg = indexed
    res = recommend(proj, cfg, song_id="cid-song0", k=50, gender="f", exclude_singer=False)
    assert res.items and all(it.gender == "f" and it.gender_source == "catalog" for it in res.items)
    assert {it.singer for it in res.items} == {"ann", "bea", "eve"}
    assert any("no gender label" in w for w in res.warnings)  # unk's songs are left out, and we say so


def test_gender_filter_uses_predictions_for_unlabelled_singers(indexed):
    from vocalcli import gender

    proj, cfg = indexed
    gender.train(proj, cfg)
    predicted = {p["gender"] for p in gender.predict_catalog(proj)}
    res = recommend(proj, cfg, song_id="cid-song0", k=50, gender="m")
    assert all(it.gender == "m" for it in res.items)
    unk = [it for it in res.items if it.singer == "unk"]
    assert (len(unk) > 0) == ("m" in predicted)
    assert all(it.gender_source == "predicted" for it in unk)


def test_singer_query_is_more_like_this_singer(indexed):
    proj, cfg = indexed
    res = recommend(proj, cfg, singer="dan", k=3, mode="voice")
    assert res.query["kind"] == "singer" and res.query["n_songs"] == 6
    assert all(it.singer != "dan" for it in res.items)
    assert res.items[0].singer == "cid"  # the other male voice (same side of the gender axis)


def test_k_beyond_the_filtered_catalog_warns(indexed):
    proj, cfg = indexed
    res = recommend(proj, cfg, song_id="ann-song0", k=100)
    assert len(res.items) == 30
    assert any("only 30 songs" in w for w in res.warnings)


def test_errors(indexed):
    proj, cfg = indexed
    with pytest.raises(VocalError, match="not in the index"):
        recommend(proj, cfg, song_id="nobody-song9")
    with pytest.raises(VocalError, match="status 'too_short'"):
        recommend(proj, cfg, song_id="zed-short")
    with pytest.raises(VocalError, match="no indexed songs by singer"):
        recommend(proj, cfg, singer="nobody")
    with pytest.raises(VocalError, match="exactly one query"):
        recommend(proj, cfg, song_id="ann-song0", singer="ann")
    with pytest.raises(VocalError, match="--gender"):
        recommend(proj, cfg, song_id="ann-song0", gender="x")


def test_missing_and_stale_index(tmp_path):
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    with pytest.raises(MissingArtifact, match="vocal index"):
        recommend(proj, cfg, song_id="ann-song0")
    index.build_index(proj, cfg)
    emb = index.load_embeddings(proj)
    write_embeddings(proj, emb.ids, emb.timbre + 0.1, emb.melody)
    with pytest.raises(StaleArtifact, match="vocal index"):
        recommend(proj, cfg, song_id="ann-song0")


def _wav(path: Path, seconds: float = 5.0, f0: float = 220.0) -> Path:
    sf.write(path, voice(seconds, 16000, f0=f0), 16000)
    return path


def test_query_file_identical_to_a_catalog_song_comes_first(tmp_path, fake_models):
    from vocalcli.embed import Embedder
    from vocalcli.prepare import prepare_query

    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    wav = _wav(tmp_path / "q.wav")
    mel, _, track = prepare_query(wav, cfg, None)  # what prepare stored for this song (as float16)
    stored = mel.astype(np.float16)
    project_mod.save_npy(proj.mel_path("eve-song3"), stored)
    emb = index.load_embeddings(proj)
    t, m = emb.timbre.copy(), emb.melody.copy()
    row = emb.ids.index("eve-song3")
    t[row], m[row] = Embedder.from_project(proj).embed(stored, track)
    write_embeddings(proj, emb.ids, t, m)
    index.build_index(proj, cfg)
    res = recommend(proj, cfg, audio=wav, k=3)
    assert res.query["kind"] == "audio" and not res.filters["exclude_singer"]
    assert res.items[0].song_id == "eve-song3"
    assert res.items[0].timbre_sim == pytest.approx(1.0, abs=1e-3)


def test_short_query_file_warns(tmp_path, fake_models):
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    index.build_index(proj, cfg)
    res = recommend(proj, cfg, audio=_wav(tmp_path / "short.wav", seconds=2.0), k=2)
    assert len(res.items) == 2
    assert any("shorter than the window" in w for w in res.warnings)


def test_unreadable_query_file(tmp_path, fake_models):
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    index.build_index(proj, cfg)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(AudioError):
        recommend(proj, cfg, audio=bad)
    with pytest.raises(AudioError, match="does not exist"):
        recommend(proj, cfg, audio=tmp_path / "missing.wav")


def test_query_embedded_by_other_models_is_refused(tmp_path, fake_models, monkeypatch):
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    index.build_index(proj, cfg)
    orig = FakeEmbedder.from_project.__func__

    def drifted(cls, project, device="auto"):
        e = orig(cls, project, device)
        e.checkpoint_hashes = {"contrastive": "0000", "tcae": e.checkpoint_hashes["tcae"]}
        return e

    monkeypatch.setattr(FakeEmbedder, "from_project", classmethod(drifted))
    with pytest.raises(StaleArtifact, match="vocal index"):
        recommend(proj, cfg, audio=_wav(tmp_path / "q.wav"))


def test_query_file_that_is_a_catalog_song_is_that_song(tmp_path, fake_models, monkeypatch):
    """The catalog song's own file is not its own best match: its indexed vectors are the query, it is left
    out, and its singer is known. A changed file, or another MR removal asked for, is embedded as usual."""
    from vocalcli import catalog
    from vocalcli import recommend as rec

    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    songs = tmp_path / "songs"
    (songs / "ann").mkdir(parents=True)
    wav = _wav(songs / "ann" / "0.wav")
    project_mod.write_json(proj.prepare_info, {"songs_dir": str(songs)})
    rows = project_mod.read_csv(proj.catalog)
    st = wav.stat()
    for r in rows:
        if r["song_id"] == "ann-song0":
            r["size"], r["mtime_ns"] = str(st.st_size), str(st.st_mtime_ns)
    catalog.write(proj.catalog, rows)
    index.build_index(proj, cfg)
    embedded = []
    real_embed_file = rec.embed_file
    monkeypatch.setattr(rec, "embed_file", lambda *a, **k: embedded.append(a[2]) or real_embed_file(*a, **k))

    res = recommend(proj, cfg, audio=wav, k=10, mode="voice")
    assert not embedded
    assert res.query["song_id"] == "ann-song0" and res.query["singer"] == "ann"
    ids = [it.song_id for it in res.items]
    assert "ann-song0" not in ids and len(ids) == 10
    same = recommend(proj, cfg, song_id="ann-song0", k=10, mode="voice", exclude_singer=False)
    assert ids == [it.song_id for it in same.items]
    other = recommend(proj, cfg, audio=wav, k=10, exclude_singer=True)
    assert other.items and all(singer_of(proj)[it.song_id] != "ann" for it in other.items)
    assert not other.warnings

    # asked for another MR removal: embedded from the audio
    assert "song_id" not in recommend(proj, cfg, audio=wav, k=3, separate="none").query
    # changed since prepare: embedded from the audio, and the catalog song may come back
    _wav(wav, seconds=6.0)
    res = recommend(proj, cfg, audio=wav, k=3)
    assert "song_id" not in res.query and len(embedded) == 2


def test_song_query_by_title_or_singer_and_title(tmp_path):
    """--song-id takes what people know: SINGER/TITLE, or a title only one song has; a shared title, or a
    miss, says how to name the song."""
    from vocalcli import catalog

    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    rows = project_mod.read_csv(proj.catalog)
    for r in rows:
        if r["song_id"] in ("ann-song0", "bea-song0"):
            r["title"] = "Morning"  # one title, two singers
        if r["song_id"] == "cid-song2":
            r["title"] = "Evening"
    catalog.write(proj.catalog, rows)
    index.build_index(proj, cfg)
    by_id = [it.song_id for it in recommend(proj, cfg, song_id="ann-song0", k=5).items]
    assert [it.song_id for it in recommend(proj, cfg, song_id="ann/Morning", k=5).items] == by_id
    res = recommend(proj, cfg, song_id="Evening", k=3)
    assert res.query["what"] == "cid-song2" and res.query["singer"] == "cid"
    with pytest.raises(VocalError, match=r"2 indexed songs are titled 'Morning' \(ann/Morning, bea/Morning\)"):
        recommend(proj, cfg, song_id="Morning")
    with pytest.raises(VocalError, match=r"not in the index .*did you mean 'ann-song0'"):
        recommend(proj, cfg, song_id="ann-sng0")
