"""The timbre encoder's band-robust training: borrowed residues and singer-label positives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from model_fixtures import make_project, tiny_config

from vocalcli import catalog, data, training, transforms
from vocalcli import config as config_mod
from vocalcli import project as project_mod
from vocalcli.config import TimbreConfig

torch.set_num_threads(1)
CPU = torch.device("cpu")


def with_residues(proj: project_mod.Project) -> project_mod.Project:
    """Give every ok song a residue mel (its own mel flipped in frequency, quieter) and list it."""
    rows = project_mod.read_csv(proj.catalog)
    for r in rows:
        if r["status"] == "ok":
            mel = np.load(proj.root / r["mel"]).astype(np.float32)
            project_mod.save_npy(proj.residue_path(r["song_id"]), (mel[::-1] - 2).astype(np.float16))
            r["residue"] = proj.residue_path(r["song_id"]).relative_to(proj.root).as_posix()
    catalog.write(proj.catalog, rows)
    return proj


@pytest.fixture(scope="module")
def proj(tmp_path_factory):
    return with_residues(make_project(tmp_path_factory.mktemp("res") / "p"))


def test_add_residue_adds_powers():
    x = torch.randn(3, 4, 5)
    out = transforms.add_residue(x, x.clone(), torch.tensor([-math.inf, 0.0, 10 * math.log10(3.0)]))
    assert torch.equal(out[0], x[0])  # -inf dB: no residue
    assert torch.allclose(out[1], x[1] + math.log(2.0), atol=1e-5)  # equal powers: x2
    assert torch.allclose(out[2], x[2] + math.log(4.0), atol=1e-5)  # +4.8 dB = x3 power, +1


def test_add_reverb_adds_a_decaying_tail_and_dry_is_unchanged():
    x = torch.full((2, 3, 80), -30.0)
    x[:, :, 10] = 0.0  # one click
    out = transforms.add_reverb(x, torch.tensor([0.5, 0.5]), torch.tensor([-6.0, -math.inf]), 62.5)
    assert torch.allclose(out[1], x[1])
    tail = out[0, 0, 11:40]
    assert (tail[1:] < tail[:-1]).all() and tail[0] > -30  # decays after the click
    flat = transforms.add_reverb(torch.full((1, 3, 80), -30.0), torch.tensor([0.5]), torch.tensor([-6.0]), 62.5)
    assert torch.allclose(out[0, :, :10], flat[0, :, :10], atol=1e-4)  # causal: the click changes nothing before it


def _plan(bank, n, **kw):
    res = data.MelBank(bank.songs)
    return data.ResiduePlan(res, np.arange(n), kw.get("none_p", 0.25), (-12.0, 0.0), kw.get("negatives", "none"))


def test_residues_come_from_other_songs_and_leave_the_crops_alone(proj):
    songs = data.split_songs(proj, "train")
    bank = data.MelBank(songs)
    order = data.epoch_order(len(songs), 4, 6, seed=0, epoch=0)
    plain = data.CropBatches(bank, order, 40, 2, seed=0, epoch=0)
    for negatives in ("none", "shared", "own"):
        ds = data.CropBatches(bank, order, 40, 2, seed=0, epoch=0,
                              residues=_plan(bank, len(songs), negatives=negatives), residue_length=30)
        assert np.array_equal(ds.starts, plain.starts)  # own random stream: the crops do not change
        assert (ds.donors != order[:, None, :]).all()  # never a crop's own song's residue
        b = ds.batch(2)
        assert b["residues"].shape == (2, 4, 48, 30) and b["residue_db"].shape == (2, 4)
        assert torch.equal(b["views"], plain.batch(2)["views"])
        db = ds.residue_db[np.isfinite(ds.residue_db)]
        assert db.min() >= -12 and db.max() <= 0 and np.isinf(ds.residue_db).any()
        prev = {"shared": np.roll(ds.donors[:, 0], 1, axis=1), "own": np.roll(order, 1, axis=1)}.get(negatives)
        if prev is not None:  # crop i's key carries crop i-1's band, unless that is crop i's own song
            same = ds.donors[:, 1] == prev
            assert (same | (prev == order)).all() and same.mean() > 0.5
    off = data.CropBatches(bank, order, 40, 2, seed=0, epoch=0, residues=_plan(bank, len(songs), none_p=1.0))
    assert np.isinf(off.residue_db).all()


def test_signature_groups_are_mutual_nearest_neighbours():
    from vocalcli.cepstral import neighbour_groups

    x = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99], [0.75, 0.66]])
    # 0 and 1 are each other's nearest, as are 2 and 3; 4's nearest (1) prefers 0: 4 stays alone
    assert neighbour_groups(x).tolist() == [0, 0, 1, 1, 2]
    assert neighbour_groups(x[:1]).tolist() == [0]


def test_signature_positives_pair_mutual_neighbours(proj):
    from vocalcli import cepstral

    songs = data.split_songs(proj, "train")
    bank = data.MelBank(songs)
    groups = training.positive_groups(songs, bank, "signature", TimbreConfig())
    sig = np.stack([cepstral.song_signature(np.asarray(bank.mel(i), np.float32), TimbreConfig())
                    for i in range(len(songs))])
    sim = sig @ sig.T
    np.fill_diagonal(sim, -np.inf)
    nn = sim.argmax(axis=1)
    sizes = np.bincount(groups)
    assert sizes.max() == 2 and set(sizes) <= {1, 2}
    for i in range(len(songs)):  # paired exactly with its mutual nearest neighbour
        assert (sizes[groups[i]] == 2) == (nn[nn[i]] == i)


def test_singer_positives_come_from_another_song_of_the_singer(proj):
    songs = data.split_songs(proj, "train")
    bank = data.MelBank(songs)
    groups = np.array([sorted({s.singer for s in songs}).index(s.singer) for s in songs])
    order = data.epoch_order(len(songs), 4, 5, seed=0, epoch=0)
    ds = data.CropBatches(bank, order, 40, 2, seed=0, epoch=0, groups=groups)
    pos = ds.positive_songs
    assert (groups[pos] == groups[order]).all() and (pos != order).all()
    assert torch.equal(ds.batch(1)["views"][1, 0], torch.from_numpy(bank.crops(pos[1, :1], ds.starts[1, 1, :1], 40)[0]))


@pytest.mark.parametrize("over", [{}, {"contrastive.positives": "singer"}, {"contrastive.positives": "signature"},
                                  {"contrastive.residue_negatives": "own"},
                                  {"contrastive.reverb_none": 0.5}])
def test_contrastive_trains_with_residues(proj, over):
    cfg = config_mod.override(tiny_config(epochs=1, steps_per_epoch=2), over)
    task = training.ContrastiveTask(proj, cfg, CPU)
    assert task.residues is not None and not task.notes
    r = training.fit(task, cfg, CPU, checkpoints=None, run_root=None)
    assert np.isfinite(r.metrics["train_loss"])


def test_without_stored_residues_training_says_so(tmp_path):
    proj = make_project(tmp_path / "p")  # prepared with --separate none: no residues
    assert not training.ContrastiveTask(proj, tiny_config(), CPU).notes  # the default: none asked for
    asked = config_mod.override(tiny_config(), {"prepare.residue": True})
    task = training.ContrastiveTask(proj, asked, CPU)
    assert task.residues is None and "no residues" in task.notes[0]
    cfg = config_mod.override(tiny_config(), {"contrastive.residue_none": 1.0})
    assert not training.ContrastiveTask(proj, cfg, CPU).notes  # residues off: nothing to say


def test_band_input_norm_ignores_a_steady_colouring():
    from vocalcli.models.encoder import EncoderConfig, TimbreEncoder

    torch.manual_seed(0)
    x = torch.randn(2, 48, 64)
    colour = torch.linspace(-3, 3, 48)[None, :, None]  # the same offset per band all crop long
    for norm, invariant in (("band", True), ("crop", False)):
        enc = TimbreEncoder(EncoderConfig(n_mels=48, channels=4, blocks=2, embedding_dim=8, time_pool=2,
                                          input_norm=norm, time_kernel=1)).eval()
        with torch.no_grad():
            assert torch.allclose(enc(x), enc(x + colour), atol=1e-5) == invariant
            assert torch.allclose(enc(x), enc(x + 5.0), atol=1e-5)  # loudness: ignored by both
    old = {"n_mels": 48, "channels": 4, "blocks": 2, "embedding_dim": 8, "time_pool": 2}  # before input_norm
    assert EncoderConfig.from_checkpoint(old).input_norm == "crop"
