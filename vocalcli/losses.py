"""Loss functions: small and pure; shapes in the docstrings."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    temperature: float,
    extra_negatives: torch.Tensor | None = None,
    queue: torch.Tensor | None = None,
    ids: torch.Tensor | None = None,
    queue_ids: torch.Tensor | None = None,
    teacher: torch.Tensor | None = None,
    teacher_weight: float = 0.0,
    teacher_temperature: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE over positives, in-batch, transformed-view and queue negatives.

    query [B, D], key [B, D] (row i is the positive of query i), both L2-normalised.
    Candidates of query i: its key (the answer), the other B-1 keys (in-batch negatives),
    ``extra_negatives`` [V, D] (transformed views of the batch's crops, *including query i's own*:
    this is what makes the embedding sensitive to the transformation), and ``queue`` [Q, D] (MoCo
    memory bank). Rows of the batch or queue that come from the same song as query i (``ids`` [B],
    ``queue_ids`` [Q]) are masked out: a stale key of one's own song is not a negative.

    ``teacher`` [S, E]: one L2-normalised vector per song id (rows picked by ``ids`` and ``queue_ids``), a
    label-free guess at how alike two songs are (their dot product). With ``teacher_weight`` w > 0 the
    answer keeps 1 - w of the target and w is spread over the other songs' keys (batch and queue, not the
    transformed views) as softmax(similarity / teacher_temperature), so songs the teacher finds alike are
    pulled together, not only crops of one song.

    Returns (mean loss, mean number of candidates N per query as a 0-d tensor: reading it back as a number
    would wait for the GPU every step); chance level is ln N.
    """
    b = query.shape[0]
    cands = [key]
    if extra_negatives is not None and extra_negatives.numel():
        cands.append(extra_negatives)
    if queue is not None and queue.numel():
        cands.append(queue)
    keys = torch.cat(cands, dim=0)
    logits = query @ keys.T / temperature  # [B, B + V + Q]
    mask = torch.zeros_like(logits, dtype=torch.bool)
    if ids is not None:
        same = ids[:, None] == ids[None, :]
        same.fill_diagonal_(False)
        mask[:, :b] = same
        if queue is not None and queue.numel() and queue_ids is not None:
            mask[:, -queue.shape[0]:] = ids[:, None] == queue_ids[None, :]
    logits = logits.masked_fill(mask, float("-inf"))
    labels = torch.arange(b, device=query.device)
    n = (~mask).sum(dim=1).float().mean()
    if teacher is None or teacher_weight <= 0:
        return F.cross_entropy(logits.float(), labels), n
    if ids is None:
        raise ValueError("a teacher needs the song ids of the batch (and of the queue)")
    t = torch.full_like(logits, float("-inf"))  # the transformed views get no share
    mine = teacher[ids].float()
    t[:, :b] = mine @ mine.T
    if queue is not None and queue.numel():
        t[:, -queue.shape[0]:] = mine @ teacher[queue_ids].float().T
    t = t.masked_fill(mask, float("-inf"))
    t[labels, labels] = float("-inf")  # the answer has its own share
    soft = torch.softmax(t / teacher_temperature, dim=1).nan_to_num(0.0)  # a row with no candidate: all 0
    w = teacher_weight * (soft.sum(dim=1, keepdim=True) > 0)
    target = soft * w
    target[labels, labels] += 1 - w[:, 0]
    logp = torch.log_softmax(logits.float(), dim=1)
    loss = -(target * logp.masked_fill(target == 0, 0.0)).sum(dim=1).mean()
    return loss, n


def chance_level(n_candidates: float | torch.Tensor) -> float | torch.Tensor:
    """InfoNCE of a model that knows nothing: ln N (uniform over N candidates); a tensor stays a tensor."""
    if isinstance(n_candidates, torch.Tensor):
        return torch.log(n_candidates.clamp(min=1.0))
    return math.log(max(n_candidates, 1.0))


def reconstruction(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean L1 or MSE between [B, n_mels, T] tensors (normalised log-mel)."""
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "mse":
        return F.mse_loss(pred, target)
    raise ValueError(f"unknown reconstruction loss {kind!r}")


def self_similarity(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T] -> [B, T, T] cosine similarity between frames, after removing each channel's mean over
    time (what `melody_embedding` looks at)."""
    u = F.normalize(x - x.mean(dim=-1, keepdim=True), dim=1)
    return u.transpose(1, 2) @ u


def self_similarity_match(latent: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |SSM(latent) - SSM(target)| for [B, C1, T] and [B, C2, T] (same T): the latent must keep
    which moments of the input resemble each other (repeated notes, phrases), not only its energy."""
    return (self_similarity(latent.float()) - self_similarity(target.float())).abs().mean()
