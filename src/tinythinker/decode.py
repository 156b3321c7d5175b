"""A lean decoding loop for encoder-decoder students that drops finished rows as it goes.

Features:
- Greedy or sampled (temperature / top_k / top_p, the same warpers as ``model.generate``) decoding
  with the model's own KV cache; the encoder runs once per batch and the cross-attention keys and
  values are computed once (as in ``model.generate``).
- An input repeated in the batch (the samples of one prompt) is encoded once (``expand``).
- Finished rows leave the batch: once at least ``drop_ratio`` of the active rows have emitted eos,
  the batch (decoder cache, encoder states, mask) is shrunk to the unfinished rows, so a batch costs
  the sum of its output lengths instead of rows x the longest output.
- ``check_every`` steps between looks at the finished flags: every look is a device-to-host sync,
  so on GPUs it pays to look only every few steps (finished rows keep emitting pad meanwhile).

Assumptions: a transformers seq2seq model whose forward accepts ``encoder_outputs``, ``cache`` and
``decoder_input_ids`` (T5, BART, ...); right-padded inputs. Greedy outputs equal ``model.generate``'s
token for token up to floating-point effects of the batch shape (a changed batch size can change the
last bits of a matmul and, very rarely, flip a near-tied argmax).
"""

from __future__ import annotations

from typing import Any


def _warpers(temperature: float, top_k: int, top_p: float):
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    return warpers


def generate_seq2seq(
    model: Any,
    input_ids,
    attention_mask,
    *,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    decoder_start_token_id: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    check_every: int = 1,
    drop_ratio: float = 0.25,
    expand=None,
):
    """Generated token ids, shape (rows, steps run); rows are padded with ``pad_token_id`` after eos.

    ``expand`` (optional, a long tensor): row r decodes from encoder input ``expand[r]``, so an
    input sampled several times is encoded once. Call under ``torch.inference_mode()`` (and autocast
    if wanted); the model must be in eval mode.
    """
    import torch
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    device = input_ids.device
    hidden = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask
    if expand is not None:
        hidden, mask = hidden[expand], mask[expand]
    rows = hidden.shape[0]
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    tokens = torch.full((rows, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
    active = torch.arange(rows, device=device)  # original row of each row still decoding
    last = torch.full((rows, 1), decoder_start_token_id, dtype=torch.long, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    warpers = _warpers(temperature, top_k, top_p) if do_sample else None
    steps = 0
    for step in range(max_new_tokens):
        out = model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=last, cache=cache, use_cache=True)
        logits = out.logits[:, -1, :].float()
        if do_sample:
            probs = torch.softmax(warpers(last, logits), dim=-1)
            chosen = torch.multinomial(probs, num_samples=1).squeeze(1)
        else:
            chosen = logits.argmax(dim=-1)
        chosen = chosen.masked_fill(done, pad_token_id)
        tokens[active, step] = chosen
        done = done | (chosen == eos_token_id)
        last = chosen[:, None]
        steps = step + 1
        if steps % check_every and steps < max_new_tokens:
            continue
        finished = int(done.sum())
        if finished == done.shape[0]:
            break
        if finished and finished >= drop_ratio * done.shape[0]:
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            active, hidden, mask, last, done = active[keep], hidden[keep], mask[keep], last[keep], done[keep]
    return tokens[:, :steps]
