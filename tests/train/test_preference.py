"""The preference loss against hand-computed values, for seq2seq and causal label layouts."""

import math

import pytest
import torch

from tinythinker.train.preference import IGNORE_INDEX, preference_loss, sequence_logps


def log_softmax_row(row):
    top = max(row)
    total = math.log(sum(math.exp(v - top) for v in row)) + top
    return [v - total for v in row]


LOGITS = [  # batch 2, 3 positions, vocabulary 3
    [[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [1.0, 3.0, 0.0]],
    [[0.0, 1.0, 0.0], [-2.0, 0.0, 2.0], [0.0, 0.0, 0.0]],
]


def test_seq2seq_sequence_logps_sum_over_target_tokens():
    labels = torch.tensor([[0, 1, IGNORE_INDEX], [2, 2, 1]])
    logps, counts = sequence_logps(torch.tensor(LOGITS), labels, causal=False)
    expected = [
        log_softmax_row(LOGITS[0][0])[0] + log_softmax_row(LOGITS[0][1])[1],
        log_softmax_row(LOGITS[1][0])[2] + log_softmax_row(LOGITS[1][1])[2] + log_softmax_row(LOGITS[1][2])[1],
    ]
    assert logps.tolist() == pytest.approx(expected, abs=1e-6)
    assert counts.tolist() == [2, 3]


def test_causal_sequence_logps_are_shifted_and_skip_the_prompt():
    # sequence 0: prompt token, then completion tokens 1, 2; sequence 1: two prompt tokens, completion 0
    labels = torch.tensor([[IGNORE_INDEX, 1, 2], [IGNORE_INDEX, IGNORE_INDEX, 0]])
    logps, counts = sequence_logps(torch.tensor(LOGITS), labels, causal=True)
    expected = [
        log_softmax_row(LOGITS[0][0])[1] + log_softmax_row(LOGITS[0][1])[2],
        log_softmax_row(LOGITS[1][1])[0],
    ]
    assert logps.tolist() == pytest.approx(expected, abs=1e-6)
    assert counts.tolist() == [2, 1]


@pytest.mark.parametrize("causal", [False, True])
def test_loss_and_gradient_match_the_formula(causal):
    beta, alpha = 0.5, 0.5
    logits = torch.tensor(LOGITS, requires_grad=True)
    if causal:
        chosen_labels = torch.tensor([[IGNORE_INDEX, 1, 2], [IGNORE_INDEX, 2, 0]])
    else:
        chosen_labels = torch.tensor([[0, 1, IGNORE_INDEX], [2, 2, 1]])
    rejected_logits = torch.tensor([[[0.0, 0.0, 1.0]] * 3, [[1.0, 0.0, 0.0]] * 3])
    rejected_labels = chosen_labels.clone()
    policy_chosen, chosen_tokens = sequence_logps(logits, chosen_labels, causal)
    policy_rejected, _ = sequence_logps(rejected_logits, rejected_labels, causal)
    ref_chosen, ref_rejected = torch.tensor([-3.0, -4.0]), torch.tensor([-2.5, -3.0])
    out = preference_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, chosen_tokens, beta, alpha)

    pc, pr = policy_chosen.tolist(), policy_rejected.tolist()
    rc, rr = ref_chosen.tolist(), ref_rejected.tolist()
    z = [beta * ((pc[i] - rc[i]) - (pr[i] - rr[i])) for i in range(2)]
    dpo = sum(math.log(1 + math.exp(-zi)) for zi in z) / 2
    n_tokens = chosen_tokens.sum().item()
    nll = -(pc[0] + pc[1]) / n_tokens
    assert out.dpo.item() == pytest.approx(dpo, abs=1e-6)
    assert out.nll.item() == pytest.approx(nll, abs=1e-6)
    assert out.loss.item() == pytest.approx(dpo + alpha * nll, abs=1e-6)
    assert out.reward_accuracy.item() == sum(zi > 0 for zi in z) / 2

    # d loss / d policy_chosen[i] = -beta * sigmoid(-z_i) / B - alpha / n_tokens, chained through the logits
    out.loss.backward()
    expected_grad = torch.zeros_like(logits)
    for i in range(2):
        weight = -beta * (1 / (1 + math.exp(z[i]))) / 2 - alpha / n_tokens
        labels_i = chosen_labels[i, 1:] if causal else chosen_labels[i]
        for t, label in enumerate(labels_i.tolist()):
            if label == IGNORE_INDEX:
                continue
            probs = torch.tensor(LOGITS[i][t]).softmax(-1)
            one_hot = torch.nn.functional.one_hot(torch.tensor(label), 3).float()
            expected_grad[i, t] += weight * (one_hot - probs)
    assert torch.allclose(logits.grad, expected_grad, atol=1e-6)


def test_alpha_zero_is_plain_dpo():
    args = [torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-1.5]), torch.tensor([-1.5]), torch.tensor([3])]
    out = preference_loss(*args, beta=0.5, alpha=0.0)
    assert out.loss.item() == pytest.approx(math.log(1 + math.exp(-0.5 * 1.0)), abs=1e-6)
