"""Stage datasets for phase 1: reading a stage folder, the round-robin schedule, batch streams.

A stage folder (written by ``tinythinker build``) holds ``{stage}.jsonl`` files of rows
``{"id", "input", "target"}`` and ``manifest.json`` ``{"variant", "counts", "num_options", ...}``.

Batches: each stage draws from its own endless stream of *global* batches, the rows of one
optimizer step (``batch_size x world size x grad_accum``). The stream concatenates seeded
permutations of the rows (epoch after epoch), cuts them into chunks of ``group_batches`` global
batches, sorts each chunk by length (so a batch holds rows of similar length and little padding),
and shuffles the batch order inside the chunk. Every process computes the same stream and takes
its share of each micro-batch (``[rank::world]``), so the global batch is the same whatever the
number of processes. A stream's position is two integers, saved for resume.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import stages
from ..errors import ConfigError, InputError
from ..io import iter_jsonl

COT = stages.COT


def run_stages(variant: str) -> tuple[str, ...]:
    """The stage files a variant trains on (``cot`` is one stage of its own)."""
    return (COT,) if variant == COT else stages.variant_stages(variant)


def stage_schedule(variant: str, interval: int, num_options: int) -> list[tuple[str, int]]:
    """One cycle of the round-robin: (stage, steps) with interval / interval x num_options / interval."""
    return [(stage, interval * num_options if stage == stages.ANALYZE else interval) for stage in run_stages(variant)]


def stage_at(step: int, schedule: Sequence[tuple[str, int]]) -> str:
    """The stage trained at 0-based optimizer step ``step``."""
    position = step % sum(n for _, n in schedule)
    for stage, n in schedule:
        if position < n:
            return stage
        position -= n
    raise AssertionError("unreachable")


@dataclass
class StageData:
    variant: str
    num_options: int
    rows: dict[str, list[tuple[str, str]]]  # stage -> [(input, target)]
    manifest: dict[str, Any]


def read_stage_dir(folder: str | Path, variant: str | None = None, num_options: int | None = None) -> StageData:
    """Read and check a stage folder; ``variant`` / ``num_options`` default to the manifest's."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not folder.is_dir():
        raise InputError(folder, "stage dataset folder not found")
    if not manifest_path.is_file():
        raise InputError(manifest_path, "file not found (a stage folder is written by `tinythinker build`)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(manifest_path, f"malformed JSON ({exc.msg})", line=exc.lineno) from None
    built = manifest.get("variant")
    if built is None:
        raise InputError(manifest_path, "missing field", field="variant")
    if built != COT and built not in stages.VARIANTS:
        raise InputError(manifest_path, f"unknown variant {built!r}", field="variant")
    if variant is not None and variant != built:
        raise ConfigError(f"variant: {variant!r} asked, but {folder} was built for variant {built!r}")
    options = num_options if num_options is not None else manifest.get("num_options")
    if not isinstance(options, int) or options < 1:
        raise InputError(manifest_path, "must be a positive integer (or set num_options in the config)", field="num_options")
    rows: dict[str, list[tuple[str, str]]] = {}
    for stage in run_stages(built):
        path = folder / f"{stage}.jsonl"
        stage_rows = []
        for line, obj in iter_jsonl(path):
            for name in ("input", "target"):
                if not isinstance(obj.get(name), str) or not obj[name].strip():
                    raise InputError(path, "must be a non-empty string", line=line, field=name)
            stage_rows.append((obj["input"], obj["target"]))
        if not stage_rows:
            raise InputError(path, "no rows")
        rows[stage] = stage_rows
    return StageData(built, options, rows, manifest)


class BatchStream:
    """An endless, seeded stream of global batches (lists of row indices) over one stage's rows."""

    def __init__(self, lengths: Sequence[int], global_batch: int, seed: int, group_by_length: bool = True, group_batches: int = 50):
        self.lengths = list(lengths)
        self.global_batch = global_batch
        self.seed = seed
        self.group_by_length = group_by_length
        # a chunk never spans much more than one pass over the rows, so a batch rarely repeats a row
        self.group_batches = max(1, min(group_batches, len(self.lengths) // global_batch))
        self.chunk = 0  # index of the current chunk
        self.position = 0  # next batch inside it
        self._batches: list[list[int]] | None = None

    def _epoch(self, epoch: int) -> list[int]:
        order = list(range(len(self.lengths)))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def _chunk_batches(self, chunk: int) -> list[list[int]]:
        size = self.global_batch * self.group_batches
        start, n = chunk * size, len(self.lengths)
        indices: list[int] = []
        epoch, offset = divmod(start, n)
        while len(indices) < size:
            order = self._epoch(epoch)
            indices.extend(order[offset : offset + size - len(indices)])
            epoch, offset = epoch + 1, 0
        if self.group_by_length:
            indices.sort(key=lambda i: -self.lengths[i])  # stable: ties keep the shuffled order
        batches = [indices[i : i + self.global_batch] for i in range(0, size, self.global_batch)]
        random.Random(self.seed * 7_919 + chunk).shuffle(batches)
        return batches

    def next(self) -> list[int]:
        if self._batches is None:
            self._batches = self._chunk_batches(self.chunk)
        if self.position >= len(self._batches):
            self.chunk, self.position = self.chunk + 1, 0
            self._batches = self._chunk_batches(self.chunk)
        batch = self._batches[self.position]
        self.position += 1
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"chunk": self.chunk, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.chunk, self.position, self._batches = int(state["chunk"]), int(state["position"]), None


def tokenize_rows(tokenizer, rows: Sequence[tuple[str, str]], seq2seq: bool, max_source: int, max_target: int) -> list[tuple[list[int], list[int]]]:
    """(input ids, target ids) per row. Inputs keep their end (the stage cue) when truncated.

    Seq2seq: the tokenizer's own special tokens on both sides. Causal: prompt ids, then
    separator + target + eos (``tinythinker.student``).
    """
    from ..student import causal_completion_ids, causal_prompt_ids

    out = []
    if seq2seq:
        sources = tokenizer([r[0] for r in rows])["input_ids"]
        targets = tokenizer(text_target=[r[1] for r in rows])["input_ids"]
    else:
        sources = [causal_prompt_ids(tokenizer, r[0]) for r in rows]
        targets = [causal_completion_ids(tokenizer, r[1]) for r in rows]
    for source, target in zip(sources, targets):
        out.append((list(source)[-max_source:], list(target)[:max_target]))
    return out


def collate(examples: Sequence[tuple[list[int], list[int]]], pad_id: int, seq2seq: bool) -> dict[str, Any]:
    """Right-padded tensors; labels are -100 on padding (and on the prompt for causal students)."""
    import torch

    if seq2seq:
        width = max(len(s) for s, _ in examples)
        target_width = max(len(t) for _, t in examples)
        ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full((len(examples), target_width), -100, dtype=torch.long)
        for row, (source, target) in enumerate(examples):
            ids[row, : len(source)] = torch.tensor(source)
            mask[row, : len(source)] = 1
            labels[row, : len(target)] = torch.tensor(target)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
    width = max(len(s) + len(t) for s, t in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, (prompt, completion) in enumerate(examples):
        seq = prompt + completion
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, len(prompt) : len(seq)] = torch.tensor(completion)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
