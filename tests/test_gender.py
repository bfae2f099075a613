"""Gender: labels, split by singer, metrics, checkpoint round trip, predictions for unlabelled songs."""

from __future__ import annotations

import numpy as np
import pytest
from test_index import SINGERS, make_use_project

from vocalcli import catalog, checkpoint, gender
from vocalcli import project as project_mod
from vocalcli.errors import MissingArtifact, StaleArtifact, VocalError


def test_normalise_labels():
    assert [catalog.normalise_gender(x) for x in ("female", "F", " Woman ", "male", "m", "man")] == list("fffmmm")
    assert all(catalog.normalise_gender(x) is None for x in ("", None, "x"))


def test_binary_report_hand_values():
    rep = gender.binary_report(list("ffffmm"), list("ffmmmf"))
    # f: 2 of 4 right, m: 1 of 2 right -> balanced accuracy (0.5 + 0.5) / 2
    assert rep["recall"] == {"f": 0.5, "m": 0.5}
    assert rep["balanced_accuracy"] == 0.5
    assert rep["confusion"]["matrix"] == [[2, 2], [1, 1]]
    assert gender.binary_report(list("fff"), list("ffm"))["recall"]["m"] is None


def test_mel_stats_shape_and_values():
    mel = np.array([[1.0, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(gender.mel_stats(mel), [2.0, 2.0, 1.0, 0.0])


def test_split_is_by_singer_and_stratified():
    labels = {f"f{i}": "f" for i in range(4)} | {f"m{i}": "m" for i in range(8)}
    train, held = gender.split_singers(labels, 0.25, seed=0)
    assert not set(train) & set(held) and set(train) | set(held) == set(labels)
    assert sum(labels[s] == "f" for s in held) == 1 and sum(labels[s] == "m" for s in held) == 2
    assert gender.split_singers(labels, 0.25, seed=0) == (train, held)
    with pytest.raises(VocalError, match="at least 2 labelled singers"):
        gender.split_singers({"a": "f", "b": "m", "c": "m"}, 0.25, 0)


def test_train_compares_features_and_saves_a_checkpoint(tmp_path):
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    rep = gender.train(proj, cfg, features="timbre")
    assert rep["features"] == "timbre" and set(rep["compare"]) == {"pitch_cepstral", "pitch", "timbre", "mel"}
    assert not set(rep["train_singers"]) & set(rep["heldout_singers"])
    assert "unk" not in rep["train_singers"] + rep["heldout_singers"]  # unlabelled: never a class
    assert rep["unlabelled_songs"] == 6 and rep["n_songs"] == 30
    for m in rep["compare"].values():
        assert 0.0 <= m["balanced_accuracy"] <= 1.0
    assert rep["compare"]["timbre"]["balanced_accuracy"] == 1.0  # genders are far apart in the fake data
    ck = checkpoint.load(proj.checkpoint("gender"), "gender")  # weights_only=True inside
    assert ck["model_config"]["classes"] == ["f", "m"] and ck["model_config"]["features"] == "timbre"
    model = gender.load_model(proj)
    assert model.classes == ("f", "m") and model.meta["heldout_singers"] == rep["heldout_singers"]


def test_pitch_cepstral_features_are_the_default_and_need_prepare_columns(tmp_path):
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    rep = gender.train(proj, cfg)
    assert rep["features"] == "pitch_cepstral" and rep["compare"]["pitch"]["balanced_accuracy"] == 1.0
    assert rep["compare"]["pitch_cepstral"]["balanced_accuracy"] == 1.0
    model = gender.load_model(proj)
    assert len(model.coef) == 1 + 78
    assert {p["gender"] for p in gender.predict_catalog(proj)} <= {"f", "m"}
    rows = project_mod.read_csv(proj.catalog)
    for r in rows:
        r["f0_hz"] = r["f0_p75_hz"] = ""
    catalog.write(proj.catalog, rows)
    with pytest.raises(VocalError, match="vocal prepare"):
        gender.train(proj, cfg)


def test_pitch_cepstral_weighs_the_register_like_the_whole_signature():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1 + 78)) * rng.uniform(0.5, 3, size=79)
    y = ["f"] * 20 + ["m"] * 20
    plain, joined = gender.fit(x, y, 1.0, "mel"), gender.fit(x, y, 1.0, "pitch_cepstral")
    np.testing.assert_allclose(plain.scale / joined.scale, [np.sqrt(78)] + [1.0] * 78)
    assert np.all(gender.column_weights("pitch", 1) == 1.0)


def test_predictions_for_unlabelled_catalog_songs(tmp_path):
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    gender.train(proj, cfg, features="mel")
    preds = gender.predict_catalog(proj)
    assert {p["singer"] for p in preds} == {"unk"} and len(preds) == 6
    assert all(p["gender"] in ("f", "m") and 0.5 <= p["probability"] <= 1.0 for p in preds)
    known = gender.song_genders(proj, ["ann-song0", "cid-song0", "unk-song0"])
    assert known["ann-song0"] == ("f", "catalog") and known["cid-song0"] == ("m", "catalog")
    assert known["unk-song0"][1] == "predicted"


def test_predict_before_training_names_the_command(tmp_path):
    proj = make_use_project(tmp_path / "p")
    with pytest.raises(MissingArtifact, match="vocal classify-gender train"):
        gender.predict_catalog(proj)


def test_retrained_encoder_makes_the_classifier_stale(tmp_path):
    proj = make_use_project(tmp_path / "p")
    gender.train(proj, proj.load_config(), features="timbre")
    project_mod.write_bytes(proj.checkpoint("contrastive"), b"retrained")
    with pytest.raises(StaleArtifact, match="vocal classify-gender train"):
        gender.load_model(proj)


def test_too_few_labelled_singers(tmp_path):
    proj = make_use_project(tmp_path / "p")
    rows = project_mod.read_csv(proj.catalog)
    for r in rows:
        if r["singer"] == "dan":
            r["gender"] = ""
    catalog.write(proj.catalog, rows)
    with pytest.raises(VocalError, match="m: 1"):
        gender.train(proj, proj.load_config())
    assert sum(1 for g in SINGERS.values() if catalog.normalise_gender(g)) == 5


def test_pool_by_singer_gives_each_song_its_singers_mean_decision():
    d = np.array([2.0, -0.5, 1.0, -3.0, -1.0])
    np.testing.assert_allclose(gender.pool_by_singer(d, ["a", "a", "a", "b", "b"]), [5 / 6] * 3 + [-2.0] * 2)
    # one low song of a male singer is outvoted by his other songs
    model = gender.GenderModel("pitch", ("f", "m"), np.zeros(1), np.ones(1), np.ones(1), 0.0)
    x = np.array([[2.0], [1.5], [-0.5], [-2.0], [-1.0]])
    assert model.predict(x)[0] == list("mmfff")
    labels, prob = model.predict(x, ["ed", "ed", "ed", "jo", "jo"])
    assert labels == list("mmmff") and prob[0] == prob[2]


def test_catalog_predictions_pool_over_every_song_of_a_singer(tmp_path):
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    gender.train(proj, cfg, features="mel")
    pooled = gender.predict_catalog(proj)
    assert len({(p["gender"], round(p["probability"], 9)) for p in pooled}) == 1  # 'unk' is one singer
    assert all(p["singer_songs"] == 6 for p in pooled)
    # asking for one song still pools over all six; without pooling it is classified alone
    one = gender.predict_catalog(proj, ["unk-song0"])
    assert [p["song_id"] for p in one] == ["unk-song0"] and one[0]["probability"] == pooled[0]["probability"]
    alone = gender.predict_catalog(proj, pool_singers=False)
    assert all(p["singer_songs"] == 1 for p in alone)
    per_song = {p["song_id"]: p["probability"] for p in alone}
    assert len(set(per_song.values())) > 1
