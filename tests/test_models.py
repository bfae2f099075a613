"""Networks, losses and checkpoints: shapes, causality, candidate counts, round trips."""

from __future__ import annotations

import math

import pytest
import torch

from vocalcli import checkpoint, losses
from vocalcli.config import AudioConfig, ContrastiveConfig, TCAEConfig
from vocalcli.errors import CheckpointError
from vocalcli.models import TCAE, EncoderConfig, TCAEModelConfig, TimbreEncoder, melody_embedding
from vocalcli.models.tcae import receptive_field_seconds

torch.set_num_threads(1)


def encoder_cfg(**kw) -> EncoderConfig:
    return EncoderConfig.from_config(ContrastiveConfig(**kw), AudioConfig())


def tcae_cfg(**kw) -> TCAEModelConfig:
    return TCAEModelConfig.from_config(TCAEConfig(**kw), AudioConfig())


def test_model_shapes_come_from_vocal_yaml_sections_only():
    """The model configs have no defaults of their own: every field is set from vocal.yaml."""
    import dataclasses

    for cls in (EncoderConfig, TCAEModelConfig):
        assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(cls))
    enc = encoder_cfg(blocks=3, time_pool=1, channels=8)
    assert (enc.blocks, enc.time_pool, enc.channels, enc.n_mels) == (3, 1, 8, 48)
    assert tcae_cfg().latent_channels == TCAEConfig().latent_channels


def test_encoder_embeds_any_crop_length_to_unit_vectors():
    enc = TimbreEncoder(encoder_cfg(channels=4, embedding_dim=12)).eval()
    for frames in (16, 63, 313):
        e = enc(torch.randn(3, 48, frames))
        assert e.shape == (3, 12)
        assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)


def test_tcae_shapes_and_receptive_field_in_frames_and_seconds():
    cfg = tcae_cfg()  # vocal.yaml's defaults: kernel 2, 6 layers x 2 stacks, downsample 4
    assert cfg.receptive_field == (1 + 2 * 63) * 4 == 508  # the stacks run on blocks of 4 frames
    assert receptive_field_seconds(cfg, AudioConfig()) == pytest.approx(508 * 256 / 16000)
    m = TCAE(tcae_cfg(channels=8, latent_channels=4, layers_per_stack=3, stacks=1))
    y, z = m(torch.randn(2, 48, 101))
    assert y.shape == (2, 48, 101) and z.shape == (2, 4, 26)


def test_tcae_encoder_is_causal():
    """Perturbing frames after t changes no latent step whose frames all lie at or before t."""
    torch.manual_seed(0)
    cfg = tcae_cfg(channels=8, latent_channels=4, layers_per_stack=4, stacks=2, downsample=4)
    m = TCAE(cfg).eval()
    x = torch.randn(1, 48, 200)
    t = 99
    x2 = x.clone()
    x2[..., t + 1:] += torch.randn_like(x2[..., t + 1:]) * 5
    with torch.no_grad():
        z, z2 = m.encode(x), m.encode(x2)
    safe = (t + 1) // cfg.downsample  # steps 0..safe-1 cover frames <= t
    assert torch.equal(z[..., :safe], z2[..., :safe])
    assert not torch.allclose(z[..., safe:], z2[..., safe:])


@pytest.mark.parametrize("downsample", [1, 2])
def test_tcae_receptive_field_is_what_it_claims(downsample):
    torch.manual_seed(0)
    cfg = tcae_cfg(channels=8, latent_channels=4, layers_per_stack=3, stacks=2, downsample=downsample)
    m = TCAE(cfg).eval()
    x = torch.randn(1, 48, 128)
    x2 = x.clone()
    x2[..., 10] += 10
    with torch.no_grad():
        changed = (m.encode(x) - m.encode(x2)).abs().amax(dim=1)[0] > 0
    steps = changed.nonzero().flatten()  # latent steps that see frame 10
    first, last = int(steps.min()) * downsample, (int(steps.max()) + 1) * downsample - 1  # their frames
    assert first <= 10 < first + downsample
    assert last - first + 1 == cfg.receptive_field


def test_melody_embedding_fixed_length_unit_norm():
    dims = {melody_embedding(torch.randn(4, t), 15.625).shape[0] for t in (1, 7, 125, 1876)}
    assert len(dims) == 1
    e = melody_embedding(torch.randn(3, 4, 125), 15.625)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)


def _latent_of(notes: list[int], durs: list[int], frames: int, proj: torch.Tensor,
               tempo: float = 1.0) -> torch.Tensor:
    """A stand-in latent: each note a fixed vector, held for its duration / tempo, the phrase looped."""
    seq = torch.cat([torch.full((round(d / tempo),), n) for n, d in zip(notes, durs, strict=True)])
    seq = seq.repeat(frames // len(seq) + 1)[:frames]
    return proj[:, seq] + 0.05 * torch.randn(proj.shape[0], frames)


RATE = 15.625  # latent steps per second (62.5 frames/s, downsample 4)
PHRASE = ([0, 4, 7, 4, 2, 5, 0, 9], [8, 8, 16, 8, 8, 8, 8, 32])  # note, duration in steps (8 = one beat)
OTHER = ([0, 2, 5, 9, 7, 2], [8, 16, 8, 8, 24, 16])


def test_melody_embedding_ignores_time_shift_latent_rotation_and_tempo():
    """Same phrase, started elsewhere, seen through a rotated latent (as another voice or key might
    appear) and 20 % slower, stays closer than a different phrase."""
    torch.manual_seed(0)
    proj = torch.randn(8, 24)
    a = melody_embedding(_latent_of(*PHRASE, 1200, proj), RATE)
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    shifted = _latent_of(*PHRASE, 1050, proj, tempo=0.8)[:, 50:]
    b = melody_embedding(q @ shifted, RATE)
    other = melody_embedding(_latent_of(*OTHER, 1200, proj), RATE)
    assert float(a @ b) > 0.8 and float(a @ b) > float(a @ other) + 0.3, (float(a @ b), float(a @ other))


def test_beat_period_follows_tempo():
    from vocalcli.models.tcae import beat_period

    torch.manual_seed(0)
    proj = torch.randn(8, 24)
    for tempo in (1.0, 0.8):  # 8 and 10 steps a beat (durations stay whole steps)
        z = _latent_of(*PHRASE, 1200, proj, tempo=tempo)[None]
        assert float(beat_period(z, RATE)[0]) == pytest.approx(8 / tempo, rel=0.05)


def test_melody_embedding_ignores_channel_scale_and_takes_a_given_period():
    """Channels are standardised before the cosine: a loud channel does not outvote the others."""
    torch.manual_seed(0)
    from vocalcli.models.tcae import beat_period

    z = _latent_of(*PHRASE, 1200, torch.randn(8, 24))
    own = beat_period(z[None], RATE)
    scaled = z * torch.logspace(-2, 2, 8)[:, None]
    assert torch.allclose(melody_embedding(scaled, RATE, own), melody_embedding(z, RATE, own), atol=1e-4)
    # a given beat period replaces the latent's own estimate (embed passes the pooled input's)
    assert torch.allclose(melody_embedding(z, RATE, own), melody_embedding(z, RATE), atol=1e-6)
    assert not torch.allclose(melody_embedding(z, RATE, own * 1.5), melody_embedding(z, RATE), atol=1e-3)


def test_self_similarity_match_is_zero_for_a_rotated_copy_and_positive_otherwise():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 40)
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    assert float(losses.self_similarity_match(q @ x, x)) < 1e-5
    assert float(losses.self_similarity_match(torch.randn(2, 6, 40), x)) > 0.1


def test_info_nce_counts_candidates_and_chance_level():
    b, d = 4, 8
    q = torch.nn.functional.normalize(torch.randn(b, d), dim=1)
    k = torch.nn.functional.normalize(torch.randn(b, d), dim=1)
    negs = torch.nn.functional.normalize(torch.randn(2 * b, d), dim=1)  # 2 neg transformations
    queue = torch.nn.functional.normalize(torch.randn(10, d), dim=1)
    _, n = losses.info_nce(q, k, 0.1, negs, queue)
    assert float(n) == b + 2 * b + 10
    # queue entries of the anchor's own song are masked: song 0 has 3 in the queue
    ids = torch.arange(b)
    qids = torch.tensor([0, 0, 0, 1, 5, 6, 7, 8, 9, 10])
    _, n = losses.info_nce(q, k, 0.1, negs, queue, ids, qids)
    assert float(n) == pytest.approx(22 - (3 + 1) / b)
    # identical embeddings everywhere: the model knows nothing -> loss = ln N
    same = torch.nn.functional.normalize(torch.ones(b, d), dim=1)
    loss, n = losses.info_nce(same, same, 0.07, same.repeat(2, 1), same[:1].repeat(10, 1))
    assert float(loss) == pytest.approx(math.log(n), rel=1e-4) and losses.chance_level(float(n)) == math.log(22)
    assert float(losses.chance_level(n)) == pytest.approx(math.log(22))


def test_info_nce_teacher_pulls_songs_it_finds_alike_together():
    """teacher_weight w: 1 - w of the target stays on the crop's own key, w goes to the other songs'
    keys (batch and queue) by how alike the teacher's song vectors are; transformed views get none."""
    torch.manual_seed(0)
    unit = lambda n: torch.nn.functional.normalize(torch.randn(n, 8), dim=1)  # noqa: E731
    k, negs, queue = unit(2), unit(2), unit(2)
    ids, qids = torch.tensor([0, 1]), torch.tensor([5, 6])
    q = k[[1, 0]].clone()  # each query looks like the other song's key
    run = lambda t, w: float(losses.info_nce(q, k, 0.1, negs, queue, ids, qids, t, w, 0.1)[0])  # noqa: E731
    plain = run(None, 0.0)
    eye = torch.eye(7)
    alike = eye.clone()
    alike[1] = alike[0]  # the teacher hears songs 0 and 1 alike, as the queries look
    unlike = eye.clone()
    unlike[0] = unlike[1] = 0.0
    unlike[0, 5], unlike[0, 6], unlike[1, 5], unlike[1, 4] = 1.0, 1.0, 1.0, 1.0
    unlike = torch.nn.functional.normalize(unlike, dim=1)  # songs 0 and 1 each nearer queue song 5 than each other
    assert run(alike, 0.0) == plain
    assert run(alike, 0.5) < plain and run(alike, 0.5) < run(unlike, 0.5)
    # nothing to share with (a lone song, no queue): the target stays on the own key
    one, _ = losses.info_nce(q[:1], k[:1], 0.1, negs[:1], ids=ids[:1], teacher=eye, teacher_weight=0.5)
    assert float(one) == pytest.approx(float(losses.info_nce(q[:1], k[:1], 0.1, negs[:1])[0]))


def test_encoder_with_time_kernel_1_hears_spectra_not_their_order():
    """time_kernel 1: convolutions see one frame's spectrum; only pooling spans time. A crop played
    backwards (whole pooling windows: 2 x 2**4 frames) embeds the same; with 3-frame kernels it does not."""
    torch.manual_seed(0)
    x = torch.randn(2, 48, 64)
    frame_wise = TimbreEncoder(encoder_cfg(channels=4, time_kernel=1)).eval()
    assert torch.allclose(frame_wise(x), frame_wise(x.flip(2)), atol=1e-5)
    local = TimbreEncoder(encoder_cfg(channels=4, time_kernel=3)).eval()
    assert not torch.allclose(local(x), local(x.flip(2)), atol=1e-3)


def test_encoder_checkpoint_from_before_time_kernel_keeps_its_3_frame_kernels():
    stored = encoder_cfg(channels=4).to_dict()
    del stored["time_kernel"]
    old = EncoderConfig.from_checkpoint(stored)
    assert old.time_kernel == 3
    assert TimbreEncoder(old).blocks[0].conv1.kernel_size == (3, 3)


def test_checkpoint_round_trip_rebuilds_identical_model(tmp_path):
    torch.manual_seed(0)
    mc = tcae_cfg(channels=8, latent_channels=4, layers_per_stack=2, stacks=1)
    m = TCAE(mc).eval()
    opt = torch.optim.AdamW(m.parameters())
    m(torch.randn(1, 48, 20))[0].sum().backward()
    opt.step()
    path = tmp_path / "ck" / "best.pt"
    checkpoint.save(path, kind="tcae", model_config=mc.to_dict(), model=m.state_dict(),
                    optimizer=opt.state_dict(), epoch=3, step=30, metrics={"score": 1.5},
                    config={"seed": 0})
    ck = checkpoint.load(path, "tcae")  # weights_only=True inside
    m2 = TCAE(TCAEModelConfig(**ck["model_config"])).eval()
    m2.load_state_dict(ck["model"])
    x = torch.randn(2, 48, 33)
    assert torch.equal(m(x)[0], m2(x)[0])
    assert (ck["epoch"], ck["step"], ck["metrics"]["score"], ck["kind"]) == (3, 30, 1.5, "tcae")
    assert {"torch", "numpy", "python", "vocal"} <= set(ck["versions"])
    assert not list(path.parent.glob("*.tmp"))  # atomic write leaves no temp file
    with pytest.raises(CheckpointError, match="holds a 'tcae' model"):
        checkpoint.load(path, "contrastive")


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    p = tmp_path / "last.pt"
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable vocal checkpoint"):
        checkpoint.load(p)


def test_config_differences_name_the_key():
    d = checkpoint.config_differences({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 2, "c": (1, 2)}})
    assert d == ["a.b: 1 -> 2"]


def _pulses(period: float, steps: int, channels: int = 4) -> torch.Tensor:
    """[1, channels, steps]: a sharp rise every ``period`` steps (rounded to the grid, so the beat is
    only seen to a step) on a slowly decaying level, plus a little noise."""
    x = torch.zeros(channels, steps)
    for k in range(int(steps / period)):
        i = round(k * period)
        x[:, i:] += torch.exp(-torch.arange(steps - i) / 3.0)
    return (x + 0.01 * torch.randn(channels, steps))[None]


def test_beat_period_refined_on_multiples_of_the_beat_is_finer_than_a_step():
    """A beat of 9.37 steps: the first peak alone is good to a fraction of a step; the peaks near 2-16
    beats make the error k times smaller (the melody vector reads lags up to 64 beats)."""
    from vocalcli.models.tcae import beat_period

    torch.manual_seed(0)
    z = _pulses(9.37, 1800)
    coarse = float(beat_period(z, RATE, prior_bpm=100.0, prior_octaves=1.0, refine=())[0])
    fine = float(beat_period(z, RATE, prior_bpm=100.0, prior_octaves=1.0)[0])
    assert abs(fine - 9.37) < 0.01 < abs(coarse - 9.37), (coarse, fine)
    # a song too short for any multiple keeps the first estimate
    short = _pulses(9.37, 30)
    assert float(beat_period(short, RATE, refine=(8,))[0]) == pytest.approx(
        float(beat_period(short, RATE, refine=())[0]))


def test_tempo_prior_picks_between_a_beat_and_its_double():
    """Every beat a note, every other beat a stronger one: both 8 and 16 steps are periods; the prior's
    centre decides (15.625 steps/s: 8 steps = 117 bpm, 16 steps = 59 bpm)."""
    from vocalcli.models.tcae import beat_period

    torch.manual_seed(0)
    z = _pulses(8.0, 1600) + 0.6 * _pulses(16.0, 1600)
    assert float(beat_period(z, RATE, prior_bpm=120.0, prior_octaves=0.5)[0]) == pytest.approx(8, rel=0.01)
    assert float(beat_period(z, RATE, prior_bpm=55.0, prior_octaves=0.5)[0]) == pytest.approx(16, rel=0.01)


def test_note_changes_follow_the_voice_not_a_broadband_pulse():
    """Low bands change shape on every note (every 12 steps); a louder drum-like level jump hits every
    band every 10 steps. The full input's beat follows the drum, the note-change view the voice."""
    from vocalcli.audio import mel_centres
    from vocalcli.config import AudioConfig
    from vocalcli.models.tcae import beat_period, note_changes

    torch.manual_seed(0)
    centres = mel_centres(AudioConfig())  # 48 bands, 0-8 kHz
    low = int((centres <= 1000).sum())
    steps = 1500
    notes = torch.randint(0, low, (steps // 12 + 1,)).repeat_interleave(12)[:steps]
    x = torch.zeros(48, steps)
    x[notes, torch.arange(steps)] = 2.0  # one strong band per note: the spectral shape moves
    x += 3.0 * _pulses(10.0, steps, channels=1)[0]  # the same level jump in every band
    x = x[None] + 0.01 * torch.randn(1, 48, steps)
    kw = dict(prior_bpm=90.0, prior_octaves=1.0)
    assert float(beat_period(x, RATE, **kw)[0]) == pytest.approx(10, rel=0.02)
    assert float(beat_period(note_changes(x, centres, 1000.0), RATE, **kw)[0]) == pytest.approx(12, rel=0.02)
    assert note_changes(x, centres, 1000.0).shape == (1, low, steps)
    assert note_changes(x, centres, 1.0).shape == x.shape  # fewer than 2 bands: all of them
