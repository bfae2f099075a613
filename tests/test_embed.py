"""Embedder / embed_project / load_embeddings: the API other code depends on."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from model_fixtures import make_project, tiny_config

from vocalcli import catalog, cepstral, training
from vocalcli import config as config_mod
from vocalcli import embed as embed_mod
from vocalcli import project as project_mod
from vocalcli.embed import Embedder, embed_project, load_embeddings
from vocalcli.errors import MissingArtifact, StaleArtifact

torch.set_num_threads(1)
CPU = torch.device("cpu")


def _trained(root, seed=0):
    cfg = tiny_config(epochs=1, steps_per_epoch=2)
    cfg.tcae.train.epochs, cfg.tcae.train.steps_per_epoch, cfg.seed = 1, 2, seed
    p = make_project(root, cfg)
    training.train_contrastive(p, cfg, CPU)
    training.train_tcae(p, cfg, CPU)
    return p, cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return _trained(tmp_path_factory.mktemp("embed") / "p")


def test_missing_checkpoints_name_the_training_commands(tmp_path):
    p = make_project(tmp_path / "p")
    with pytest.raises(MissingArtifact, match="vocal train-contrastive"):
        Embedder.from_project(p, "cpu")
    with pytest.raises(MissingArtifact, match="vocal embed"):
        load_embeddings(p)


def test_embed_one_mel_any_length(trained):
    p, cfg = trained
    emb = Embedder.from_project(p, "cpu")
    assert set(emb.checkpoint_hashes) == {"contrastive", "tcae"}
    mel = np.load(p.mel_path("s0_0"))
    for frames in (10, emb.crop, mel.shape[1]):  # shorter than a crop is padded
        t, m = emb.embed(mel[:, :frames])
        assert t.dtype == m.dtype == np.float32 and t.ndim == m.ndim == 1
        assert np.linalg.norm(t) == pytest.approx(1, abs=1e-5) and np.linalg.norm(m) == pytest.approx(1, abs=1e-5)
    t1, m1 = emb.embed(mel)
    t2, m2 = emb.embed(mel.astype(np.float32))
    assert np.allclose(t1, t2) and np.allclose(m1, m2)  # deterministic, dtype-agnostic
    with pytest.raises(ValueError):
        emb.embed(np.zeros((12, 100), np.float32))


def test_embed_project_covers_every_ok_song_and_detects_staleness(trained):
    p, cfg = trained
    summary = embed_project(p, cfg, device="cpu")
    ok = [r["song_id"] for r in project_mod.read_csv(p.catalog) if r["status"] == "ok"]
    assert summary["n"] == len(ok) == 20 and not summary["failed"]  # 4 of them are outside balanced.csv
    e = load_embeddings(p)
    n_sig = cfg.timbre.cepstra * (cfg.timbre.cepstra - 1) // 2
    assert e.ids == ok and e.timbre.shape == (20, 16 + n_sig) and e.timbre.dtype == np.float32
    assert e.parts["encoder"].shape == (20, 16) and e.parts["cepstral"].shape == (20, n_sig)
    # the signature enters the timbre vector normalised within singers, learned from this catalog's folders
    singers = [r["singer"] for r in project_mod.read_csv(p.catalog) if r["status"] == "ok"]
    white = embed_mod.load_whitening(p)
    want = cepstral.within_singer(e.parts["cepstral"], singers, cfg.timbre.within_singer_shrink)
    assert white is not None and white.singers == len(set(singers)) == e.meta["whitening"]["singers"]
    np.testing.assert_allclose(white.transform, want.transform, atol=1e-9)
    np.testing.assert_allclose(e.timbre, cepstral.fuse(e.parts["encoder"], white.apply(e.parts["cepstral"]),
                                                       cfg.timbre), atol=1e-6)
    # a file embedded later (recommend, classify-gender predict) is normalised the same way
    t, _ = Embedder.from_project(p, "cpu").embed(np.load(p.mel_path(ok[5])))
    np.testing.assert_allclose(t, e.timbre[5], atol=1e-5)
    assert e.melody.shape[0] == 20 and np.allclose(np.linalg.norm(e.melody, axis=1), 1, atol=1e-5)
    # the melody vector joins the latent's profile and the sung pitch's (read from pitch/), weighted
    lat, pit = e.parts["melody_tcae"], e.parts["melody_pitch"]
    assert lat.shape == pit.shape == (20, 255) and np.allclose(np.linalg.norm(pit, axis=1), 1, atol=1e-5)
    joined = np.hstack([lat, cfg.melody.pitch_weight * pit])
    np.testing.assert_allclose(e.melody, joined / np.linalg.norm(joined, axis=1, keepdims=True), atol=1e-6)
    _, m = Embedder.from_project(p, "cpu").embed(np.load(p.mel_path(ok[5])), np.load(p.pitch_path(ok[5])))
    np.testing.assert_allclose(m, e.melody[5], atol=1e-5)
    assert e.meta["checkpoints"] == Embedder.from_project(p, "cpu").checkpoint_hashes
    ids = project_mod.read_csv(p.embeddings / "ids.csv")
    assert ids[3] == {"row": "3", "song_id": ok[3]}
    # a new best.pt makes the embeddings stale
    cfg.tcae.train.epochs = 2
    training.train_tcae(p, cfg, CPU)
    with pytest.raises(StaleArtifact, match="vocal embed"):
        load_embeddings(p)
    embed_project(p, cfg, device="cpu")
    assert load_embeddings(p).meta["n"] == 20
    # so does another timbre join in vocal.yaml, and another way of finding the melody's beat
    for changed, match in (
            (dataclasses.replace(cfg, timbre=dataclasses.replace(cfg.timbre, cepstral_weight=0.0)), "timbre settings"),
            (dataclasses.replace(cfg, melody=dataclasses.replace(cfg.melody, tempo_prior_bpm=120.0)),
             "melody settings.*vocal embed"),
            (dataclasses.replace(cfg, melody=dataclasses.replace(cfg.melody, pitch_weight=1.0)),
             "melody settings.*vocal embed")):
        project_mod.write_text(p.config_path, config_mod.to_yaml(changed))
        try:
            with pytest.raises(StaleArtifact, match=match):
                load_embeddings(p)
        finally:
            project_mod.write_text(p.config_path, config_mod.to_yaml(cfg))


def test_within_singer_turns_down_what_varies_inside_a_singer():
    """Songs of a singer differ along a shared nuisance direction (band, register) far more than singers
    differ: plain cosine then finds another singer, the normalisation learned on *other* singers does not."""
    rng = np.random.default_rng(0)
    d, nuisance, voice = 6, np.eye(6)[0], np.eye(6)[1:]

    def songs(singers: int, per: int) -> tuple[np.ndarray, list[str]]:
        x, who = [], []
        for s in range(singers):
            centre = 3.0 * np.ones(d) + 0.3 * rng.normal(size=5) @ voice
            for _ in range(per):
                x.append(centre + 3.0 * rng.normal() * nuisance + 0.005 * rng.normal(size=d))
                who.append(f"s{s}")
        return np.array(x), who

    from vocalcli.evaluate import loo_top1

    train_x, train_who = songs(8, 5)
    test_x, test_who = songs(6, 5)
    white = cepstral.within_singer(train_x, train_who, shrink=0.001)
    assert white is not None and (white.singers, white.songs) == (8, 40)
    assert loo_top1(test_x, test_who) < 0.6
    assert loo_top1(white.apply(test_x), test_who) > 0.9
    out = white.apply(test_x[0])
    assert out.shape == (d,) and out.dtype == np.float32 and np.linalg.norm(out) == pytest.approx(1, abs=1e-6)
    # shrink 1: nothing weighed, only centred
    flat = cepstral.within_singer(train_x, train_who, shrink=1.0)
    np.testing.assert_allclose(flat.transform, flat.transform[0, 0] * np.eye(d), atol=1e-12)


def test_a_tampered_normalisation_is_refused_and_off_means_plain_cosine(tmp_path):
    p, cfg = _trained(tmp_path / "p")
    embed_project(p, cfg, device="cpu")
    path = p.embeddings / embed_mod.WHITENING
    a = np.load(path)
    project_mod.save_npy(path, a * 2.0)  # not the file meta.json recorded
    with pytest.raises(StaleArtifact, match="vocal embed"):
        Embedder.from_project(p, "cpu")
    off = dataclasses.replace(cfg, timbre=dataclasses.replace(cfg.timbre, within_singer=False))
    project_mod.write_text(p.config_path, config_mod.to_yaml(off))
    embed_project(p, off, device="cpu")
    e = load_embeddings(p)
    assert e.meta["whitening"] is None and Embedder.from_project(p, "cpu").whitening is None
    np.testing.assert_allclose(e.timbre, cepstral.fuse(e.parts["encoder"], e.parts["cepstral"], off.timbre),
                               atol=1e-6)


def test_within_singer_needs_two_singers_with_two_songs():
    x = np.random.default_rng(1).normal(size=(5, 4))
    assert cepstral.within_singer(x, ["a", "a", "b", "", ""]) is None  # unknown singers teach nothing
    assert cepstral.within_singer(x, ["a", "a", "b", "b", ""]).songs == 4
    with pytest.raises(ValueError, match="5 signatures but 4 singers"):
        cepstral.within_singer(x, ["a", "a", "b", "b"])


def _dct_ii(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] orthonormal DCT-II rows, written out from the definition."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return m


def test_the_signature_cepstrum_is_the_orthonormal_dct_ii():
    """cepstral.signature takes scipy.fft.dct(norm='ortho') of the mel: the textbook DCT-II, orthonormal."""
    from scipy.fft import dct

    mel = np.random.default_rng(1).normal(size=(48, 30))
    np.testing.assert_allclose(dct(mel, type=2, norm="ortho", axis=0)[:13], _dct_ii(48, 13) @ mel, atol=1e-12)
    np.testing.assert_allclose(_dct_ii(48, 48) @ _dct_ii(48, 48).T, np.eye(48), atol=1e-12)


def test_songs_embedded_together_equal_one_at_a_time(trained, tmp_path):
    p, cfg = trained
    emb = Embedder.from_project(p, "cpu")
    ok = [r["song_id"] for r in project_mod.read_csv(p.catalog) if r["status"] == "ok"]
    mels = [np.load(p.mel_path(s)) for s in ok[:5]]
    mels[2] = mels[2][:, :40]  # another length, shorter than a crop: its own TCAE pass, padded
    many = emb.embed_many(mels)
    for i, mel in enumerate(mels):
        one = emb.embed_parts(mel)
        for k in one:
            np.testing.assert_allclose(many[k][i], one[k], atol=1e-5, err_msg=k)
    # embed_project in batches of 3 across a broken mel: same rows as one song per batch, the bad one listed
    ref = embed_project(p, cfg, device="cpu", batch=1)
    ref_parts = load_embeddings(p).parts
    bad = p.mel_path(ok[4])
    keep = bad.read_bytes()
    bad.write_bytes(b"not a numpy file")
    try:
        got = embed_project(p, cfg, device="cpu", batch=3)
        e = load_embeddings(p)
    finally:
        bad.write_bytes(keep)
    assert ref["n"] == 20 and got["n"] == 19 and [f["song_id"] for f in got["failed"]] == [ok[4]]
    assert e.ids == [s for s in ok if s != ok[4]]
    for k in ("encoder", "cepstral"):  # per song; the timbre vector's normalisation learns from the 19 songs
        np.testing.assert_allclose(e.parts[k], np.delete(ref_parts[k], 4, axis=0), atol=1e-5)


def test_cepstral_signature_ignores_offset_and_scale_of_each_coefficient():
    """What a stationary accompaniment residue does to the cepstrum (shift and scale each coefficient)
    leaves the signature unchanged; changing how coefficients move together does not."""
    rng = np.random.default_rng(0)
    mel = rng.normal(size=(48, 400)).cumsum(axis=1) * 0.1
    d = _dct_ii(48, 48)
    c = d @ mel
    coloured = d.T @ (c * rng.uniform(0.5, 2.0, size=(48, 1)) + rng.normal(size=(48, 1)) * 3)  # d is orthonormal
    sig = cepstral.signature(mel)
    assert sig.shape == (78,) and np.isclose(np.linalg.norm(sig), 1.0)
    np.testing.assert_allclose(cepstral.signature(coloured), sig, atol=1e-5)
    mixed = d.T @ np.vstack([c[:1], c[1:2] + c[2:3], c[2:]])  # coefficient 1 now follows coefficient 2
    assert np.abs(cepstral.signature(mixed) - sig).max() > 0.05
    assert np.all(cepstral.signature(np.zeros((48, 50))) == 0)  # a constant mel: no correlation to see
    with pytest.raises(ValueError):
        cepstral.signature(mel[:10], 13)


def test_signature_of_the_loudest_frames_ignores_what_fills_the_rests():
    """Where the voice rests, a vocal estimate is leftover band; with loud_fraction the signature is the
    voice's alone, whatever fills the rests (and a louder voice does not change it)."""
    rng = np.random.default_rng(1)
    d = _dct_ii(48, 48)
    voice = d.T @ (rng.normal(size=(48, 1)) * 2 + rng.normal(size=(48, 200)).cumsum(axis=1) * 0.05) + 5.0
    # quieter bands whose coefficients move together in their own ways
    rests = [d.T @ (rng.normal(size=(48, 48)) @ rng.normal(size=(48, 200)).cumsum(axis=1) * 0.02) + 1.0
             for _ in range(2)]
    songs = [np.hstack([voice, r]) for r in rests]
    whole = [cepstral.signature(s) for s in songs]
    assert np.abs(whole[0] - whole[1]).max() > 0.05  # the rests change today's signature
    loud = [cepstral.signature(s, loud_fraction=0.5) for s in songs]
    np.testing.assert_allclose(loud[0], cepstral.signature(voice), atol=1e-6)
    np.testing.assert_allclose(loud[1], loud[0], atol=1e-6)
    # smoothing keeps the loud/quiet split and the invariance to each coefficient's offset and scale
    sm = cepstral.signature(songs[0], loud_fraction=0.5, smooth_frames=8)
    assert sm.shape == (78,) and np.isclose(np.linalg.norm(sm), 1.0)
    np.testing.assert_allclose(cepstral.signature(songs[0] * 1.5 + 2, loud_fraction=0.5, smooth_frames=8), sm,
                               atol=1e-5)
    assert cepstral.signature(songs[0][:, :3], smooth_frames=16).shape == (78,)  # shorter than the window


def test_fuse_weights_the_parts():
    from vocalcli.config import TimbreConfig

    e, s = np.array([3.0, 4.0]), np.array([0.0, 0.0, 2.0])
    np.testing.assert_allclose(cepstral.fuse(e, s, TimbreConfig(encoder_weight=1, cepstral_weight=0)),
                               [0.6, 0.8, 0, 0, 0], atol=1e-7)
    v = cepstral.fuse(e, s, TimbreConfig(encoder_weight=1, cepstral_weight=1))
    np.testing.assert_allclose(v, np.array([0.6, 0.8, 0, 0, 1.0]) / np.sqrt(2), atol=1e-7)
    rows = cepstral.fuse(np.stack([e, e]), np.stack([s, s]), TimbreConfig())
    assert rows.shape == (2, 5) and np.allclose(np.linalg.norm(rows, axis=1), 1)


def test_same_seed_same_embeddings(tmp_path):
    a, _ = _trained(tmp_path / "a")
    b, _ = _trained(tmp_path / "b")
    ea, eb = Embedder.from_project(a, "cpu"), Embedder.from_project(b, "cpu")
    mel = np.load(a.mel_path("s1_2"))
    ta, ma = ea.embed(mel)
    tb, mb = eb.embed(mel)
    assert np.array_equal(ta, tb) and np.array_equal(ma, mb)


def test_songs_without_an_f0_track_are_refused_unless_the_pitch_part_is_off(trained, tmp_path):
    """A project prepared before pitch/ existed: embed says to rerun prepare and changes nothing; with
    melody.pitch_weight 0 the melody vector is the latent's profile alone."""
    p, cfg = trained
    q = project_mod.Project(tmp_path / "old")
    shutil.copytree(p.root, q.root)
    rows = project_mod.read_csv(q.catalog)
    catalog.write(q.catalog, [{**r, "pitch": ""} for r in rows])
    before = sorted(x.name for x in q.embeddings.glob("*")) if q.embeddings.exists() else []
    with pytest.raises(MissingArtifact, match="no f0 track.*vocal prepare SONGS_DIR"):
        embed_project(q, cfg, device="cpu")
    assert (sorted(x.name for x in q.embeddings.glob("*")) if q.embeddings.exists() else []) == before
    off = dataclasses.replace(cfg, melody=dataclasses.replace(cfg.melody, pitch_weight=0.0))
    embed_project(q, off, device="cpu")
    melody = np.load(q.embeddings / "melody.npy")
    np.testing.assert_allclose(melody, np.load(q.embeddings / "melody_tcae.npy"), atol=1e-6)
    assert not np.load(q.embeddings / "melody_pitch.npy").any()
