"""fit(): learning, all 9 transformation roles, resume, config mismatch, determinism, run records."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from model_fixtures import make_project, tiny_config

from vocalcli import training
from vocalcli.device import resolve_device
from vocalcli.errors import CheckpointError, DeviceError

torch.set_num_threads(1)
CPU = torch.device("cpu")


def _cfg(**train):
    cfg = tiny_config()
    for sec in (cfg.contrastive.train, cfg.tcae.train):
        for k, v in train.items():
            setattr(sec, k, v)
    return cfg


@pytest.fixture(scope="module")
def proj(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("train") / "p")


def _state(task: str, proj) -> dict:
    from vocalcli import checkpoint

    return checkpoint.load(proj.checkpoint(task, "last"))["model"]


def test_lr_schedule_warmup_then_cosine():
    lrs = [training.lr_at(s, 100, 1.0, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False)) and lrs[-1] >= 0.1


def test_tcae_loss_decreases(proj):
    cfg = _cfg(epochs=8, steps_per_epoch=5, lr=5e-3)
    cfg.tcae.channels, cfg.tcae.latent_channels = 16, 8
    r = training.fit(training.TCAETask(proj, cfg, CPU), cfg, CPU, checkpoints=None, run_root=None)
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < 0.95 * losses[0], losses


def test_tcae_transposed_view_adds_its_term(proj):
    cfg = _cfg(epochs=1, steps_per_epoch=2)
    cfg.tcae.channels, cfg.tcae.latent_channels = 16, 8
    cfg.tcae.shift_semitones, cfg.tcae.shift_weight = 6.0, 1.0
    r = training.fit(training.TCAETask(proj, cfg, CPU), cfg, CPU, checkpoints=None, run_root=None)
    assert r.metrics["train_shift"] > 0 and np.isfinite(r.metrics["train_loss"])


def test_contrastive_loss_decreases(proj):
    cfg = _cfg(epochs=6, steps_per_epoch=3, lr=3e-3)
    cfg.contrastive.queue_size = 0  # constant N, so losses are comparable epoch to epoch
    torch.manual_seed(0)
    r = training.fit(training.ContrastiveTask(proj, cfg, CPU), cfg, CPU, checkpoints=None, run_root=None)
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < losses[0], losses
    assert r.history[-1]["train_n_candidates"] == 4 + 4 * 2  # in-batch (4) + two neg views per anchor
    assert r.history[-1]["train_ln_n"] == pytest.approx(np.log(12))


@pytest.mark.parametrize("ps", ["pos", "neg", "none"])
@pytest.mark.parametrize("ts", ["pos", "neg", "none"])
def test_all_nine_roles_run(proj, ps, ts):
    cfg = _cfg(epochs=1, steps_per_epoch=1)
    cfg.contrastive = dataclasses.replace(cfg.contrastive, pitch_shift=ps, time_stretch=ts)
    r = training.fit(training.ContrastiveTask(proj, cfg, CPU), cfg, CPU, checkpoints=None, run_root=None)
    n_views = [ps, ts].count("neg")
    assert r.history[0]["train_n_candidates"] == 4 + 4 * n_views
    assert np.isfinite(r.history[0]["train_loss"])


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    cfg = _cfg(epochs=3, steps_per_epoch=2)
    a = make_project(tmp_path / "a", cfg)
    b = make_project(tmp_path / "b", cfg)
    training.train_contrastive(a, cfg, CPU)

    calls = {"n": 0}

    def interrupt(advance=1, **_):  # dies in the middle of epoch 2 (after 3 of 6 steps)
        calls["n"] += advance if "total" not in _ else 0
        if calls["n"] >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train_contrastive(b, cfg, CPU, progress=interrupt)
    r = training.train_contrastive(b, cfg, CPU)
    assert r.resumed_from == 1 and r.epochs == 3 and r.step == 6
    sa, sb = _state("contrastive", a), _state("contrastive", b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # finished work is skipped: a rerun resumes at the end and trains nothing
    again = training.train_contrastive(b, cfg, CPU)
    assert again.resumed_from == 3 and not again.history


def test_resume_mismatch_says_what_differs(tmp_path):
    cfg = _cfg(epochs=1, steps_per_epoch=1)
    p = make_project(tmp_path / "p", cfg)
    training.train_tcae(p, cfg, CPU)
    changed = dataclasses.replace(cfg, tcae=dataclasses.replace(cfg.tcae, channels=16))
    with pytest.raises(CheckpointError, match=r"tcae\.channels: 8 -> 16"):
        training.train_tcae(p, changed, CPU, resume=True)
    notes = []
    r = training.train_tcae(p, changed, CPU, log=notes.append)  # default: start fresh, say why
    assert r.resumed_from is None and any("tcae.channels" in n for n in notes)


def test_run_records_metrics_and_config(proj):
    cfg = _cfg(epochs=1, steps_per_epoch=2)
    r = training.fit(training.TCAETask(proj, cfg, CPU), cfg, CPU, checkpoints=None,
                     run_root=proj.runs / "tcae")
    rows = [json.loads(x) for x in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [x["type"] for x in rows] == ["step", "step", "epoch"]
    assert "val_loss" in rows[-1] and rows[0]["samples_per_s"] > 0
    saved = json.loads((r.run_dir / "config.json").read_text())
    assert saved["config"]["tcae"]["channels"] == 8 and saved["model_config"]["channels"] == 8


def test_contrastive_validation_reports_knn_singer_accuracy(proj):
    cfg = _cfg(epochs=1, steps_per_epoch=1)
    r = training.fit(training.ContrastiveTask(proj, cfg, CPU), cfg, CPU, checkpoints=None, run_root=None)
    assert 0 <= r.metrics["val_singer_acc"] <= 1 and r.metrics["val_songs"] == 4


def test_zero_epochs_still_writes_a_usable_checkpoint(tmp_path):
    cfg = _cfg(epochs=0)
    p = make_project(tmp_path / "p", cfg)
    training.train_tcae(p, cfg, CPU)
    assert p.checkpoint("tcae", "best").exists() and p.checkpoint("tcae", "last").exists()


def test_gpu_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="CUDA was requested"):
        resolve_device("auto", gpu=True)
    with pytest.raises(DeviceError):
        resolve_device("cuda")
    assert resolve_device("cpu") == CPU


def test_a_setting_added_after_a_run_started_does_not_block_its_resume():
    """contrastive.blocks/time_pool joined vocal.yaml later: a last.pt without them resumes when they
    are at their defaults, and does not when they were changed."""
    from vocalcli import checkpoint
    from vocalcli.config import Config
    from vocalcli.training import _resume_key, _with_defaults

    cfg = Config()
    old = _resume_key(cfg, "contrastive")
    for k in ("blocks", "time_pool"):
        del old["contrastive"][k]
    filled = _with_defaults(old, _resume_key(Config(), "contrastive"))
    assert checkpoint.config_differences(filled, _resume_key(cfg, "contrastive")) == []
    cfg.contrastive.blocks = 3
    assert checkpoint.config_differences(filled, _resume_key(cfg, "contrastive")) == ["contrastive.blocks: 4 -> 3"]


def test_a_run_begun_before_loud_fraction_time_kernel_or_teacher_does_not_resume_under_their_defaults():
    """contrastive.loud_fraction joined with default 0.5 (runs begun before it read every frame),
    contrastive.time_kernel with 1 (before it, kernels spanned 3 frames) and contrastive.teacher_weight with
    0.5 (before it, no teacher), so a last.pt without them does not silently resume under the new
    defaults (the TCAE's key is left alone)."""
    from vocalcli import checkpoint
    from vocalcli.config import Config
    from vocalcli.training import _filled, _resume_key

    cfg = Config()
    old = _resume_key(cfg, "contrastive")
    for key, before, now in (("loud_fraction", 1.0, 0.5), ("time_kernel", 3, 1), ("teacher_weight", 0.0, 0.5)):
        del old["contrastive"][key]
        filled = _filled(old, "contrastive")
        assert checkpoint.config_differences(filled, _resume_key(cfg, "contrastive")) == [
            f"contrastive.{key}: {before} -> {now}"]
        setattr(cfg.contrastive, key, before)
        assert checkpoint.config_differences(filled, _resume_key(cfg, "contrastive")) == []
    tcae = _resume_key(cfg, "tcae")
    assert _filled(tcae, "tcae") == tcae


def test_schedule_grows_with_the_library_and_the_device():
    from vocalcli.config import Config

    c, t = Config().contrastive.train, Config().tcae.train
    # the seed's library: 3,150 training songs -> an epoch is one pass
    big = training.plan_for(c, 3150, "cpu")
    assert (big.steps_per_epoch, big.total, big.batch) == (98, 2940, 32)
    assert big.looks >= 29 and big.warmup == round(0.02 * 2940)
    assert training.plan_for(t, 3150, "cpu").steps_per_epoch == 393
    # docs/quality.md's 35 training songs: min_steps keeps the measured 120 / 600 steps, warm-up 20
    small_c, small_t = training.plan_for(c, 35, "cpu"), training.plan_for(t, 35, "cpu")
    assert (small_c.steps_per_epoch, small_c.total, small_c.warmup) == (4, 120, 20)
    assert (small_t.steps_per_epoch, small_t.total, small_t.warmup) == (10, 600, 20)
    # CUDA: 4x the batch (lr x 2), never more than the training songs, never below batch_size
    gpu = training.plan_for(c, 3150, "cuda")
    assert gpu.batch == 128 and gpu.lr == pytest.approx(2 * c.lr) and gpu.steps_per_epoch == 3150 // 128
    assert training.plan_for(c, 35, "cuda").batch == 35 and training.plan_for(c, 10, "cuda").batch == 32
    # an explicit steps_per_epoch is what it says (no floor)
    fixed = dataclasses.replace(c, steps_per_epoch=4)
    assert training.plan_for(fixed, 3150, "cpu").total == 120


def test_fit_says_its_plan_an_eta_and_warns_when_songs_go_unseen(proj):
    cfg = _cfg(epochs=2, steps_per_epoch=0)
    cfg.tcae.channels, cfg.tcae.latent_channels = 16, 8
    cfg.tcae.train.min_steps = 12  # 8 training songs / batch 4 = 2 steps an epoch -> lengthened to 6
    said: list[str] = []
    r = training.fit(training.TCAETask(proj, cfg, CPU), cfg, CPU, checkpoints=None, run_root=None,
                     log=said.append)
    assert r.step == 12 and r.plan.steps_per_epoch == 6
    assert said[0].startswith("tcae: 2 epochs x 6 steps of 4 crops = 12 steps")
    assert any("steps/s" in s and "for the remaining" in s for s in said), said
    cfg.tcae.train.steps_per_epoch, cfg.tcae.train.epochs, cfg.tcae.train.batch_size = 1, 1, 2
    said.clear()
    r = training.fit(training.TCAETask(proj, cfg, CPU), cfg, CPU, checkpoints=None, run_root=None,
                     log=said.append)
    assert any("never seen" in s and "steps_per_epoch: 0" in s for s in said) and r.notes


def test_train_config_checks_the_new_keys():
    from vocalcli.config import ConfigError, from_dict

    for bad in ({"gpu_batch_size": 1}, {"workers": -2}, {"warmup_fraction": 1.0}, {"min_steps": -1}):
        with pytest.raises(ConfigError, match="tcae.train"):
            from_dict({"tcae": {"train": bad}})
    tc = from_dict({"contrastive": {"train": {"workers": -1}}}).contrastive.train
    assert tc.loader_workers("cpu", 16) == 0 and tc.loader_workers("cuda", 16) == 8
    assert tc.loader_workers("cuda", 2) == 1


def test_validation_on_a_large_library_is_spread_over_its_singers(proj):
    from vocalcli import data

    songs = [data.Song(f"s{i}", f"singer{i % 3}", "train", proj.root) for i in range(10)]
    pick = data.spread(songs, 4)
    assert len(pick) == 4 and {songs[i].singer for i in pick} == {"singer0", "singer1", "singer2"}
    assert data.spread(songs, 0) == data.spread(songs, 10) == list(range(10))
    cfg = _cfg(epochs=1, steps_per_epoch=1)
    cfg.contrastive.eval_songs = 3
    r = training.fit(training.ContrastiveTask(proj, cfg, CPU), cfg, CPU, checkpoints=None, run_root=None)
    assert r.metrics["val_songs"] == 3 and 0 <= r.metrics["val_singer_acc"] <= 1


def test_signature_teacher_trains_and_stays_out_of_grouped_positives(proj):
    """contrastive.teacher_weight: the training songs' signature similarities shape the target and the
    loss falls; with singer positives (whose groups replace song ids in the queue) it is not used."""
    cfg = _cfg(epochs=6, steps_per_epoch=3, lr=3e-3)
    cfg.contrastive.queue_size = 0
    assert cfg.contrastive.teacher_weight == 0.5  # the default
    torch.manual_seed(0)
    task = training.ContrastiveTask(proj, cfg, CPU)
    assert task.signatures.shape == (len(task.songs), cfg.timbre.cepstra * (cfg.timbre.cepstra - 1) // 2)
    r = training.fit(task, cfg, CPU, checkpoints=None, run_root=None)
    losses = [h["train_loss"] for h in r.history]
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
    cfg.contrastive.positives = "singer"
    assert training.ContrastiveTask(proj, cfg, CPU).signatures is None
