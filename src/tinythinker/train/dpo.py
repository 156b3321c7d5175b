"""Phase 2 (METHOD.md section 6): self-reflection with iterative DPO on the student's own reasoning.

Features:
- Iterations 1..K: policy and reference both start from the previous iteration's best model
  (iteration 1: phase 1's best). Each iteration mines preference pairs from the student's own
  sampled chains on the training questions (``tinythinker.train.mining``), precomputes the frozen
  reference's log-probabilities once, then trains with DPO + alpha x NLL
  (``tinythinker.train.preference``).
- Recall and analyze pair sets alternate in blocks whose step counts are proportional to the
  sets' sizes; the full greedy pipeline is evaluated on the validation questions after every block
  cycle. An iteration's best model is the start model unless a later evaluation is strictly better,
  so phase 2 never keeps a model worse on validation than the one it started from.
- Ablations: ``dpo_on`` = ``recall``, ``analyze`` or ``recall_analyze``.
- Resumable at iteration level (``iter-K/result.json`` marks a finished iteration; mined pairs and
  reference log-probabilities are kept) and at step level (``iter-K/checkpoint`` after every block
  cycle: model, optimizer, scheduler, RNG and batch-stream positions).

Outputs in ``out``: ``iter-K/`` (``pairs_recall.jsonl``, ``pairs_analyze.jsonl``, ``mining.json``,
``reference_logps.json``, ``best/``, ``logs/metrics.jsonl``, ``result.json``), ``summary.json``
(validation and test accuracy per iteration) and ``best/`` (the kept model).

Assumptions: one process (phase 2 is cheap next to phase 1); the student was trained on a variant
with the stages named by ``dpo_on``; the rationale file is the one phase 1 was built from.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import stages
from ..config import to_dict
from ..data.schema import Question, read_questions
from ..errors import ConfigError
from ..io import iter_jsonl, read_jsonl, write_json, write_jsonl
from ..student import load_student, save_student
from ..teacher.records import validate_record
from .data import BatchStream, collate, tokenize_rows
from .mining import MiningStats, analyze_pairs, recall_pairs
from .preference import preference_loss, sequence_logps

DPO_TARGETS = {"recall": (stages.RECALL,), "analyze": (stages.ANALYZE,), "recall_analyze": (stages.RECALL, stages.ANALYZE)}


@dataclass
class ReflectConfig:
    """Phase-2 configuration (YAML keys; override any with ``key=value``).

    Fields:
        model: the phase-1 best model folder (``RUN/best``).
        data: prepared data folder holding ``train.jsonl``, ``valid.jsonl`` and ``test.jsonl``.
        rationales: the teacher's ``rationales.jsonl`` (chosen-side top-ups when own chains fall short).
        out: output folder (an interrupted run in it is resumed).
        variant: the student's stage variant; empty: read from the model folder.
        dpo_on: ``recall``, ``analyze`` or ``recall_analyze`` (the ablations of METHOD.md section 6).
        iterations: K, the number of mine-then-train rounds (reference 5).
        recall_samples: chains sampled per training question for recall pairs (reference 10).
        analyze_samples: analysis sets sampled per chosen recall for analyze pairs (reference 10).
        max_chosen_recalls: chosen recalls per question whose analyses are sampled (0: all).
        temperature / top_k / top_p: sampling of the recall and analyze stages (reference 0.7, off, off).
        mine_limit: mine on the first N training questions only (0: all).
        max_new_tokens: generation limit per stage (mining and evaluation).
        gen_batch_size: prompts per generation batch (mining and evaluation).
        beta: DPO temperature (reference 0.5).
        alpha: weight of the chosen side's NLL (reference 0.5; 0 is plain DPO).
        batch_size: pairs per optimizer step.
        lr / warmup_ratio / weight_decay / max_grad_norm: AdamW with cosine decay after linear warmup.
        epochs: passes over the iteration's pairs (used when ``max_steps`` is 0).
        max_steps: optimizer steps per iteration (0: from ``epochs``).
        block_steps: steps of one recall + analyze block cycle, split in proportion to the pair counts;
            validation accuracy is measured after every cycle.
        max_source_tokens / max_target_tokens: prompt (left) and response (right) truncation.
        precision: ``auto`` (bf16 where supported, else fp32), ``bf16`` or ``fp32``.
        cpu: stay on the CPU even when a GPU is present.
        eval_limit: evaluate on the first N validation questions only (0: all).
        test: also measure each iteration's best model on ``test.jsonl``.
        seed: seeds sampling, batching and training.
        resume: continue an interrupted run in ``out``.
    """

    model: str = ""
    data: str = ""
    rationales: str = ""
    out: str = "runs/phase2"
    variant: str | None = None
    dpo_on: str = "recall_analyze"
    iterations: int = 5
    recall_samples: int = 10
    analyze_samples: int = 10
    max_chosen_recalls: int = 0
    temperature: float = 0.7
    top_k: int = 0
    top_p: float = 1.0
    mine_limit: int = 0
    max_new_tokens: int = 200
    gen_batch_size: int = 256
    beta: float = 0.5
    alpha: float = 0.5
    batch_size: int = 32
    lr: float = 5e-6
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    epochs: float = 1.0
    max_steps: int = 0
    block_steps: int = 20
    max_source_tokens: int = 512
    max_target_tokens: int = 256
    precision: str = "auto"
    cpu: bool = False
    eval_limit: int = 0
    test: bool = True
    seed: int = 42
    resume: bool = True

    def validate(self) -> None:
        for name in ("model", "data"):
            if not getattr(self, name):
                raise ConfigError(f"{name}: required")
        if self.dpo_on not in DPO_TARGETS:
            raise ConfigError(f"dpo_on: expected one of {', '.join(DPO_TARGETS)}, got {self.dpo_on!r}")
        if self.variant is not None:
            uses_recall, uses_analyze = stages.VARIANTS.get(self.variant, (False, False))
            needed = DPO_TARGETS[self.dpo_on]
            if (stages.RECALL in needed and not uses_recall) or (stages.ANALYZE in needed and not uses_analyze):
                raise ConfigError(f"dpo_on: {self.dpo_on} needs a student variant with those stages, not {self.variant!r}")
        for name in ("iterations", "recall_samples", "analyze_samples", "batch_size", "block_steps", "max_new_tokens", "gen_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if self.max_steps < 0 or (self.max_steps == 0 and self.epochs <= 0):
            raise ConfigError("max_steps / epochs: give max_steps > 0 or epochs > 0")
        if self.beta <= 0 or self.alpha < 0:
            raise ConfigError("beta must be positive and alpha not negative")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError("warmup_ratio: must be in [0, 1)")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision: expected auto, bf16 or fp32, got {self.precision!r}")


# ---------------------------------------------------------------- teacher rationales


def read_teacher(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Rationale records by question id (empty when no file is given)."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not path:
        return by_id
    for line, obj in iter_jsonl(path):
        record = validate_record(obj, path, line)
        by_id[record["id"]].append(record)
    return by_id


# ---------------------------------------------------------------- mining


def mine(engine, questions: list[Question], variant: str, teacher: dict[str, list[dict]], config: ReflectConfig, seed: int) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """Recall and analyze pairs from the student's own chains (METHOD.md section 6)."""
    from ..infer import GREEDY, ChainDecoding, Decoding, set_seed

    sample = Decoding(True, config.temperature, config.top_k, config.top_p, config.max_new_tokens)
    greedy = Decoding(max_new_tokens=config.max_new_tokens)
    rng = random.Random(seed)
    set_seed(seed)
    targets = DPO_TARGETS[config.dpo_on]
    started = time.perf_counter()

    chains = engine.chains([q for q in questions for _ in range(config.recall_samples)], variant, ChainDecoding(sample, greedy, greedy))
    recall_stats, pairs_recall, chosen_recalls = MiningStats(), [], {}
    for index, question in enumerate(questions):
        own = chains[index * config.recall_samples : (index + 1) * config.recall_samples]
        teacher_recalls = [r.get("recall", "") for r in teacher.get(question.id, [])]
        pairs, chosen, stats = recall_pairs(question, own, teacher_recalls, rng)
        recall_stats.add(stats)
        pairs_recall += pairs
        chosen_recalls[question.id] = chosen[: config.max_chosen_recalls or None]
    if stages.RECALL not in targets:
        pairs_recall = []

    analyze_stats, pairs_analyze, sampled = MiningStats(), [], []
    if stages.ANALYZE in targets:
        jobs = [(q, r) for q in questions for r in chosen_recalls[q.id]]
        repeated = [q for q, _ in jobs for _ in range(config.analyze_samples)]
        recalls = [r for _, r in jobs for _ in range(config.analyze_samples)]
        sampled = engine.chains(repeated, variant, ChainDecoding(GREEDY, sample, greedy), recalls=recalls) if jobs else []
        for index, (question, recall) in enumerate(jobs):
            own = sampled[index * config.analyze_samples : (index + 1) * config.analyze_samples]
            teacher_sets = [r.get("analyze") or {} for r in teacher.get(question.id, [])]
            pairs, stats = analyze_pairs(question, recall, own, teacher_sets, rng)
            analyze_stats.add(stats)
            pairs_analyze += pairs
    correct = sum(chain.answer == questions[i // config.recall_samples].answer for i, chain in enumerate(chains))
    report = {
        "questions": len(questions),
        "chains_sampled": len(chains) + len(sampled),
        "recall_chain_accuracy": correct / max(1, len(chains)),
        "recall": recall_stats.to_dict() | {"pairs": len(pairs_recall)},
        "analyze": analyze_stats.to_dict() | {"pairs": len(pairs_analyze)},
        "seconds": time.perf_counter() - started,
    }
    return pairs_recall, pairs_analyze, report


# ---------------------------------------------------------------- log-probabilities


def pair_batches(tokenizer, pairs: list[dict], seq2seq: bool, config: ReflectConfig):
    """Tokenized (chosen, rejected) rows per pair: lists of (source ids, target ids)."""
    chosen = tokenize_rows(tokenizer, [(p["prompt"], p["chosen"]) for p in pairs], seq2seq, config.max_source_tokens, config.max_target_tokens)
    rejected = tokenize_rows(tokenizer, [(p["prompt"], p["rejected"]) for p in pairs], seq2seq, config.max_source_tokens, config.max_target_tokens)
    return chosen, rejected


def batch_logps(model, rows, pad_id: int, seq2seq: bool, device):
    """(summed response log-probabilities, response token counts) for a list of tokenized rows."""
    batch = {k: v.to(device) for k, v in collate(rows, pad_id, seq2seq).items()}
    if seq2seq:
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=decoder_input_ids).logits
    else:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return sequence_logps(logits, batch["labels"], causal=not seq2seq)


def reference_logps(model, tokenized, pad_id: int, seq2seq: bool, device, batch_size: int) -> dict[str, list[list[float]]]:
    """Frozen-model log-probabilities of every pair's chosen and rejected side, per pair set."""
    import torch

    was_training = model.training
    model.eval()
    result: dict[str, list[list[float]]] = {}
    with torch.inference_mode():
        for name, (chosen, rejected) in tokenized.items():
            values = []
            for start in range(0, len(chosen), batch_size):
                c, _ = batch_logps(model, chosen[start : start + batch_size], pad_id, seq2seq, device)
                r, _ = batch_logps(model, rejected[start : start + batch_size], pad_id, seq2seq, device)
                values += [[float(a), float(b)] for a, b in zip(c.tolist(), r.tolist())]
            result[name] = values
    model.train(was_training)
    return result


def block_schedule(counts: dict[str, int], block_steps: int) -> list[tuple[str, int]]:
    """One block cycle: each non-empty pair set gets steps in proportion to its size (at least 1)."""
    total = sum(counts.values())
    present = [(name, n) for name, n in counts.items() if n]
    if len(present) == 1:
        return [(present[0][0], block_steps)]
    steps = [(name, max(1, round(block_steps * n / total))) for name, n in present]
    return steps


# ---------------------------------------------------------------- one iteration


def device_and_bf16(config: ReflectConfig):
    """The device to use and whether to autocast to bf16 there."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() and not config.cpu else "cpu")
    supported = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if config.precision == "bf16" and not supported:
        raise ConfigError("precision: bf16 needs a GPU that supports it; use auto or fp32")
    return device, config.precision != "fp32" and supported


def validation_accuracy(model, tokenizer, questions: list[Question], variant: str, config: ReflectConfig, device, bf16: bool) -> float:
    """Greedy full-pipeline accuracy (by generating and parsing)."""
    from ..infer import ChainDecoding, Engine, accuracy

    engine = Engine(model, tokenizer, batch_size=config.gen_batch_size, max_input_tokens=config.max_source_tokens, device=device, bf16=bf16)
    return accuracy(engine.predict(questions, variant, 1, ChainDecoding.greedy(config.max_new_tokens), seed=None))


def _save_checkpoint(folder: Path, model, optimizer, scheduler, state: dict[str, Any]) -> None:
    """model + optimizer + scheduler + RNG + trainer state, swapped in atomically."""
    import torch

    tmp, final = folder / "checkpoint.tmp", folder / "checkpoint"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = {"python": random.getstate(), "torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng}, tmp / "state.pt")
    write_json(tmp / "trainer_state.json", state)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def _load_checkpoint(folder: Path, model, optimizer, scheduler) -> dict[str, Any] | None:
    import torch

    final = folder / "checkpoint"
    if not (final / "trainer_state.json").is_file():
        return None
    saved = torch.load(final / "state.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    random.setstate(saved["rng"]["python"])
    torch.set_rng_state(saved["rng"]["torch"])
    if saved["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
    return json.loads((final / "trainer_state.json").read_text(encoding="utf-8"))


def run_iteration(k: int, start: Path, config: ReflectConfig, variant: str, splits: dict[str, list[Question]], teacher, start_accuracy: float) -> dict[str, Any]:
    """Mine, precompute the reference, train; returns the iteration's result."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers import get_cosine_schedule_with_warmup

    from ..infer import Engine, set_seed
    from .data import stage_at

    folder = Path(config.out) / f"iter-{k}"
    folder.mkdir(parents=True, exist_ok=True)
    student = load_student(start)
    model, tokenizer, seq2seq = student.model, student.tokenizer, student.is_seq2seq
    device, bf16 = device_and_bf16(config)
    model.to(device)
    seed = config.seed + 1000 * k
    timings: dict[str, float] = {}

    # 1. mining (the pair files are complete once mining.json exists)
    mining_path = folder / "mining.json"
    if not mining_path.is_file():
        started = time.perf_counter()
        engine = Engine(model, tokenizer, batch_size=config.gen_batch_size, max_input_tokens=config.max_source_tokens, device=device, bf16=bf16)
        pairs_recall, pairs_analyze, report = mine(engine, splits["train"][: config.mine_limit or None], variant, teacher, config, seed)
        write_jsonl(folder / "pairs_recall.jsonl", pairs_recall)
        write_jsonl(folder / "pairs_analyze.jsonl", pairs_analyze)
        write_json(mining_path, report)
        timings["mining"] = time.perf_counter() - started
    mining = json.loads(mining_path.read_text(encoding="utf-8"))
    pairs = {stages.RECALL: read_jsonl(folder / "pairs_recall.jsonl"), stages.ANALYZE: read_jsonl(folder / "pairs_analyze.jsonl")}
    pairs = {name: rows for name, rows in pairs.items() if rows}
    tokenized = {name: pair_batches(tokenizer, rows, seq2seq, config) for name, rows in pairs.items()}

    # 2. reference log-probabilities of the frozen start model, computed once
    reference_path = folder / "reference_logps.json"
    if not reference_path.is_file():
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            write_json(reference_path, reference_logps(model, tokenized, tokenizer.pad_token_id, seq2seq, device, config.batch_size))
        timings["reference"] = time.perf_counter() - started
    reference = json.loads(reference_path.read_text(encoding="utf-8"))

    meta = {"variant": variant, "phase": 2, "iteration": k, "start": str(start)}
    n_pairs = sum(len(rows) for rows in pairs.values())
    result: dict[str, Any] = {"iteration": k, "start": str(start), "pairs": {n: len(r) for n, r in pairs.items()}, "mining": mining}
    best_dir = folder / "best"
    if not best_dir.is_dir():
        shutil.copytree(start, best_dir)
    if not n_pairs:  # nothing to learn from: the start model is kept
        result.update(steps=0, valid_accuracy=start_accuracy, best_step=0, evals=[], seconds=timings)
        return result

    # 3. training
    schedule = block_schedule({n: len(r) for n, r in pairs.items()}, config.block_steps)
    cycle = sum(n for _, n in schedule)
    steps = config.max_steps or max(1, math.ceil(config.epochs * n_pairs / config.batch_size))
    set_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    streams = {
        name: BatchStream([len(s) + len(t) for s, t in chosen], min(config.batch_size, len(chosen)), seed + i)
        for i, (name, (chosen, _)) in enumerate(tokenized.items())
    }
    state: dict[str, Any] = {"step": 0, "best_accuracy": start_accuracy, "best_step": 0, "evals": []}
    if config.resume:
        state = _load_checkpoint(folder, model, optimizer, scheduler) or state
        for name, stream in streams.items():
            if "streams" in state:
                stream.load_state_dict(state["streams"][name])
    log_path = folder / "logs" / "metrics.jsonl"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(log_path, [r for r in (read_jsonl(log_path) if log_path.is_file() else []) if r.get("step", 0) <= state["step"]])

    def log(record: dict[str, Any]) -> None:
        with log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def end_of_cycle(step: int) -> None:
        accuracy = validation_accuracy(model, tokenizer, splits["valid"], variant, config, device, bf16)
        record = {"step": step, "eval_accuracy": accuracy}
        if accuracy > state["best_accuracy"]:
            state["best_accuracy"], state["best_step"] = accuracy, step
            save_student(model, tokenizer, best_dir, meta={**meta, "step": step, "accuracy": accuracy})
        state["evals"].append(record)
        log(record)
        state["step"] = step
        state["streams"] = {name: stream.state_dict() for name, stream in streams.items()}
        _save_checkpoint(folder, model, optimizer, scheduler, state)

    started = time.perf_counter()
    columns = [TextColumn(f"phase 2 iteration {k}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
    with Progress(*columns) as progress:
        task = progress.add_task("dpo", total=steps, completed=state["step"], info="")
        model.train()
        for step in range(state["step"], steps):
            name = stage_at(step, schedule)
            chosen_rows, rejected_rows = tokenized[name]
            indices = streams[name].next()
            ref = torch.tensor([reference[name][i] for i in indices], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                pc, n_tokens = batch_logps(model, [chosen_rows[i] for i in indices], tokenizer.pad_token_id, seq2seq, device)
                pr, _ = batch_logps(model, [rejected_rows[i] for i in indices], tokenizer.pad_token_id, seq2seq, device)
            out = preference_loss(pc, pr, ref[:, 0], ref[:, 1], n_tokens, config.beta, config.alpha)
            out.loss.backward()
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done = step + 1
            progress.update(task, completed=done, info=f"{name} loss {out.loss.item():.4f} reward acc {out.reward_accuracy.item():.2f}")
            log({"step": done, "pairs": name, "loss": out.loss.item(), "dpo": out.dpo.item(), "nll": out.nll.item(),
                 "reward_accuracy": out.reward_accuracy.item(), "margin": out.margin.item()})
            if done % cycle == 0 or done == steps:
                end_of_cycle(done)
    timings["train"] = time.perf_counter() - started
    result.update(steps=steps, schedule=[list(s) for s in schedule], valid_accuracy=state["best_accuracy"], best_step=state["best_step"],
                  evals=state["evals"], seconds=timings)
    return result


# ---------------------------------------------------------------- the loop


def reflect(config: ReflectConfig) -> dict[str, Any]:
    """Run (or resume) phase 2; returns ``summary.json``'s contents."""
    from ..evaluate import trained_variant

    out = Path(config.out)
    data = Path(config.data)
    splits = {name: read_questions(data / f"{name}.jsonl") for name in ("train", "valid", "test")}
    if config.eval_limit:
        splits["valid"] = splits["valid"][: config.eval_limit]
    variant = config.variant or trained_variant(config.model) or stages.FULL_VARIANT
    dataclasses.replace(config, variant=variant).validate()  # dpo_on against the model's variant
    teacher = read_teacher(config.rationales)
    out.mkdir(parents=True, exist_ok=True)
    saved, settings = out / "config.json", to_dict(config)
    if config.resume and saved.is_file():
        before = json.loads(saved.read_text(encoding="utf-8"))
        changed = [k for k in before if k not in ("resume", "iterations", "test") and before[k] != settings.get(k)]
        if changed:
            raise ConfigError(f"out: {out} holds a phase-2 run with another {changed[0]} ({before[changed[0]]!r}); use a new out folder or resume=false")
    elif not config.resume:
        for child in out.glob("iter-*"):
            shutil.rmtree(child)
        for name in ("summary.json", "start.json", "best"):
            path = out / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    write_json(saved, settings)

    device, bf16 = device_and_bf16(config)

    def accuracy_of(model_dir: Path, split: str) -> float:
        student = load_student(model_dir)
        student.model.to(device)
        return validation_accuracy(student.model, student.tokenizer, splits[split], variant, config, device, bf16)

    start = Path(config.model)
    start_valid = json.loads((out / "start.json").read_text())["valid_accuracy"] if (out / "start.json").is_file() else None
    if start_valid is None:
        start_valid = accuracy_of(start, "valid")
        start_test = accuracy_of(start, "test") if config.test else None
        write_json(out / "start.json", {"model": str(start), "valid_accuracy": start_valid, "test_accuracy": start_test})
    start_info = json.loads((out / "start.json").read_text(encoding="utf-8"))
    results = []
    current, current_valid = start, start_valid
    for k in range(1, config.iterations + 1):
        result_path = out / f"iter-{k}" / "result.json"
        if result_path.is_file():
            result = json.loads(result_path.read_text(encoding="utf-8"))
        else:
            result = run_iteration(k, current, config, variant, splits, teacher, current_valid)
            best = out / f"iter-{k}" / "best"
            result["test_accuracy"] = accuracy_of(best, "test") if config.test else None
            shutil.rmtree(out / f"iter-{k}" / "checkpoint", ignore_errors=True)
            write_json(result_path, result)
        results.append(result)
        current, current_valid = out / f"iter-{k}" / "best", result["valid_accuracy"]
    final = out / "best"
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(current, final)
    summary = {
        "variant": variant,
        "dpo_on": config.dpo_on,
        "start": start_info,
        "iterations": [
            {"iteration": r["iteration"], "valid_accuracy": r["valid_accuracy"], "test_accuracy": r.get("test_accuracy"),
             "pairs": r["pairs"], "steps": r["steps"], "best_step": r["best_step"]}
            for r in results
        ],
        "best_valid_accuracy": current_valid,
        "best": str(final),
        "complete": True,
    }
    write_json(out / "summary.json", summary)
    return summary
