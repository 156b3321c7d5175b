"""The phase-2 preference loss (METHOD.md section 6): DPO sigmoid loss plus alpha x NLL of the chosen side.

    z    = beta * ((log pi(y_c|x) - log ref(y_c|x)) - (log pi(y_r|x) - log ref(y_r|x)))
    loss = mean(-log sigmoid(z)) + alpha * NLL(y_c)

Sequence log-probabilities are sums over the response (target) tokens. NLL is the mean negative
log-likelihood per chosen response token over the batch (TRL's ``rpo_alpha`` convention).
TRL dropped encoder-decoder DPO, so this module owns the loss for both student kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def token_logps(logits: torch.Tensor, labels: torch.Tensor, causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of ``labels`` and the mask of scored tokens.

    Seq2seq: ``logits[:, t]`` scores ``labels[:, t]``. Causal: ``logits[:, t]`` scores
    ``labels[:, t + 1]`` (labels are the input ids with prompt and padding set to -100).
    """
    if causal:
        logits, labels = logits[:, :-1, :], labels[:, 1:]
    mask = labels != IGNORE_INDEX
    safe = labels.masked_fill(~mask, 0)
    logps = torch.gather(logits.float().log_softmax(-1), 2, safe.unsqueeze(-1)).squeeze(-1)
    return logps * mask, mask


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of response-token log-probabilities per sequence, number of response tokens per sequence)."""
    logps, mask = token_logps(logits, labels, causal)
    return logps.sum(-1), mask.sum(-1)


@dataclass
class PreferenceOutput:
    loss: torch.Tensor
    dpo: torch.Tensor
    nll: torch.Tensor
    reward_accuracy: torch.Tensor  # fraction of pairs with z > 0
    margin: torch.Tensor  # mean z / beta


def preference_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    chosen_tokens: torch.Tensor,
    beta: float = 0.5,
    alpha: float = 0.5,
) -> PreferenceOutput:
    """DPO sigmoid loss + alpha * NLL; all inputs are per-pair sequence sums (shape [batch])."""
    margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
    z = beta * margin
    dpo = -F.logsigmoid(z).mean()
    nll = -policy_chosen.sum() / chosen_tokens.sum().clamp(min=1)
    loss = dpo + alpha * nll if alpha else dpo
    return PreferenceOutput(loss, dpo.detach(), nll.detach(), (z > 0).float().mean().detach(), margin.mean().detach())
