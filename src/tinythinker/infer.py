"""The three-stage inference engine (METHOD.md section 5): recall -> analyze each option -> summarize.

Features:
- Every variant of METHOD.md section 3 and the ``cot`` baseline; the strings come from ``tinythinker.stages``.
- Batched across questions, options and self-consistency samples; prompts are sorted by length
  before batching to cut padding.
- Per-stage decoding (``ChainDecoding``): greedy, or sampled with temperature / top_k / top_p.
- The stages are callable one by one (``recall``, ``analyze``, ``summarize``) and chains can start
  from given recalls (``chains(..., recalls=...)``), as phase 2 needs.
- Self-consistency: N sampled chains per question and a majority vote. Unparsed answers do not
  vote; a tie goes to the tied answer reached first (lowest sample index) and is reported.
- ``Engine.generate`` is the single place that calls ``model.generate``.

Assumptions: a seq2seq student reads the stage input and writes the target; a causal student
continues ``prompt + COMPLETION_SEPARATOR`` and stops at eos. Seeds: ``predict(..., seed=)``
reseeds torch before sampling so that results repeat for the same batch size.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from . import stages
from .data.schema import Question
from .decode import generate_seq2seq
from .student import causal_prompt_ids


@dataclass(frozen=True)
class Decoding:
    """How one stage decodes. ``do_sample=False`` is greedy; top_k 0 and top_p 1.0 are off."""

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_new_tokens: int = 200


GREEDY = Decoding()


def sampled(temperature: float = 0.7, top_k: int = 0, top_p: float = 1.0, max_new_tokens: int = 200) -> Decoding:
    return Decoding(True, temperature, top_k, top_p, max_new_tokens)


@dataclass(frozen=True)
class ChainDecoding:
    """Decoding per stage; the cot baseline uses ``summarize``'s setting for its single output."""

    recall: Decoding = GREEDY
    analyze: Decoding = GREEDY
    summarize: Decoding = GREEDY

    @classmethod
    def greedy(cls, max_new_tokens: int = 200) -> "ChainDecoding":
        d = Decoding(max_new_tokens=max_new_tokens)
        return cls(d, d, d)

    @classmethod
    def self_consistency(cls, temperature: float = 0.7, top_k: int = 0, top_p: float = 1.0, max_new_tokens: int = 200) -> "ChainDecoding":
        """METHOD.md section 5: recall and analyze sampled, summarize greedy."""
        s = sampled(temperature, top_k, top_p, max_new_tokens)
        return cls(s, s, Decoding(max_new_tokens=max_new_tokens))


@dataclass
class Chain:
    """One reasoning chain: the texts of every stage used and the parsed answer.

    For the cot baseline, ``summary`` holds the whole generated text.
    """

    recall: str | None
    analyses: dict[str, str] | None
    summary: str
    answer: str | None


@dataclass
class Prediction:
    """One question's result: its chains, the vote and correctness."""

    id: str
    gold: str
    prediction: str | None
    correct: bool
    votes: dict[str, int]
    tie: bool
    tied: list[str]
    chains: list[Chain] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def majority_vote(answers: Sequence[str | None]) -> tuple[str | None, dict[str, int], list[str]]:
    """(winner, votes, tied answers). Unparsed answers (None) do not vote; no vote gives None.

    Among answers with the most votes the one reached first (lowest sample index) wins; ``tied``
    lists them in that order when there is more than one, else it is empty.
    """
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return None, {}, []
    top = max(votes.values())
    leaders = [a for a in dict.fromkeys(a for a in answers if a is not None) if votes[a] == top]
    return leaders[0], dict(sorted(votes.items())), leaders if len(leaders) > 1 else []


def default_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16_supported(device) -> bool:
    import torch

    return getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_bf16_supported()


class Engine:
    """Batched three-stage generation with one student.

    ``batch_size`` counts prompts per generation batch, and ``max_batch_tokens`` bounds a batch's
    padded prompt tokens (rows x longest prompt; None: no bound); ``max_input_tokens`` truncates prompts
    from the left (the stage cue at the end is kept). ``bf16`` autocasts on devices that support
    it (default: on for CUDA with bf16 support).

    Speed options (defaults on; each off gives the straightforward path, for comparisons):
    ``dedupe``: identical prompts under greedy decoding are generated once (exact: greedy decoding
    is a function of the prompt). ``drop_finished``: encoder-decoder students decode with
    ``tinythinker.decode.generate_seq2seq``, which drops finished rows from the batch and encodes a
    prompt repeated in a batch (self-consistency and phase-2 samples) once, instead of
    ``model.generate`` (which computes every row until the longest one ends); causal students
    always use ``model.generate``. ``cuda_graphs`` (with ``drop_finished``, on CUDA): a static KV
    cache and the decoder step replayed as a CUDA graph (``tinythinker.decode.StaticSteps``); a
    student whose step syncs with the host (BART's position embeddings) runs it eagerly instead.
    """

    def __init__(
        self,
        model,
        tokenizer,
        batch_size: int = 64,
        max_input_tokens: int | None = None,
        device=None,
        bf16: bool | None = None,
        dedupe: bool = True,
        drop_finished: bool = True,
        cuda_graphs: bool = True,
        max_batch_tokens: int | None = 131072,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        import torch

        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.bf16 = bf16_supported(self.device) if bf16 is None else bf16
        self.is_seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        self.dedupe = dedupe
        self.drop_finished = drop_finished
        self.cuda_graphs = cuda_graphs
        self.max_batch_tokens = max_batch_tokens

    # -- the one call into model.generate ------------------------------------------------------

    def _encode_all(self, prompts: Sequence[str]) -> list[list[int]]:
        if self.is_seq2seq:
            encoded = [list(ids) for ids in self.tokenizer(list(prompts))["input_ids"]]
        else:
            encoded = [causal_prompt_ids(self.tokenizer, p) for p in prompts]
        if self.max_input_tokens:
            encoded = [ids[-self.max_input_tokens :] if len(ids) > self.max_input_tokens else ids for ids in encoded]
        return encoded

    def generate(self, prompts: Sequence[str], decoding: Decoding = GREEDY) -> list[str]:
        """Generate one completion per prompt (same order), batched by length.

        The generation settings are ``decoding`` alone: a hub model's own generation defaults
        (beams, repetition penalties, ...) are ignored so that every student decodes the same way.
        """
        if not prompts:
            return []
        if self.dedupe and not decoding.do_sample:
            unique = list(dict.fromkeys(prompts))
            if len(unique) < len(prompts):
                texts = dict(zip(unique, self._generate(unique, decoding)))
                return [texts[p] for p in prompts]
        return self._generate(prompts, decoding)

    def _batches(self, order: list[int], encoded: list[list[int]]):
        """Consecutive slices of ``order`` (longest prompt first) of at most ``batch_size`` prompts
        and ``max_batch_tokens`` padded prompt tokens (long summarize inputs get smaller batches:
        T5's attention scores grow with rows x length squared)."""
        begin = 0
        while begin < len(order):
            rows = self.batch_size
            if self.max_batch_tokens:
                rows = max(1, min(rows, self.max_batch_tokens // max(len(encoded[order[begin]]), 1)))
            yield order[begin : begin + rows]
            begin += rows

    def _generate(self, prompts: Sequence[str], decoding: Decoding) -> list[str]:
        import torch
        from transformers import GenerationConfig

        encoded = self._encode_all(prompts)
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        pad = self.tokenizer.pad_token_id
        eos = self.tokenizer.eos_token_id
        start = getattr(self.model.config, "decoder_start_token_id", None)
        own_loop = self.is_seq2seq and self.drop_finished
        on_cpu = self.device.type == "cpu"
        graphs = own_loop and self.cuda_graphs and self.device.type == "cuda"
        config = None
        if not own_loop:
            config = GenerationConfig(
                max_new_tokens=decoding.max_new_tokens,
                do_sample=decoding.do_sample,
                num_beams=1,
                pad_token_id=pad,
                eos_token_id=eos,
                decoder_start_token_id=start,
                **(dict(temperature=decoding.temperature, top_k=decoding.top_k, top_p=decoding.top_p) if decoding.do_sample else {}),
            )
        outputs: list[str] = [""] * len(prompts)
        was_training = self.model.training
        self.model.eval()
        try:
            for batch in self._batches(order, encoded):
                expand = None
                inputs = batch
                if own_loop:  # a prompt repeated in the batch (sampled several times) is encoded once
                    first: dict[tuple[int, ...], int] = {}
                    unique, rows = [], []
                    for i in batch:
                        key = tuple(encoded[i])
                        if key not in first:
                            first[key] = len(unique)
                            unique.append(i)
                        rows.append(first[key])
                    if len(unique) < len(batch):
                        inputs, expand = unique, torch.tensor(rows, dtype=torch.long, device=self.device)
                width = max(len(encoded[i]) for i in inputs)
                ids = torch.full((len(inputs), width), pad, dtype=torch.long)
                mask = torch.zeros((len(inputs), width), dtype=torch.long)
                for row, i in enumerate(inputs):
                    seq = torch.tensor(encoded[i], dtype=torch.long)
                    if self.is_seq2seq:  # right padding for encoders, left padding to continue a prompt
                        ids[row, : len(seq)], mask[row, : len(seq)] = seq, 1
                    else:
                        ids[row, width - len(seq) :], mask[row, width - len(seq) :] = seq, 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    if own_loop:
                        out = generate_seq2seq(
                            self.model, ids, mask, max_new_tokens=decoding.max_new_tokens, eos_token_id=eos,
                            pad_token_id=pad, decoder_start_token_id=start, do_sample=decoding.do_sample,
                            temperature=decoding.temperature, top_k=decoding.top_k, top_p=decoding.top_p,
                            check_every=1 if on_cpu else 8, expand=expand, static_cache=graphs,
                            drop_ratio=0.5 if graphs else 0.25,  # each drop costs a new capture
                        )  # fmt: skip
                    else:
                        out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
                if not self.is_seq2seq:
                    out = out[:, width:]
                texts = self.tokenizer.batch_decode(out.tolist(), skip_special_tokens=True, clean_up_tokenization_spaces=False)
                for i, text in zip(batch, texts):
                    outputs[i] = text.strip()
        finally:
            self.model.train(was_training)
        return outputs

    # -- the stages ----------------------------------------------------------------------------

    def recall(self, questions: Sequence[Question], decoding: Decoding = GREEDY) -> list[str]:
        """One recall per question, normalised (ends with '.')."""
        texts = self.generate([stages.recall_input(q) for q in questions], decoding)
        return [stages.normalize_recall(t) for t in texts]

    def analyze(self, questions: Sequence[Question], recalls: Sequence[str | None], decoding: Decoding = GREEDY) -> list[dict[str, str]]:
        """One explanation per option of each question (label -> text); recalls may be None (analyze_summarize)."""
        prompts, where = [], []
        for index, (q, recall) in enumerate(zip(questions, recalls, strict=True)):
            for label in q.labels:
                prompts.append(stages.analyze_input(q, label, recall))
                where.append((index, label))
        texts = self.generate(prompts, decoding)
        analyses: list[dict[str, str]] = [{} for _ in questions]
        for (index, label), text in zip(where, texts):
            analyses[index][label] = stages.normalize_explanation(text)
        return analyses

    def summarize(
        self,
        questions: Sequence[Question],
        recalls: Sequence[str | None] | None = None,
        analyses: Sequence[dict[str, str] | None] | None = None,
        decoding: Decoding = GREEDY,
    ) -> list[str]:
        recalls = recalls if recalls is not None else [None] * len(questions)
        analyses = analyses if analyses is not None else [None] * len(questions)
        prompts = [stages.summarize_input(q, r, a) for q, r, a in zip(questions, recalls, analyses, strict=True)]
        return self.generate(prompts, decoding)

    def chains(
        self,
        questions: Sequence[Question],
        variant: str = stages.FULL_VARIANT,
        decoding: ChainDecoding = ChainDecoding(),
        recalls: Sequence[str] | None = None,
    ) -> list[Chain]:
        """One chain per question (repeat a question in the list to sample it several times).

        ``recalls`` given: the recall stage is skipped and these recalls are used as they are.
        """
        if variant == stages.COT:
            texts = self.generate([stages.cot_input(q) for q in questions], decoding.summarize)
            return [Chain(None, None, t, stages.parse_answer(t, q.labels)) for q, t in zip(questions, texts)]
        uses_recall, uses_analyze = stages.VARIANTS[stages.check_variant(variant)]
        if recalls is not None and not uses_recall:
            raise ValueError(f"variant {variant} has no recall stage")
        kept: list[str | None] = [None] * len(questions)
        if uses_recall:
            kept = list(recalls) if recalls is not None else self.recall(questions, decoding.recall)
        analyses: list[dict[str, str] | None] = [None] * len(questions)
        if uses_analyze:
            analyses = list(self.analyze(questions, kept, decoding.analyze))
        summaries = self.summarize(questions, kept, analyses, decoding.summarize)
        return [
            Chain(r, a, s, stages.parse_answer(s, q.labels)) for q, r, a, s in zip(questions, kept, analyses, summaries)
        ]

    def predict(
        self,
        questions: Sequence[Question],
        variant: str = stages.FULL_VARIANT,
        samples: int = 1,
        decoding: ChainDecoding | None = None,
        seed: int | None = 42,
    ) -> list[Prediction]:
        """Answer every question: greedy (samples=1) or self-consistency with ``samples`` chains.

        Default decoding: greedy for one sample, ``ChainDecoding.self_consistency()`` for several.
        """
        if samples < 1:
            raise ValueError("samples must be at least 1")
        if decoding is None:
            decoding = ChainDecoding() if samples == 1 else ChainDecoding.self_consistency()
        if seed is not None:
            set_seed(seed)
        repeated = [q for q in questions for _ in range(samples)]
        all_chains = self.chains(repeated, variant, decoding)
        results = []
        for index, q in enumerate(questions):
            chains = all_chains[index * samples : (index + 1) * samples]
            winner, votes, tied = majority_vote([c.answer for c in chains])
            results.append(Prediction(q.id, q.answer, winner, winner == q.answer, votes, bool(tied), tied, chains))
        return results


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def accuracy(predictions: Sequence[Prediction]) -> float:
    return sum(p.correct for p in predictions) / len(predictions) if predictions else 0.0


def summary_metrics(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """accuracy, n, correct, unparsed (no answer), ties."""
    return {
        "accuracy": accuracy(predictions),
        "n": len(predictions),
        "correct": sum(p.correct for p in predictions),
        "unparsed": sum(p.prediction is None for p in predictions),
        "ties": sum(p.tie for p in predictions),
    }
