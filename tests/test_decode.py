"""The lean seq2seq decoding loop and the engine's fast paths give the same outputs as model.generate."""

from __future__ import annotations

import pytest
import torch

from tinythinker.decode import StaticSteps, cache_argument, generate_seq2seq, host_syncs
from tinythinker.infer import Decoding, Engine
from tinythinker.student import build_scratch

# prompt i asks for i + 1 words: after a short training the outputs end at different steps
PROMPTS = [f"count {i} words please" for i in range(8)]
TARGETS = [" ".join(["stone"] * (i + 1)) for i in range(8)]


@pytest.fixture(scope="module")
def counting_student():
    """A tiny T5 trained until its greedy outputs have many different lengths."""
    size = {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "d_kv": 16, "dropout_rate": 0.0}
    student = build_scratch("t5-tiny", PROMPTS + TARGETS, vocab_size=300, overrides=size, seed=3)
    model, tokenizer = student.model, student.tokenizer
    batch = tokenizer(PROMPTS, padding=True, return_tensors="pt")
    labels = tokenizer(text_target=TARGETS, padding=True, return_tensors="pt")["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    torch.manual_seed(0)
    model.train()
    for _ in range(150):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    torch.set_num_threads(threads)
    return student


def _reference(model, tokenizer, prompts, max_new_tokens, **sampling):
    from transformers import GenerationConfig

    batch = tokenizer(prompts, padding=True, return_tensors="pt")
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, num_beams=1, do_sample=bool(sampling), pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=model.config.decoder_start_token_id, **sampling,
    )  # fmt: skip
    with torch.inference_mode():
        return model.generate(**batch, generation_config=config)[:, 1:]  # without the start token


def _ours(model, tokenizer, prompts, max_new_tokens, **options):
    batch = tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return generate_seq2seq(
            model, batch["input_ids"], batch["attention_mask"], max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, decoder_start_token_id=model.config.decoder_start_token_id, **options,
        )  # fmt: skip


def _lengths(tokens, eos):
    return [int((row == eos).nonzero()[0]) + 1 if (row == eos).any() else None for row in tokens]


@pytest.mark.parametrize("check_every,static_cache", [(1, False), (3, False), (1, True), (2, True)])
def test_greedy_with_dropped_rows_equals_model_generate(counting_student, check_every, static_cache):
    model, tokenizer = counting_student.model, counting_student.tokenizer
    expected = _reference(model, tokenizer, PROMPTS, 12)
    got = _ours(model, tokenizer, PROMPTS, 12, check_every=check_every, drop_ratio=0.1, static_cache=static_cache)
    lengths = _lengths(expected, tokenizer.eos_token_id)
    assert len({n for n in lengths if n is not None}) >= 4, lengths  # rows really finish at different steps
    width = min(got.shape[1], expected.shape[1])  # either may run a step or more past the last eos
    assert torch.equal(got[:, :width], expected[:, :width])
    pad = tokenizer.pad_token_id
    assert (expected[:, width:] == pad).all() and (got[:, width:] == pad).all()


def test_the_static_step_never_waits_for_the_device(counting_student):
    """What a CUDA graph captures must not sync with the host; the watch itself must see syncs."""
    model, tokenizer = counting_student.model, counting_student.tokenizer
    batch = tokenizer(PROMPTS[:5], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model.get_encoder()(**batch).last_hidden_state
        steps = StaticSteps(model, hidden, batch["attention_mask"], 10)
        last = torch.full((5, 1), model.config.decoder_start_token_id)
        first = steps.step(last)  # fills the cross-attention cache, as before a capture
        syncs, second = host_syncs(steps.step, first.argmax(-1, keepdim=True))
        assert syncs == set() and second.shape == first.shape
        assert host_syncs(lambda x: x.sum().item(), second)[0]  # .item() is seen
        assert host_syncs(lambda x: x[x > 0], second)[0]  # boolean indexing (nonzero) is seen


def test_the_cache_goes_under_the_keyword_the_model_takes():
    class Recent(torch.nn.Module):
        def forward(self, input_ids=None, cache=None, **kwargs): ...

    class Older(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, **kwargs): ...

    assert cache_argument(Recent()) == "cache"
    assert cache_argument(Older()) == "past_key_values"  # transformers 5.17: ``cache`` would be swallowed


def test_sampling_uses_the_same_warpers_and_draws_as_model_generate(counting_student):
    model, tokenizer = counting_student.model, counting_student.tokenizer
    settings = dict(temperature=1.7, top_k=5, top_p=0.9)
    torch.manual_seed(7)
    expected = _reference(model, tokenizer, PROMPTS, 10, **settings)
    torch.manual_seed(7)
    got = _ours(model, tokenizer, PROMPTS, 10, do_sample=True, drop_ratio=2.0, **settings)  # no drop: same draws
    assert torch.equal(got, expected[:, : got.shape[1]])
    torch.manual_seed(8)
    assert not torch.equal(_ours(model, tokenizer, PROMPTS, 10, do_sample=True, drop_ratio=2.0, **settings), got)


def test_a_repeated_input_encoded_once_samples_like_repeated_rows(counting_student):
    model, tokenizer = counting_student.model, counting_student.tokenizer
    prompts = [PROMPTS[2]] * 3 + [PROMPTS[6]] * 2 + [PROMPTS[2]]
    full = tokenizer(prompts, padding=True, return_tensors="pt")
    unique = tokenizer([PROMPTS[2], PROMPTS[6]], padding=True, return_tensors="pt")
    options = dict(max_new_tokens=10, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                   decoder_start_token_id=model.config.decoder_start_token_id, do_sample=True, temperature=1.5, drop_ratio=2.0)  # fmt: skip
    with torch.inference_mode():
        torch.manual_seed(3)
        expected = generate_seq2seq(model, full["input_ids"], full["attention_mask"], **options)
        torch.manual_seed(3)
        got = generate_seq2seq(model, unique["input_ids"], unique["attention_mask"], expand=torch.tensor([0, 0, 0, 1, 1, 0]), **options)
    assert torch.equal(got, expected)
    assert len({tuple(row.tolist()) for row in got[:3]}) > 1  # the samples of one prompt still differ


def test_engine_fast_paths_equal_the_straightforward_path(counting_student, monkeypatch):
    model, tokenizer = counting_student.model, counting_student.tokenizer
    prompts = [PROMPTS[i % 8] for i in (5, 0, 3, 5, 7, 0, 1, 5, 2, 6, 4, 3)]  # duplicates, mixed lengths
    decoding = Decoding(max_new_tokens=12)
    plain = Engine(model, tokenizer, batch_size=5, dedupe=False, drop_finished=False)
    fast = Engine(model, tokenizer, batch_size=5)
    seen = []
    original = Engine._generate
    monkeypatch.setattr(Engine, "_generate", lambda self, p, d: seen.append(len(p)) or original(self, p, d))
    expected = plain.generate(prompts, decoding)
    got = fast.generate(prompts, decoding)
    assert got == expected and len(set(expected)) >= 4
    assert seen == [len(prompts), 8]  # the fast engine generated each distinct prompt once
    sampled = Decoding(do_sample=True, max_new_tokens=12)
    seen.clear()
    fast.generate(prompts, sampled)
    assert seen == [len(prompts)]  # sampled prompts are never merged


def test_engine_batches_obey_the_prompt_token_budget(counting_student):
    """Long prompts get fewer rows per batch (attention memory grows with rows x length^2)."""
    model, tokenizer = counting_student.model, counting_student.tokenizer
    prompts = [PROMPTS[i % 8] + " and more" * (i % 5) for i in range(20)]
    engine = Engine(model, tokenizer, batch_size=8, max_batch_tokens=40)
    encoded = engine._encode_all(prompts)
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    batches = list(engine._batches(order, encoded))
    assert [i for batch in batches for i in batch] == order  # every prompt once, longest first
    widths = [max(len(encoded[i]) for i in batch) for batch in batches]
    assert all(len(b) * w <= 40 or len(b) == 1 for b, w in zip(batches, widths))
    assert all(len(b) <= 8 for b in batches) and len({len(b) for b in batches}) > 1
    unbounded = Engine(model, tokenizer, batch_size=5, max_batch_tokens=None)
    assert [len(b) for b in unbounded._batches(order, encoded)] == [5, 5, 5, 5]
    decoding = Decoding(max_new_tokens=12)
    assert engine.generate(prompts, decoding) == unbounded.generate(prompts, decoding)


def test_the_static_cache_has_the_decoder_depth():
    """T5 configs count encoder layers in num_hidden_layers; the static cache needs the decoder's."""
    size = {"d_model": 16, "d_ff": 32, "num_layers": 1, "num_decoder_layers": 3, "num_heads": 2, "d_kv": 8}
    student = build_scratch("t5-tiny", PROMPTS, vocab_size=300, overrides=size, seed=5)
    model, tokenizer = student.model.eval(), student.tokenizer
    assert model.config.num_layers != model.config.num_decoder_layers
    dynamic = _ours(model, tokenizer, PROMPTS, 6)
    assert torch.equal(_ours(model, tokenizer, PROMPTS, 6, static_cache=True), dynamic)
