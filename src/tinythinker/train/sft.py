"""Phase 1 (METHOD.md section 4): supervised training of one student on the three stages.

Features:
- Round-robin schedule by optimizer steps: ``interval`` steps of recall, ``interval x
  num_options`` of analyze, ``interval`` of summarize, repeated; each stage draws its own shuffled,
  length-grouped batches. All four variants of METHOD.md section 3, plus the baselines
  ``summarize`` (answer only) and ``cot`` (standard CoT distillation, one stage file ``cot.jsonl``).
- AdamW, cosine schedule with linear warmup, gradient clipping and accumulation.
- bf16 autocast where the device supports it (``precision: auto``); fp16 is refused for T5.
- The loss is the mean over all target tokens of the global batch (all processes, all
  accumulation steps); a step's rows depend only on ``batch_size x processes x grad_accum``, so
  one process and N processes compute the same update.
  Causal students are trained on the completion tokens only.
- Built on ``accelerate``: runs unchanged under ``torchrun`` / ``accelerate launch`` (data parallel).
- Once per cycle (every ``eval_every`` cycles, and at the end): the full greedy pipeline on the
  validation questions; accuracy (by generating and parsing) decides the ``best/`` checkpoint;
  ``last/`` follows the latest evaluation.
- Resume: ``checkpoint/`` holds model, optimizer, scheduler, RNG states and the position of every
  stage stream; a rerun with the same ``out`` continues where the last cycle ended.

Outputs in ``out``: ``best/`` and ``last/`` (``save_pretrained`` folders with tokenizer and
``tinythinker_student.json``), ``checkpoint/``, ``init/`` (the starting student), ``config.json``,
``metrics.json`` (written when training completes), ``logs/metrics.jsonl``, ``logs/eval/step-*.jsonl``
(per-question predictions of each evaluation) and ``logs/tensorboard`` when tensorboard is installed.

Assumptions: the stage folder was built for the variant trained; the validation file holds
canonical questions; every process sees the same files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import stages
from ..config import to_dict
from ..data.schema import read_questions
from ..errors import ConfigError
from ..io import write_json, write_jsonl
from ..student import Student, StudentConfig, is_t5, load_student, make_student, save_student
from .data import BatchStream, StageData, collate, read_stage_dir, stage_at, stage_schedule, tokenize_rows

PRECISIONS = ("auto", "bf16", "fp32", "fp16")
# what a run writes in `out` (cleared by resume=false)
OUTPUTS = ("init", "checkpoint", "checkpoint.tmp", "checkpoint.old", "best", "last", "logs", "metrics.json", "config.json")
# config fields that may change between an interrupted run and its resumption
RESUMABLE_CHANGES = {"resume", "log_every", "tensorboard", "eval_batch_size", "cpu"}


@dataclass
class SFTConfig:
    """Phase-1 training configuration (YAML keys; override any with ``key=value``).

    Fields:
        stages: stage dataset folder (``recall.jsonl`` / ``analyze.jsonl`` / ``summarize.jsonl``
            or ``cot.jsonl``, and ``manifest.json``), as written by ``tinythinker build``.
        valid: canonical question file evaluated once per cycle (``valid.jsonl`` of ``data prepare``);
            empty: no evaluation, ``best/`` is the last model.
        out: output folder (created; an interrupted run in it is resumed).
        student: the model to train (``name``, ``init``, ``vocab_size``, ``overrides``,
            ``trust_remote_code``; see ``tinythinker.student.StudentConfig``). A scratch student's
            tokenizer is trained on the stage rows.
        variant: ``recall_analyze_summarize``, ``recall_summarize``, ``analyze_summarize``,
            ``summarize`` or ``cot``; empty: the stage folder's manifest decides (they must agree).
        num_options: options per question (CSQA 5, OBQA 4, StrategyQA 2); empty: from the manifest.
        interval: steps per recall / summarize block; analyze blocks are ``interval x num_options``.
        eval_every: cycles between evaluations (and checkpoints); the last step always evaluates.
        max_steps: total optimizer steps; 0: derived from ``epochs``.
        epochs: passes over all stage rows (used when ``max_steps`` is 0):
            steps = ceil(epochs x rows / (batch_size x processes x grad_accum)).
        batch_size: rows per process per micro-batch.
        grad_accum: micro-batches per optimizer step. An optimizer step uses ``batch_size x
            processes x grad_accum`` rows, and the same rows (so the same update) for any split
            with the same product.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_ratio: fraction of the steps with linear warmup before the cosine decay.
        max_grad_norm: gradient clipping norm (0: off).
        max_source_tokens: inputs longer than this keep their last tokens (the stage cue).
        max_target_tokens: targets longer than this are cut.
        group_by_length: batch rows of similar length (less padding). It also batches rows that are
            alike (the analyze rows of one question have one length); on the synthetic benchmark that
            delayed learning the analyze verdict past 6,000 steps, so the bundled run configs turn it off.
        group_batches: batches per length-sorted chunk when ``group_by_length``.
        precision: ``auto`` (bf16 on GPUs that support it, else fp32), ``bf16``, ``fp32``, or
            ``fp16`` (CUDA only, refused for T5: it overflows).
        cpu: train on the CPU even when a GPU is present.
        eval_max_new_tokens: generation limit per stage during evaluation.
        eval_batch_size: prompts per generation batch during evaluation.
        eval_limit: evaluate on the first N validation questions only (0: all).
        log_every: steps between training-loss log records.
        tensorboard: also log to ``logs/tensorboard`` when tensorboard is installed.
        seed: seeds the model init, the batch streams and all random generators.
        resume: continue from ``out/checkpoint`` when present.
    """

    stages: str = ""
    valid: str = ""
    out: str = "runs/phase1"
    student: StudentConfig = field(default_factory=StudentConfig)
    variant: str | None = None
    num_options: int | None = None
    interval: int = 100
    eval_every: int = 1
    max_steps: int = 0
    epochs: float = 10.0
    batch_size: int = 64
    grad_accum: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_source_tokens: int = 512
    max_target_tokens: int = 256
    group_by_length: bool = True
    group_batches: int = 50
    precision: str = "auto"
    cpu: bool = False
    eval_max_new_tokens: int = 200
    eval_batch_size: int = 64
    eval_limit: int = 0
    log_every: int = 10
    tensorboard: bool = True
    seed: int = 42
    resume: bool = True

    def validate(self) -> None:
        if not self.stages:
            raise ConfigError("stages: the stage dataset folder is required")
        if self.variant is not None and self.variant != stages.COT and self.variant not in stages.VARIANTS:
            raise ConfigError(f"variant: unknown {self.variant!r}; choose one of {', '.join([*stages.VARIANTS, stages.COT])}")
        for name in ("interval", "eval_every", "batch_size", "grad_accum", "max_source_tokens", "max_target_tokens", "eval_max_new_tokens", "eval_batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if self.max_steps < 0 or self.epochs <= 0 and self.max_steps == 0:
            raise ConfigError("max_steps / epochs: give max_steps > 0 or epochs > 0")
        if self.num_options is not None and self.num_options < 1:
            raise ConfigError("num_options: must be at least 1")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError("warmup_ratio: must be in [0, 1)")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precision == "fp16" and "t5" in self.student.name.lower():  # checked again on the loaded model
            raise ConfigError("precision: fp16 is refused for T5 students (T5 overflows in float16 and yields NaN); use bf16 or fp32")


def resolve_precision(precision: str, model, device_type: str) -> str:
    """The accelerate mixed-precision mode ("no", "bf16" or "fp16") for a model on a device."""
    import torch

    if precision == "fp16":
        if is_t5(model):
            raise ConfigError("precision: fp16 is refused for T5 students (T5 overflows in float16 and yields NaN); use bf16 or fp32")
        if device_type != "cuda":
            raise ConfigError("precision: fp16 needs a CUDA device; use bf16 or fp32")
        return "fp16"
    if precision == "bf16":
        if device_type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("precision: this GPU does not support bf16; use fp32")
        return "bf16"
    if precision == "auto" and device_type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def total_steps(config: SFTConfig, data: StageData, world: int) -> int:
    if config.max_steps > 0:
        return config.max_steps
    rows = sum(len(r) for r in data.rows.values())
    return max(1, math.ceil(config.epochs * rows / (config.batch_size * world * config.grad_accum)))


def token_loss_sum(model, batch: dict[str, Any], seq2seq: bool, unwrapped):
    """Sum of the cross-entropy over target tokens (labels != -100)."""
    import torch.nn.functional as F

    labels = batch["labels"]
    if seq2seq:
        if hasattr(unwrapped, "prepare_decoder_input_ids_from_labels"):
            decoder = {"decoder_input_ids": unwrapped.prepare_decoder_input_ids_from_labels(labels=labels)}
        else:  # the model shifts the labels itself
            decoder = {"labels": labels}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **decoder).logits
    else:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        labels = labels[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100, reduction="sum")


def make_accelerator(cpu: bool, mixed_precision: str):
    """An Accelerator; a run earlier in this process with another precision does not block it."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    previous = AcceleratorState._shared_state.get("_mixed_precision")
    if previous is not None and previous != mixed_precision:
        AcceleratorState._reset_state()  # keeps the process group (PartialState)
    return Accelerator(cpu=cpu, mixed_precision=mixed_precision)


def train_step(accelerator, model, unwrapped, optimizer, scheduler, batches, seq2seq: bool, max_grad_norm: float) -> tuple[float, int]:
    """One optimizer step over this process's micro-batches; returns (global mean loss, tokens seen).

    The loss is normalised by the target tokens of the whole global batch (all processes, all
    micro-batches), so any split of the same rows gives the same update.
    """
    import torch

    world, device = accelerator.num_processes, accelerator.device
    local = [sum(int((b["labels"] != -100).sum()) for b in batches), sum(_tokens_seen(b, seq2seq) for b in batches)]
    # one process: the counts are already global (and stay on the host: no device round trip)
    counts = local if world == 1 else accelerator.reduce(torch.tensor(local, device=device), "sum").tolist()
    target_tokens = max(int(counts[0]), 1)
    loss_sum = torch.zeros((), device=device)
    for index, batch in enumerate(batches):
        batch = {k: v.to(device) for k, v in batch.items()}
        last = index == len(batches) - 1
        with contextlib.nullcontext() if last else accelerator.no_sync(model):
            part = token_loss_sum(model, batch, seq2seq, unwrapped)
            # DDP averages gradients over processes: scale so the result is the global token mean
            accelerator.backward(part * world / target_tokens)
        loss_sum += part.detach()
    if max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(accelerator.reduce(loss_sum, "sum")) / target_tokens, int(counts[1])


def _tokens_seen(batch: dict[str, Any], seq2seq: bool) -> int:
    """Non-padding tokens a step processes (encoder + decoder for seq2seq), for tokens/s."""
    seen = int(batch["attention_mask"].sum())
    return seen + int((batch["labels"] != -100).sum()) if seq2seq else seen


def evaluate_questions(model, tokenizer, questions, variant: str, config: SFTConfig, accelerator, bf16: bool) -> tuple[float, list[dict]]:
    """Greedy full-pipeline accuracy; each process answers a share, the results are gathered."""
    from accelerate.utils import gather_object

    from ..infer import ChainDecoding, Engine

    rank, world = accelerator.process_index, accelerator.num_processes
    mine = list(range(len(questions)))[rank::world]
    engine = Engine(model, tokenizer, batch_size=config.eval_batch_size, max_input_tokens=config.max_source_tokens, device=accelerator.device, bf16=bf16)
    predictions = engine.predict([questions[i] for i in mine], variant, 1, ChainDecoding.greedy(config.eval_max_new_tokens), seed=None)
    records = [(i, p.to_dict()) for i, p in zip(mine, predictions)]
    if world > 1:
        records = gather_object(records)
    records = [r for _, r in sorted(records, key=lambda pair: pair[0])]
    accuracy = sum(r["correct"] for r in records) / len(records) if records else 0.0
    return accuracy, records


class _Logs:
    """metrics.jsonl (+ TensorBoard) on the main process; resumed runs drop records past the checkpoint."""

    def __init__(self, out: Path, resumed_step: int, tensorboard: bool, enabled: bool):
        self.enabled = enabled
        self.path = out / "logs" / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    record = json.loads(line)
                    if record.get("step", 0) <= resumed_step:
                        kept.append(record)
        write_jsonl(self.path, kept)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out / "logs" / "tensorboard"), purge_step=resumed_step + 1)
            except ImportError:
                self.writer = None

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _check_resumable(out: Path, config: SFTConfig) -> None:
    saved_path = out / "config.json"
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text(encoding="utf-8"))
    current = json.loads(json.dumps(to_dict(config)))
    for key in sorted(set(saved) | set(current)):
        if key not in RESUMABLE_CHANGES and saved.get(key) != current.get(key):
            raise ConfigError(
                f"out: {out} holds a run with another config ({key}: {saved.get(key)!r} there, {current.get(key)!r} now); "
                "use a new out folder or resume=false"
            )


def _prepare_out(config: SFTConfig, data: StageData) -> None:
    """Main process: check or clear ``out``, record the config, build the starting student once."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if config.resume:
        _check_resumable(out, config)
    else:
        for name in OUTPUTS:
            path = out / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    write_json(out / "config.json", to_dict(config))
    if not (out / "init").is_dir():
        texts = [text for rows in data.rows.values() for row in rows for text in row]
        student = make_student(config.student, texts, seed=config.seed)
        save_student(student.model, student.tokenizer, out / "init")


def train(config: SFTConfig) -> dict[str, Any]:
    """Run (or resume) phase 1; returns the contents of ``metrics.json``."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import set_seed
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers import get_cosine_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # accelerate warns at every checkpoint that tied weights are stored once; reloading re-ties them
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
    out = Path(config.out)
    data = read_stage_dir(config.stages, config.variant, config.num_options)
    variant = data.variant
    questions = read_questions(config.valid) if config.valid else []
    if config.eval_limit:
        questions = questions[: config.eval_limit]

    process = PartialState(cpu=config.cpu)
    checkpoint = out / "checkpoint"
    if config.resume and not checkpoint.is_dir() and (out / "checkpoint.old").is_dir():
        checkpoint = out / "checkpoint.old"  # killed while swapping checkpoints
    resuming = config.resume and checkpoint.is_dir()
    if process.is_main_process:
        _prepare_out(config, data)
    process.wait_for_everyone()
    student: Student = load_student(out / "init")
    model, tokenizer, seq2seq = student.model, student.tokenizer, student.is_seq2seq

    mixed = resolve_precision(config.precision, model, process.device.type)
    bf16 = mixed == "bf16"
    accelerator = make_accelerator(config.cpu, mixed)
    world, rank = accelerator.num_processes, accelerator.process_index
    set_seed(config.seed)

    tokenized = {
        stage: tokenize_rows(tokenizer, rows, seq2seq, config.max_source_tokens, config.max_target_tokens)
        for stage, rows in data.rows.items()
    }
    # one stream batch = the rows of one optimizer step, however they are split over processes and micro-batches
    global_batch = config.batch_size * world * config.grad_accum
    streams = {
        stage: BatchStream([len(s) + len(t) for s, t in rows], global_batch, config.seed + index, config.group_by_length, config.group_batches)
        for index, (stage, rows) in enumerate(tokenized.items())
    }
    schedule = stage_schedule(variant, config.interval, data.num_options)
    cycle = sum(n for _, n in schedule)
    steps = total_steps(config, data, world)

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    unwrapped = accelerator.unwrap_model(model)

    state: dict[str, Any] = {"step": 0, "best_accuracy": None, "best_step": None, "evals": [], "train_tokens": 0, "train_seconds": 0.0}
    if resuming:
        accelerator.load_state(str(checkpoint))
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        for stage, stream in streams.items():
            stream.load_state_dict(state["streams"][stage])
        accelerator.print(f"resumed from {checkpoint} at step {state['step']}")
    logs = _Logs(out, state["step"], config.tensorboard, accelerator.is_main_process)
    meta = {"variant": variant, "num_options": data.num_options, "stages": config.stages}

    def end_of_cycle(step: int) -> None:
        record: dict[str, Any] = {"step": step, "cycle": math.ceil(step / cycle)}
        accuracy = None
        if questions:
            accuracy, predictions = evaluate_questions(unwrapped, tokenizer, questions, variant, config, accelerator, bf16)
            record.update(eval_accuracy=accuracy, eval_n=len(predictions))
            if accelerator.is_main_process:
                write_jsonl(out / "logs" / "eval" / f"step-{step:07d}.jsonl", predictions)
        improved = accuracy is None or state["best_accuracy"] is None or accuracy > state["best_accuracy"]
        if improved:
            state["best_accuracy"], state["best_step"] = accuracy, step
        state["evals"].append(record)
        if accelerator.is_main_process:
            logs.log(record)
            info = {**meta, "step": step, "accuracy": accuracy}
            if improved:
                save_student(unwrapped, tokenizer, out / "best", info)
            save_student(unwrapped, tokenizer, out / "last", info)
        save_checkpoint(step)
        if accuracy is not None:
            accelerator.print(f"step {step}: validation accuracy {accuracy:.4f} (best {state['best_accuracy']:.4f} at step {state['best_step']})")

    def save_checkpoint(step: int) -> None:
        state["step"] = step
        state["streams"] = {stage: stream.state_dict() for stage, stream in streams.items()}
        tmp, old = out / "checkpoint.tmp", out / "checkpoint.old"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        tmp.mkdir(parents=True, exist_ok=True)
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            write_json(tmp / "trainer_state.json", state)
            final = out / "checkpoint"
            shutil.rmtree(old, ignore_errors=True)
            if final.exists():
                final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    columns = [TextColumn("phase 1"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
    window: list[float] = []
    started = time.perf_counter()
    tokens_since = 0
    with Progress(*columns, disable=not accelerator.is_main_process) as progress:
        task = progress.add_task("train", total=steps, completed=state["step"], info="")
        model.train()
        for step in range(state["step"], steps):
            stage = stage_at(step, schedule)
            rows = tokenized[stage]
            step_rows = streams[stage].next()
            share = config.batch_size * world
            micro = [[rows[i] for i in step_rows[k * share : (k + 1) * share][rank::world]] for k in range(config.grad_accum)]
            batches = [collate(m, tokenizer.pad_token_id, seq2seq) for m in micro]
            loss, seen = train_step(accelerator, model, unwrapped, optimizer, scheduler, batches, seq2seq, config.max_grad_norm)
            window.append(loss)
            tokens_since += seen
            done = step + 1
            progress.update(task, completed=done, info=f"{stage} loss {loss:.4f}")
            if done % config.log_every == 0 or done == steps:
                logs.log({"step": done, "stage": stage, "loss": sum(window) / len(window), "lr": scheduler.get_last_lr()[0]})
                window = []
            if done % (cycle * config.eval_every) == 0 or done == steps:
                elapsed = time.perf_counter() - started
                state["train_tokens"] += tokens_since
                state["train_seconds"] += elapsed
                end_of_cycle(done)
                # a loss window never spans a checkpoint, so a resumed run logs the same averages
                started, tokens_since, window = time.perf_counter(), 0, []
    logs.close()

    metrics = {
        "variant": variant,
        "steps": steps,
        "cycle_steps": cycle,
        "schedule": [list(s) for s in schedule],
        "processes": world,
        "best_accuracy": state["best_accuracy"],
        "best_step": state["best_step"],
        "last_accuracy": state["evals"][-1].get("eval_accuracy") if state["evals"] else None,
        "evals": state["evals"],
        "train_tokens": state["train_tokens"],
        "train_seconds": state["train_seconds"],
        "train_tokens_per_s": state["train_tokens"] / state["train_seconds"] if state["train_seconds"] else None,
        "complete": True,
    }
    if accelerator.is_main_process:
        write_json(out / "metrics.json", metrics)
    accelerator.wait_for_everyone()
    return metrics
