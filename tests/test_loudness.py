"""The timbre encoder reads only the loudest frames (contrastive.loud_fraction): in training crops, in
validation and when embedding, so what fills a song's rests does not reach its encoder vector."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_fixtures import make_project, tiny_config

from vocalcli import config as config_mod
from vocalcli import data, loudness, training
from vocalcli.embed import Embedder
from vocalcli.errors import ConfigError

torch.set_num_threads(1)
CPU = torch.device("cpu")


def _voice_and_rests(rng: np.random.Generator, frames: int = 400, rest: float = -8.0) -> tuple[np.ndarray, np.ndarray]:
    """A log-mel whose odd 20-frame stretches are quiet 'rests' (what a band leaves in a vocal estimate),
    and the mask of its loud frames."""
    mel = rng.normal(size=(48, frames)).astype(np.float32)
    loud = (np.arange(frames) // 20) % 2 == 0
    mel[:, ~loud] += rest
    return mel, loud


def test_loudest_frames_keep_the_louder_frames_in_time_order():
    rng = np.random.default_rng(0)
    mel, loud = _voice_and_rests(rng)
    keep = loudness.loudest_frames(mel, 0.5)
    assert len(keep) == loudness.kept_frames(mel.shape[1], 0.5) == loud.sum()
    assert np.all(np.diff(keep) > 0) and np.array_equal(keep, np.flatnonzero(loud))
    np.testing.assert_array_equal(loudness.loud_view(mel, 0.5), mel[:, loud])
    assert loudness.loud_view(mel, 1.0) is mel
    assert loudness.kept_frames(7501, 0.5) == 3751 and loudness.kept_frames(3, 0.01) == 1
    assert len(loudness.loudest_frames(mel[:, :2], 0.3)) == 1  # shorter than the smoothing window


def test_mel_bank_crops_come_from_the_loud_frames_only(tmp_path):
    rng = np.random.default_rng(1)
    songs = []
    for i in range(3):
        mel, loud = _voice_and_rests(rng, 400)
        mel[:, ~loud] = -50.0  # a value no loud frame holds
        path = tmp_path / f"s{i}.npy"
        np.save(path, mel.astype(np.float16))
        songs.append(data.Song(f"s{i}", "a", "train", path))
    whole, heard = data.MelBank(songs), data.MelBank(songs, 0.5)
    assert list(whole.frames) == [400] * 3 and list(heard.frames) == [200] * 3
    order = data.epoch_order(3, 3, 8, seed=0, epoch=0)
    for bank, rests_seen in ((whole, True), (heard, False)):
        views = np.concatenate([data.CropBatches(bank, order, 60, 2, seed=0, epoch=0).batch(s)["views"].numpy()
                                for s in range(len(order))])
        assert (views == -50.0).any() == rests_seen
    assert heard.view(0).shape == (48, 200) and not (heard.view(0) == -50.0).any()


def test_an_encoder_trained_on_loud_frames_ignores_what_fills_the_rests(tmp_path):
    cfg = tiny_config(epochs=1, steps_per_epoch=2)
    cfg.tcae.train.epochs, cfg.tcae.train.steps_per_epoch = 1, 2
    cfg.contrastive.loud_fraction = 0.5
    p = make_project(tmp_path / "p", cfg)
    training.train_contrastive(p, cfg, CPU)
    training.train_tcae(p, cfg, CPU)
    emb = Embedder.from_project(p, "cpu")
    assert emb.encoder_loud_fraction == 0.5  # from the encoder's checkpoint, not vocal.yaml
    mel = np.load(p.mel_path("s0_0")).astype(np.float32)
    keep = loudness.loudest_frames(mel, 0.5)
    rests = np.setdiff1d(np.arange(mel.shape[1]), keep)
    other = mel.copy()
    other[:, rests] = mel[::-1, rests]  # another spectrum in the rests, each frame's energy unchanged
    assert np.array_equal(loudness.loudest_frames(other, 0.5), keep)
    a, b = emb.embed_parts(mel), emb.embed_parts(other)
    np.testing.assert_allclose(a["encoder"], b["encoder"], atol=1e-6)
    assert np.abs(a["melody_tcae"] - b["melody_tcae"]).max() > 1e-4  # the TCAE still reads every frame
    emb.encoder_loud_fraction = 1.0  # an encoder that reads every frame hears the rests
    assert np.abs(emb.embed_parts(other)["encoder"] - a["encoder"]).max() > 1e-4


def test_loud_fraction_is_checked():
    cfg = config_mod.Config()
    cfg.contrastive.loud_fraction = 0.0
    with pytest.raises(ConfigError, match="contrastive.loud_fraction"):
        config_mod.validate(cfg)
