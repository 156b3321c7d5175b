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
- ``static_cache=True``: a preallocated (static) KV cache, and on CUDA the decoder step replayed as
  one CUDA graph (a few hundred kernel launches become one), captured again whenever finished rows
  leave the batch. On a GPU a small student's step is launch-bound, so this is where time goes.

Assumptions: a transformers seq2seq model whose forward accepts ``encoder_outputs``, a cache
(``cache`` or ``past_key_values``, whichever its forward names) and ``decoder_input_ids`` (T5,
BART, ...); right-padded inputs. Greedy outputs equal ``model.generate``'s token for token up to
floating-point effects of the shapes (a changed batch size or cache length can change the last
bits of a matmul and now and then flip a near-tied argmax: on an H100 in bf16, 95% of a
random-weight student's three-stage chains came out identical, in fp32 all of them).
"""

from __future__ import annotations

import copy
import inspect
import warnings
import weakref
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


def cache_argument(model: Any) -> str:
    """The keyword under which ``model.forward`` takes its KV cache: ``cache`` in recent
    transformers releases, ``past_key_values`` before (an unknown keyword would be swallowed
    silently and every step would decode without its history)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


# model -> the host-syncing operators found in its decoder step (empty: the step is captured)
HOST_SYNCS: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()

_SYNC_OPS = ("_local_scalar_dense", "item", "is_nonzero", "nonzero", "masked_select", "unique", "aten.equal")


def host_syncs(function, *args):
    """(names of the operators in ``function(*args)`` that wait for the device, its result).

    Such an operator (``.item()``, ``bool(tensor)``, ``nonzero``, a copy of a host tensor to the
    device) cannot run inside a CUDA graph capture; found on any device, so CPU tests can check it.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    found: set[str] = set()

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func)
            tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            on_host = [t for t in tensors if t.device.type == "cpu"]
            target = (kwargs or {}).get("device")
            mixed = bool(on_host) and len(on_host) < len(tensors)  # a 0-d host tensor is read as a scalar, except here:
            host_to_device = (on_host and target is not None and str(target) != "cpu") or (
                mixed and (any(t.ndim for t in on_host) or "index_put" in name or "copy" in name)
            )
            mask_index = "index" in name and any(t.dtype == torch.bool for t in tensors[1:])  # runs nonzero
            if host_to_device or mask_index or any(op in name for op in _SYNC_OPS):
                found.add(name)
            return func(*args, **(kwargs or {}))

    with Watch():
        result = function(*args)
    return found, result


class DynamicSteps:
    """Decoder steps with a growing (dynamic) KV cache; any device."""

    def __init__(self, model, hidden, mask, max_new_tokens: int):
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        self.model, self.hidden, self.mask = model, hidden, mask
        self.cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        self.cache_kwargs = {cache_argument(model): self.cache, "use_cache": True}

    def step(self, last):
        """Logits of the next token for each row, shape (rows, vocab)."""
        out = self.model(encoder_outputs=(self.hidden,), attention_mask=self.mask, decoder_input_ids=last, **self.cache_kwargs)
        return out.logits[:, -1, :]

    __call__ = step

    def select(self, keep) -> None:
        """Keep only rows ``keep`` (finished rows leave the batch)."""
        self.cache.batch_select_indices(keep)
        self.hidden, self.mask = self.hidden[keep], self.mask[keep]


class StaticSteps(DynamicSteps):
    """Decoder steps over a preallocated KV cache; on CUDA replayed as one CUDA graph.

    The first step fills the cross-attention cache eagerly; after every change of the batch the
    next step runs eagerly on a side stream (CUDA's warm-up before a capture), then the step is
    captured once and replayed. ``step`` runs no host-device sync, so it can be captured (a test
    checks this on CPU, where every step runs eagerly on the same static cache).
    """

    def __init__(self, model, hidden, mask, max_new_tokens: int):
        import torch
        from transformers.cache_utils import EncoderDecoderCache, StaticCache

        self.model, self.hidden = model, hidden
        config = copy.copy(model.config)
        # a static cache sizes itself by num_hidden_layers, the encoder's depth in T5 and BART configs
        decoder_layers = getattr(config, "num_decoder_layers", None) or getattr(config, "decoder_layers", None)
        if decoder_layers:
            config.num_hidden_layers = decoder_layers
        self.cache = EncoderDecoderCache(
            StaticCache(config=config, max_cache_len=max_new_tokens),
            StaticCache(config=config, max_cache_len=hidden.shape[1]),
        )
        self.cache_kwargs = {cache_argument(model): self.cache, "use_cache": True}
        self.mask = self._encoder_mask(mask)
        self.use_graph = hidden.device.type == "cuda"
        self.graph = None
        self.eager_steps = 2  # the first step, then the warm-up before the first capture
        device_type = hidden.device.type
        self.autocast = {
            "device_type": device_type,
            "enabled": torch.is_autocast_enabled(device_type),
            "dtype": torch.get_autocast_dtype(device_type),
            "cache_enabled": False,  # weights cast inside the graph, not cached outside it
        }

    def _encoder_mask(self, mask):
        """The cross-attention mask, built once as the model would build it each step (building
        it inside the step reads the mask on the host to see whether it can be skipped: a sync)."""
        from transformers.masking_utils import create_bidirectional_mask

        embeds = self.model.get_decoder().get_input_embeddings()(mask[:, :1])
        return create_bidirectional_mask(config=self.model.config, inputs_embeds=embeds, attention_mask=mask, encoder_hidden_states=self.hidden)

    def __call__(self, last):
        import torch

        if not self.use_graph:
            return self.step(last)
        if self.graph is not None:
            self.static_last.copy_(last)
            self.graph.replay()
            return self.static_logits
        if self.eager_steps:
            self.eager_steps -= 1
            if self.eager_steps:  # the first step of the batch fills the cross-attention cache
                return self.step(last)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                if self.model in HOST_SYNCS:
                    logits = self.step(last)
                else:  # once per model: a step that syncs with the host cannot be captured
                    syncs, logits = host_syncs(self.step, last)
                    HOST_SYNCS[self.model] = frozenset(syncs)
            torch.cuda.current_stream().wait_stream(side)
            self.use_graph = not HOST_SYNCS[self.model]
            return logits
        self.static_last = last.clone()
        self.graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(self.graph), torch.autocast(**self.autocast):
                self.static_logits = self.step(self.static_last)
        except RuntimeError as error:  # nothing ran during the failed capture: go on eagerly
            warnings.warn(f"decoding without CUDA graphs: the capture failed ({error})", stacklevel=2)
            HOST_SYNCS[self.model], self.use_graph = frozenset({f"capture failed: {error}"}), False
            self.graph = None
            return self.step(last)
        self.graph.replay()
        return self.static_logits

    def select(self, keep) -> None:
        rows = self.hidden.shape[0]
        for cache in (self.cache.self_attention_cache, self.cache.cross_attention_cache):
            for layer in cache.layers:  # transformers' batch_select_indices refuses static layers
                layer.keys, layer.values = layer.keys[keep], layer.values[keep]
        self.hidden = self.hidden[keep]
        if self.mask is not None and self.mask.shape[0] == rows:
            self.mask = self.mask[keep]
        self.graph = self.static_logits = self.static_last = None
        self.eager_steps = 1


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
    static_cache: bool = False,
):
    """Generated token ids, shape (rows, steps run); rows are padded with ``pad_token_id`` after eos.

    ``expand`` (optional, a long tensor): row r decodes from encoder input ``expand[r]``, so an
    input sampled several times is encoded once. ``static_cache``: see the module docstring. Call
    under ``torch.inference_mode()`` (and autocast if wanted); the model must be in eval mode.
    """
    import torch

    device = input_ids.device
    hidden = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask
    if expand is not None:
        hidden, mask = hidden[expand], mask[expand]
    rows = hidden.shape[0]
    steps_of = StaticSteps if static_cache else DynamicSteps
    decoder = steps_of(model, hidden, mask, max_new_tokens)
    tokens = torch.full((rows, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
    active = torch.arange(rows, device=device)  # original row of each row still decoding
    last = torch.full((rows, 1), decoder_start_token_id, dtype=torch.long, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    warpers = _warpers(temperature, top_k, top_p) if do_sample else None
    steps = 0
    for step in range(max_new_tokens):
        logits = decoder(last).float()
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
            decoder.select(keep)
            active, last, done = active[keep], last[keep], done[keep]
    return tokens[:, :steps]
