"""Evaluation metrics against hand-computed toys, and the report on the fake project."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_index import SONGS_PER_SINGER, make_use_project

from vocalcli import cepstral
from vocalcli import evaluate as ev
from vocalcli import project as project_mod
from vocalcli.errors import MissingArtifact


def test_average_precision_hand_values():
    assert ev.average_precision([True, False, True]) == pytest.approx((1 + 2 / 3) / 2)
    assert ev.average_precision([False, True]) == pytest.approx(0.5)
    assert np.isnan(ev.average_precision([False, False]))


def test_retrieval_map_hand_values():
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.7, 0.3]])
    # query 0 ranks 1 (b) before 2 (a): AP 0.5; query 1 (b) has no relevant item: skipped;
    # query 2 ranks 1 (b, cos .957) before 0 (a, cos .919): AP 0.5
    assert ev.retrieval_map(x, ["a", "b", "a"]) == pytest.approx(0.5)
    # same-group candidates removed: query 0 no longer sees 1 (its group) -> only 2, relevant: AP 1;
    # query 2 (other group) still ranks 1 before 0: AP 0.5 -> mean 0.75
    assert ev.retrieval_map(x, ["a", "b", "a"], groups=[0, 0, 1]) == pytest.approx(0.75)


def test_eer_hand_value():
    genuine, impostor = [0.9, 0.8, 0.4], [0.7, 0.3, 0.2]
    # at any threshold in (0.4, 0.7]: 1 of 3 genuine rejected, 1 of 3 impostors accepted
    assert ev.eer(genuine + impostor, [True] * 3 + [False] * 3) == pytest.approx(1 / 3)
    assert ev.eer([0.9, 0.1], [True, False]) == pytest.approx(0.0)


def test_verification_eer_on_pairs():
    x = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]])
    assert ev.verification_eer(x, ["a", "a", "b", "b"]) == pytest.approx(0.0)


def test_knn_and_probe_hand_values():
    train = np.array([[1.0, 0.0], [0.0, 1.0]])
    test = np.array([[0.9, 0.2], [0.2, 0.9], [0.8, 0.1]])
    assert ev.knn_top1(train, ["a", "b"], test, ["a", "b", "b"]) == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(20, 3)) + 5, rng.normal(size=(20, 3)) - 5
    acc = ev.probe_accuracy(np.vstack([xa, xb]), ["a"] * 20 + ["b"] * 20, np.array([[5.0, 5, 5], [-5, -5, -5]]),
                            ["a", "b"])
    assert acc == 1.0
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.6, 0.4]])
    # nearest others: 0->1 (a=a), 1->0 (a=a), 2->3 (b=b), 3->1 (b!=a)
    assert ev.loo_top1(x, ["a", "a", "b", "b"]) == pytest.approx(3 / 4)


def test_loso_gender_predicts_each_singer_from_the_others():
    x = np.array([[1.0], [1.1], [0.9], [-1.0], [-1.2], [-0.8]])
    rep = ev.loso_gender(x, list("fffmmm"), ["a", "a", "b", "c", "c", "d"])
    assert rep["balanced_accuracy"] == 1.0 and rep["confusion"]["matrix"] == [[3, 0], [0, 3]]


def test_loso_gender_pooled_by_singer_outvotes_a_stray_song():
    """Singer c sings one song high (register 0.5): alone it is called female, pooled with c's other
    songs it is not."""
    x = np.array([[1.0], [1.1], [0.9], [-1.0], [0.5], [-1.5], [-0.8], [1.2]])
    labels, singers = list("fffmmmmf"), ["a", "a", "b", "c", "c", "c", "d", "e"]
    per_song = ev.loso_gender(x, labels, singers)
    pooled = ev.loso_gender(x, labels, singers, pool_singers=True)
    assert per_song["recall"]["m"] == 0.75 and pooled["balanced_accuracy"] == 1.0


def test_chroma_2dftm_is_key_and_time_shift_invariant():
    rng = np.random.default_rng(0)
    c = rng.random((12, ev.CHROMA_PATCH))
    v = ev.chroma_2dftm(c)
    assert v.shape == (12 * ev.CHROMA_PATCH,) and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(ev.chroma_2dftm(np.roll(c, 5, axis=0)), v, atol=1e-6)  # transposed 5 semitones
    np.testing.assert_allclose(ev.chroma_2dftm(np.roll(c, 17, axis=1)), v, atol=1e-6)  # shifted in time


def test_mfcc_stats_shape():
    mel = np.random.default_rng(0).normal(size=(48, 100)).astype(np.float32) - 5
    assert ev.mfcc_stats(mel).shape == (2 * ev.N_MFCC,)


def test_loo_hits_per_query():
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.95, 0.05]])
    hits = ev.loo_hits(x, ["a", "a", "b", "b", "b"])
    # angles 0, 6.3, 90, 83.7, 3 degrees: rows 0 and 1 are nearest to 4 (b), row 4 to 0 (a)
    assert hits.tolist() == [False, False, True, True, False]
    assert ev.loo_top1(x, ["a", "a", "b", "b", "b"]) == pytest.approx(0.4)


def test_loo_split_into_seen_unseen_and_untrained_voices(tmp_path):
    proj = make_use_project(tmp_path / "p")
    rows = project_mod.read_csv(proj.balanced)
    held = rows[0]["singer"]
    for r in rows:
        if r["singer"] == held:
            r["split"] = "test"  # what `vocal balance --holdout` writes
    project_mod.write_csv(proj.balanced, rows, project_mod.BALANCED_FIELDS)
    rep = ev.evaluate(proj, proj.load_config())
    n_held = sum(r["singer"] == held for r in rows)
    assert rep["singer_id.n_loo_unseen"] == n_held and rep["singer_id.n_loo"] == len(rows)
    for suffix in ("", "_mfcc"):
        for kind in ("unseen", "seen", "untrained"):
            assert 0 <= rep[f"singer_id.loo_top1_{kind}{suffix}"] <= 1
    assert rep["singer_id.loo_top1_unseen"] == 1.0  # clustered fake voices

    meta_path = proj.embeddings / "meta.json"  # an encoder trained with singer-label positives
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "encoder_positives": "singer"}))
    rep = ev.evaluate(proj, proj.load_config())
    assert rep["singer_id.n_loo"] == sum(r["split"] != "train" for r in rows)
    assert any("singer labels" in n for n in rep["notes"])


def test_loo_relearns_the_signature_normalisation_without_the_query_singer(tmp_path):
    """The catalog's normalisation learned from every singer; leave-one-out must score each singer's songs
    with one learned from the others only, as a voice new to the catalog would be."""
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    d = proj.embeddings
    ids = [r["song_id"] for r in project_mod.read_csv(d / "ids.csv")]
    who = [r["singer"] for r in project_mod.read_csv(proj.catalog) if r["status"] == "ok"]
    rng = np.random.default_rng(3)
    enc = rng.normal(size=(len(ids), 16))
    sig = rng.normal(size=(len(ids), 10)) + np.array([3.0 * rng.normal() for _ in ids])[:, None] * np.eye(10)[0]
    white = cepstral.within_singer(sig, who, cfg.timbre.within_singer_shrink)
    project_mod.save_npy(d / "encoder.npy", enc.astype(np.float32))
    project_mod.save_npy(d / "cepstral.npy", sig.astype(np.float32))
    project_mod.save_npy(d / "timbre.npy", cepstral.fuse(enc, white.apply(sig), cfg.timbre))
    meta = json.loads((d / "meta.json").read_text())
    (d / "meta.json").write_text(json.dumps({**meta, "whitening": {"singers": white.singers, "songs": white.songs}}))
    rep = ev.evaluate(proj, cfg)

    balanced = {r["song_id"] for r in project_mod.read_csv(proj.balanced)}
    rows = [i for i, s in enumerate(ids) if s in balanced]
    lab = np.array(who)[rows]
    hits_t, hits_c = [], []
    for singer in sorted(set(lab)):
        w = cepstral.within_singer(sig[np.array(who) != singer], [x for x in who if x != singer], 0.1)
        mine = np.flatnonzero(lab == singer)
        hits_t += ev.loo_hits(cepstral.fuse(enc, w.apply(sig), cfg.timbre)[rows], lab, mine).tolist()
        hits_c += ev.loo_hits(w.apply(sig)[rows], lab, mine).tolist()
    assert rep["singer_id.loo_top1"] == pytest.approx(np.mean(hits_t))
    assert rep["singer_id.loo_top1_cepstral"] == pytest.approx(np.mean(hits_c))
    assert rep["singer_id.loo_top1_encoder"] == pytest.approx(ev.loo_hits(enc[rows], lab).mean())
    split = {r["song_id"]: r["split"] for r in project_mod.read_csv(proj.balanced)}
    test = np.array([split.get(s) == "test" for s in ids])  # test vs train: learned without the test songs
    train = np.array([split.get(s) == "train" for s in ids])
    w = cepstral.within_singer(sig[~test], [x for x, t in zip(who, test, strict=True) if not t], 0.1)
    t = cepstral.fuse(enc, w.apply(sig), cfg.timbre)
    lab_all = np.array(who)
    assert rep["singer_id.top1"] == pytest.approx(ev.knn_top1(t[train], lab_all[train], t[test], lab_all[test]))
    for key in ("encoder_within", "mfcc_within"):  # the same backend on the other vectors, for comparison
        assert 0 <= rep[f"singer_id.loo_top1_{key}"] <= 1 and f"singer_id.loo_top1_untrained_{key}" in rep


def test_report_has_every_key_and_is_written(tmp_path):
    proj = make_use_project(tmp_path / "p")
    rep = ev.evaluate(proj, proj.load_config())
    for key in ev.REQUIRED_KEYS:
        assert key in rep
    assert rep["melody.map"] is None and rep["melody.map_chroma"] is None
    assert rep["singer_id.n_test"] == 6 and rep["singer_id.n_train"] == 24
    assert rep["singer_id.top1"] == 1.0  # clustered fake voices
    assert rep["singer_id.n_loo"] == 36 and rep["singer_id.loo_top1"] == 1.0
    assert 0 <= rep["singer_id.loo_top1_mfcc"] <= 1
    assert 0 <= rep["singer_id.top1_mfcc"] <= 1 and 0 <= rep["singer_id.eer"] <= 1
    assert rep["gender.balanced_accuracy"] == 1.0 and rep["gender.balanced_accuracy_mfcc"] is not None
    assert rep["gender.pool_singers"] is True and rep["gender.balanced_accuracy_per_song"] == 1.0
    assert rep["index.recall_at_10"] >= 0.99
    assert any("melody-labels" in n for n in rep["notes"])
    on_disk = json.loads(open(rep["report"]).read())
    assert on_disk["singer_id.top1"] == rep["singer_id.top1"]


def test_melody_map_with_labels(tmp_path):
    proj = make_use_project(tmp_path / "p")
    rows = [r for r in project_mod.read_csv(proj.catalog) if r["status"] == "ok"]
    labels = tmp_path / "melodies.csv"
    project_mod.write_csv(labels, [{"source": r["source"], "melody": r["source"].split("/")[1][0]} for r in rows],
                          ["source", "melody"])
    rep = ev.evaluate(proj, proj.load_config(), labels)
    assert rep["melody.n_songs"] == 6 * SONGS_PER_SINGER
    assert rep["melody.map"] > 0.9  # melody embeddings cluster by melody in the fake data
    assert rep["melody.map_chroma"] is None  # no prepare.json: no audio to compute chroma from
    assert any("prepare.json" in n for n in rep["notes"])


def test_missing_balance_and_bad_labels(tmp_path):
    proj = make_use_project(tmp_path / "p")
    bad = tmp_path / "bad.csv"
    bad.write_text("file,id\na,b\n")
    from vocalcli.errors import VocalError

    with pytest.raises(VocalError, match="source,melody"):
        ev.evaluate(proj, proj.load_config(), bad)
    proj.balanced.unlink()
    with pytest.raises(MissingArtifact, match="vocal balance"):
        ev.evaluate(proj, proj.load_config())


def test_all_pairs_metrics_in_blocks_equal_the_whole_matrix(monkeypatch):
    """loo_top1 and retrieval_map score BLOCK queries at a time (bounded memory at 4,500 songs): the same
    numbers as from the whole similarity matrix, across block edges."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(23, 5))
    y = [f"s{i % 4}" for i in range(23)]
    groups = [i % 3 for i in range(23)]
    sim = ev.cosine_matrix(x, x)
    np.fill_diagonal(sim, -np.inf)
    whole_loo = float(np.mean([y[j] == y[i] for i, j in enumerate(sim.argmax(axis=1))]))
    whole = (ev.loo_top1(x, y), ev.retrieval_map(x, y), ev.retrieval_map(x, y, groups))
    monkeypatch.setattr(ev, "BLOCK", 5)
    assert whole[0] == pytest.approx(whole_loo)
    assert (ev.loo_top1(x, y), ev.retrieval_map(x, y), ev.retrieval_map(x, y, groups)) == pytest.approx(whole)
