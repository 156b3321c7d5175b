"""Side-by-side speed ratios: three-stage inference, phase-2 pair mining and phase-1 training.

    .venv/bin/python benchmarks/run.py [--device cpu|cuda] [--questions N] [--mine-questions N]
        [--train-steps N] [--max-new-tokens N] [--threads N] [--fp32] [--no-cuda-graphs]
        [--json FILE] [--work DIR]

Every figure is a ratio of two runs made in this process, one after the other, on the same data,
weights, batch size and device, so machine load hits both sides:

1. inference: greedy three-stage chains on CSQA test questions (5 options), ``Engine.predict``
   versus a reference-style baseline written here (each stage a separate ``model.generate`` pass
   over fixed-size batches in file order, one analyze pass per option, no length grouping);
   questions/s, and the share of questions whose recall, analyses and summary are identical.
   Then the same questions through the engine with one optimisation added at a time (ablation).
2. mining: ``tinythinker.train.dpo.mine`` (10 sampled chains per question, then 10 sampled analysis
   sets per chosen recall) versus the same rules run on the reference-style baseline; chains/s.
3. training: phase-1 target+source tokens/s of ``tinythinker.train.sft.train`` versus the plain
   transformers ``Seq2SeqTrainer`` on the same rows, init, batch size, optimiser and schedule;
   both loss curves are printed. Last, so that a GPU lease cut short keeps the other figures
   (``--json FILE`` is rewritten after each part).

The student is t5-small-shaped (random weights) with a byte-level BPE tokenizer trained on
synthetic stage rows of CSQA train questions (recalls and analyses made of the question's words,
6-30 and 3-18 words long). A random-weight student never emits eos, so by default
(``--lengths 8,20``) a forward hook on its logits bounds the output lengths explicitly: after 8
tokens, each step ends the output with probability 1/20 (a hash of the previous token and the
position decides, so it is deterministic and identical under any batching; the hook runs no
host sync, so it is captured in our CUDA graphs too); pad/eos/unk are otherwise never picked.
Output lengths are then 8 + a geometric tail of mean 20 (a few outputs loop on one token and run
to the limit), a stand-in for a trained student's varied recall and analysis lengths.
``--lengths none`` trains the init for ``--warm-steps`` with our trainer instead (cached in
``--work``), and ``--student DIR`` takes any trained seq2seq student.

Sizes: on CPU the default measures subsets (32 inference questions, mining on 4, 21 training
steps of batch 8; about 16 minutes on two idle cores), with one torch thread
(``--threads``: spinning OpenMP workers slow both sides several-fold on a loaded machine). On
CUDA: all 1,221 questions, mining on 32, 140 training steps of batch 32, our engine batching
1,024 prompts; the ablation reuses the baseline's figure (it is the slow part). bf16 autocast
on GPUs that support it, for both sides (``--fp32``: off).

The last line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Passive OpenMP waiting: spinning worker threads starve each other on a shared few-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# ---------------------------------------------------------------- data


def synth_rationale(question) -> tuple[str, dict[str, str]]:
    """A recall and one analysis per option made of the question's words, with random lengths."""
    rng = random.Random(question.id)
    words = [w.strip("?,.!").lower() for w in question.question.split()] or ["thing"]
    recall = " ".join(rng.choice(words) for _ in range(rng.randint(6, 30))).capitalize() + "."
    analyses = {
        o.label: f"{o.text} is {'correct' if o.label == question.answer else 'incorrect'}. Because "
        + " ".join(rng.choice(words) for _ in range(rng.randint(3, 18)))
        + "."
        for o in question.options
    }
    return recall, analyses


def prepare_data(work: Path, source: Path) -> Path:
    folder = work / "csqa"
    if not (folder / "test.jsonl").is_file():
        command = [sys.executable, "-m", "tinythinker.cli", "data", "prepare", "--dataset", "csqa", "--source", str(source), "--out", str(folder)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return folder


def write_stage_folder(folder: Path, questions) -> list[str]:
    """Stage files of the synthetic rationales; returns every text (tokenizer training)."""
    from tinythinker import stages
    from tinythinker.io import write_json, write_jsonl

    rows: dict[str, list[dict]] = {}
    for q in questions:
        recall, analyses = synth_rationale(q)
        for stage, pairs in stages.stage_rows(q, recall, analyses).items():
            rows.setdefault(stage, []).extend({"id": q.id, "input": i, "target": t} for i, t in pairs)
    for stage, stage_rows in rows.items():
        write_jsonl(folder / f"{stage}.jsonl", stage_rows)
    write_json(folder / "manifest.json", {"variant": stages.FULL_VARIANT, "counts": {s: len(r) for s, r in rows.items()}, "num_options": 5})
    return [text for stage_rows in rows.values() for row in stage_rows for text in (row["input"], row["target"])]


def control_lengths(model, eos_token_id: int, specials: list[int], min_tokens: int, stop_every: int) -> None:
    """Make a random-weight student end its outputs like a trained one: after ``min_tokens``
    tokens, each step writes eos with probability about 1/``stop_every`` (a hash of the previous
    token and the position decides, so it is deterministic and the same for any batching).

    A forward hook on the model's logits, so ``model.generate`` and our loop see the same model.
    """
    import torch

    on_device: dict = {}  # index tensors made once, outside any CUDA graph capture

    def hook(module, args, kwargs, output):
        ids, cache = kwargs.get("decoder_input_ids"), kwargs.get("cache", kwargs.get("past_key_values"))
        if ids is None or cache is None:
            return output
        logits = output.logits[:, -1]
        if not on_device:
            on_device["specials"] = torch.tensor(specials, device=logits.device)
        # tokens generated before this step, as a device tensor: no host sync (a static cache
        # counts on the device, and this hook runs inside the CUDA graph of the decoding step)
        written = torch.as_tensor(cache.get_seq_length(), device=logits.device) - 1
        logits.index_fill_(1, on_device["specials"], torch.finfo(logits.dtype).min)  # random weights would often pick pad / eos / unk
        mixed = (ids[:, -1] * 2654435761 + written * 40503 + 12345) % 2**31
        stop = (((mixed * 1103515245 + 12345) % 2**31 >> 8) % stop_every == 0) & (written >= min_tokens)
        logits[:, eos_token_id] = torch.where(stop, torch.finfo(logits.dtype).max / 2, logits[:, eos_token_id])
        return output

    model.register_forward_hook(hook, with_kwargs=True)


# ---------------------------------------------------------------- measuring


class Peak:
    """Peak memory while a block runs (MiB): on CPU the process RSS (``mib``) and its rise over the
    RSS at the block's start (``extra_mib``: RSS never shrinks, so earlier blocks' peaks stay in
    ``mib``); on CUDA max allocated (``mib``) and its rise over the allocation at the start."""

    def __init__(self, device):
        self.device = device
        self.mib = 0.0

    def _rss(self) -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self):
        import torch

        self._stop = threading.Event()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() / 2**20
        else:
            self.mib = self.base = self._rss()

            def watch():
                while not self._stop.wait(0.01):
                    self.mib = max(self.mib, self._rss())

            self._thread = threading.Thread(target=watch, daemon=True)
            self._thread.start()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mib = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.mib = max(self.mib, self._rss())
        self.extra_mib = self.mib - self.base
        self.seconds = time.perf_counter() - self.started


# ---------------------------------------------------------------- the reference-style baseline


def naive_generate(model, tokenizer, prompts, decoding, batch_size: int, device, bf16: bool) -> list[str]:
    """Reference style: fixed-size batches in the given order, padded to the batch's longest prompt."""
    import torch
    from transformers import GenerationConfig

    sampling = dict(temperature=decoding.temperature, top_k=decoding.top_k, top_p=decoding.top_p) if decoding.do_sample else {}
    config = GenerationConfig(
        max_new_tokens=decoding.max_new_tokens, do_sample=decoding.do_sample, num_beams=1, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=model.config.decoder_start_token_id, **sampling,
    )  # fmt: skip
    model.eval()
    texts = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(list(prompts[start : start + batch_size]), padding=True, return_tensors="pt").to(device)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model.generate(**batch, generation_config=config)
        texts += [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=False)]
    return texts


def naive_chains(model, tokenizer, questions, decoding, batch_size: int, device, bf16: bool, recalls=None):
    """One chain per question: a recall pass, one analyze pass per option label, a summarize pass."""
    from tinythinker import stages
    from tinythinker.infer import Chain

    def run(prompts, stage_decoding):
        return naive_generate(model, tokenizer, prompts, stage_decoding, batch_size, device, bf16)

    if recalls is None:
        recalls = [stages.normalize_recall(t) for t in run([stages.recall_input(q) for q in questions], decoding.recall)]
    analyses: list[dict[str, str]] = [{} for _ in questions]
    labels = list(dict.fromkeys(label for q in questions for label in q.labels))
    for label in labels:
        which = [i for i, q in enumerate(questions) if label in q.labels]
        texts = run([stages.analyze_input(questions[i], label, recalls[i]) for i in which], decoding.analyze)
        for i, text in zip(which, texts):
            analyses[i][label] = stages.normalize_explanation(text)
    summaries = run([stages.summarize_input(q, r, a) for q, r, a in zip(questions, recalls, analyses)], decoding.summarize)
    return [Chain(r, a, s, stages.parse_answer(s, q.labels)) for q, r, a, s in zip(questions, recalls, analyses, summaries)]


def naive_mine(model, tokenizer, questions, teacher, config, seed: int, batch_size: int, device, bf16: bool):
    """``tinythinker.train.dpo.mine``'s rules with reference-style generation; returns chains sampled."""
    from tinythinker.infer import GREEDY, ChainDecoding, Decoding, set_seed
    from tinythinker.train.mining import analyze_pairs, recall_pairs

    sample = Decoding(True, config.temperature, config.top_k, config.top_p, config.max_new_tokens)
    greedy = Decoding(max_new_tokens=config.max_new_tokens)
    rng = random.Random(seed)
    set_seed(seed)
    n = config.recall_samples
    chains = naive_chains(model, tokenizer, [q for q in questions for _ in range(n)], ChainDecoding(sample, greedy, greedy), batch_size, device, bf16)
    chosen_recalls, pairs = {}, 0
    for index, q in enumerate(questions):
        found, chosen, _ = recall_pairs(q, chains[index * n : (index + 1) * n], [r["recall"] for r in teacher.get(q.id, [])], rng)
        pairs += len(found)
        chosen_recalls[q.id] = chosen[: config.max_chosen_recalls or None]
    jobs = [(q, r) for q in questions for r in chosen_recalls[q.id]]
    m = config.analyze_samples
    sampled = []
    if jobs:
        repeated = [q for q, _ in jobs for _ in range(m)]
        recalls = [r for _, r in jobs for _ in range(m)]
        sampled = naive_chains(model, tokenizer, repeated, ChainDecoding(GREEDY, sample, greedy), batch_size, device, bf16, recalls=recalls)
    for index, (q, recall) in enumerate(jobs):
        teacher_sets = [r.get("analyze") or {} for r in teacher.get(q.id, [])]
        pairs += len(analyze_pairs(q, recall, sampled[index * m : (index + 1) * m], teacher_sets, rng)[0])
    return len(chains) + len(sampled), pairs


# ---------------------------------------------------------------- the three benchmarks


def chain_key(chain):
    return (chain.recall, tuple(sorted((chain.analyses or {}).items())), chain.summary)


def bench_inference(model, tokenizer, questions, args, device, bf16):
    """Ours and the baseline, alternating on chunks of ``--chunk`` questions (load drifts hit both)."""
    from tinythinker.infer import ChainDecoding, Engine

    decoding = ChainDecoding.greedy(args.max_new_tokens)
    engine = Engine(model, tokenizer, batch_size=args.batch_size, device=device, bf16=bf16, cuda_graphs=args.cuda_graphs)
    runs = {
        "ours": lambda chunk: [p.chains[0] for p in engine.predict(chunk, decoding=decoding, seed=None)],
        "naive": lambda chunk: naive_chains(model, tokenizer, chunk, decoding, args.naive_batch_size, device, bf16),
    }
    for run in runs.values():  # untimed warm-up (first kernels, allocator) of both sides
        run(questions[:2])
    results = {label: [] for label in runs}
    rows = {label: {"seconds": 0.0, "peak_mib": 0.0, "peak_extra_mib": 0.0} for label in runs}
    for start in range(0, len(questions), args.chunk):
        chunk = questions[start : start + args.chunk]
        for label, run in runs.items():
            with Peak(device) as peak:
                results[label] += run(chunk)
            row = rows[label]
            row["seconds"] += peak.seconds
            row["peak_mib"], row["peak_extra_mib"] = max(row["peak_mib"], peak.mib), max(row["peak_extra_mib"], peak.extra_mib)
        print(f"  inference {start + len(chunk)}/{len(questions)}: ours {rows['ours']['seconds']:.1f} s, naive {rows['naive']['seconds']:.1f} s", flush=True)
    for row in rows.values():
        row["questions_per_s"] = len(questions) / row["seconds"]
    same = sum(chain_key(a) == chain_key(b) for a, b in zip(results["ours"], results["naive"]))
    return rows, same / len(questions), results["ours"]


def bench_inference_ablation(model, tokenizer, questions, args, device, bf16, naive_questions_per_s=None):
    """What each engine option buys, each variant timed on the same questions (the baseline's
    figure is reused when given: on a GPU it is the slow part and was just measured)."""
    from tinythinker.infer import ChainDecoding, Engine

    decoding = ChainDecoding.greedy(args.max_new_tokens)
    variants = {
        "naive (reference style)": None,
        "all options in one pass + sorted by length (model.generate)": dict(batch_size=args.batch_size, drop_finished=False),
        "+ finished rows dropped (own decoding loop)": dict(batch_size=args.batch_size, cuda_graphs=False),
    }
    if device.type == "cuda":
        variants["+ static KV cache and CUDA graphs"] = dict(batch_size=args.batch_size, cuda_graphs=args.cuda_graphs)
    else:
        variants[f"+ batches of {args.batch_size * 4}"] = dict(batch_size=args.batch_size * 4)
    timings = {}
    for name, options in variants.items():
        if options is None and naive_questions_per_s:
            timings[name] = naive_questions_per_s
            continue
        with Peak(device) as peak:  # syncs the device at both ends
            if options is None:
                naive_chains(model, tokenizer, questions, decoding, args.naive_batch_size, device, bf16)
            else:
                Engine(model, tokenizer, device=device, bf16=bf16, **options).predict(questions, decoding=decoding, seed=None)
        timings[name] = len(questions) / peak.seconds
        print(f"  ablation {name}: {timings[name]:.2f} questions/s", flush=True)
    return timings


def bench_mining(model, tokenizer, questions, args, device, bf16):
    from tinythinker.infer import Engine
    from tinythinker.train.dpo import ReflectConfig, mine

    config = ReflectConfig(model="-", data="-", recall_samples=10, analyze_samples=10, max_chosen_recalls=args.max_chosen_recalls,
                           max_new_tokens=args.max_new_tokens, gen_batch_size=args.batch_size)  # fmt: skip
    teacher = {}
    for q in questions:
        recall, analyses = synth_rationale(q)
        teacher[q.id] = [{"id": q.id, "recall": recall, "analyze": analyses}]
    rows = {}
    for label in ("ours", "naive", "ours without dedupe"):
        if label == "ours without dedupe" and not args.ablations:
            continue
        with Peak(device) as peak:
            if label == "naive":
                chains, pairs = naive_mine(model, tokenizer, questions, teacher, config, 7, args.naive_batch_size, device, bf16)
            else:
                engine = Engine(model, tokenizer, batch_size=args.batch_size, device=device, bf16=bf16, dedupe=label == "ours", cuda_graphs=args.cuda_graphs)
                pairs_recall, pairs_analyze, report = mine(engine, questions, "recall_analyze_summarize", teacher, config, 7)
                chains, pairs = report["chains_sampled"], len(pairs_recall) + len(pairs_analyze)
        rows[label] = {"seconds": peak.seconds, "chains": chains, "pairs": pairs, "chains_per_s": chains / peak.seconds, "peak_mib": peak.mib, "peak_extra_mib": peak.extra_mib}
        print(f"  mining {label}: {chains} chains, {pairs} pairs, {peak.seconds:.1f} s", flush=True)
    return rows


def hf_trainer_run(init: Path, rows, tokenizer_rows, args, device, out: Path):
    """The plain transformers Seq2SeqTrainer on the same rows; (tokens/s, seconds, tokens, loss log, peak)."""
    import torch
    from transformers import (
        DataCollatorForSeq2Seq,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        TrainerCallback,
    )

    from tinythinker.student import load_student

    student = load_student(init)
    model, tokenizer = student.model, student.tokenizer
    dataset = [{"input_ids": s, "attention_mask": [1] * len(s), "labels": t} for s, t in tokenizer_rows]
    base = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    seen: list[int] = []

    def collate(features):
        batch = base(features)
        seen.append(int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum()))
        return batch

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            if device.type == "cuda":
                torch.cuda.synchronize()
            self.started = time.perf_counter()

        def on_train_end(self, *a, **k):
            if device.type == "cuda":
                torch.cuda.synchronize()
            self.seconds = time.perf_counter() - self.started

    clock = Clock()
    training = Seq2SeqTrainingArguments(
        output_dir=str(out), per_device_train_batch_size=args.train_batch_size, max_steps=args.train_steps, learning_rate=args.lr,
        lr_scheduler_type="cosine", warmup_steps=int(0.1 * args.train_steps), weight_decay=0.0, max_grad_norm=1.0,
        logging_steps=args.log_every, save_strategy="no", report_to=[], seed=42, use_cpu=device.type == "cpu",
        bf16=device.type == "cuda" and torch.cuda.is_bf16_supported(), dataloader_num_workers=0, disable_tqdm=True,
        remove_unused_columns=False,
    )  # fmt: skip
    trainer = Seq2SeqTrainer(model=model, args=training, train_dataset=dataset, data_collator=collate, callbacks=[clock])
    with Peak(device) as peak:
        trainer.train()
    tokens = sum(seen[: args.train_steps])
    losses = {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}
    return {"tokens_per_s": tokens / clock.seconds, "seconds": clock.seconds, "tokens": tokens, "loss": losses, "peak_mib": peak.mib, "peak_extra_mib": peak.extra_mib}


def ours_trainer_run(init: Path, stages_dir: Path, args, device, out: Path, steps: int, log_every: int, interval: int = 1, batch_size: int = 0, lr: float = 0.0):
    from tinythinker.config import load_config
    from tinythinker.train.sft import SFTConfig, train

    config = load_config(SFTConfig, None, [
        f"stages={stages_dir}", "valid=", f"out={out}", f"student.name={init}", "student.init=pretrained", f"interval={interval}",
        f"max_steps={steps}", f"batch_size={batch_size or args.train_batch_size}", f"lr={lr or args.lr}", "warmup_ratio=0.1", f"log_every={log_every}",
        "tensorboard=false", "resume=false", f"cpu={device.type == 'cpu'}",
    ])  # fmt: skip
    with Peak(device) as peak:
        metrics = train(config)
    losses = {}
    for line in (out / "logs" / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            losses[record["step"]] = record["loss"]
    return {"tokens_per_s": metrics["train_tokens_per_s"], "seconds": metrics["train_seconds"], "tokens": metrics["train_tokens"],
            "loss": losses, "peak_mib": peak.mib, "peak_extra_mib": peak.extra_mib, "wall_seconds": peak.seconds}  # fmt: skip


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when available")
    parser.add_argument("--questions", type=int, default=0, help="inference questions (0: 32 on CPU, all 1,221 on CUDA)")
    parser.add_argument("--chunk", type=int, default=16, help="inference questions per alternation of ours and the baseline")
    parser.add_argument("--mine-questions", type=int, default=0, help="questions mined (0: 4 on CPU, 32 on CUDA)")
    parser.add_argument("--max-chosen-recalls", type=int, default=1, help="chosen recalls per question whose analyses are sampled")
    parser.add_argument("--train-questions", type=int, default=1000, help="training questions (x7 stage rows)")
    parser.add_argument("--train-steps", type=int, default=0, help="optimizer steps of each trainer, a multiple of 7 (0: 21 on CPU, 140 on CUDA)")
    parser.add_argument("--train-batch-size", type=int, default=0, help="rows per training batch (0: 8 on CPU, 32 on CUDA)")
    parser.add_argument("--log-every", type=int, default=0, help="loss logged every N steps (0: a third of the steps)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warm-steps", type=int, default=140, help="training steps of the inference/mining student (cached)")
    parser.add_argument("--student", default="", help="a trained seq2seq student folder for inference and mining (default: the warm student)")
    parser.add_argument("--lengths", default="8,20", help="MIN,EVERY: the random-weight student's outputs end after MIN tokens "
                        "with probability 1/EVERY per step; 'none': train the student for --warm-steps instead")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=0, help="our engine's prompts per batch (0: 64 on CPU, 1,024 on CUDA)")
    parser.add_argument("--naive-batch-size", type=int, default=64, help="the baseline's prompts per batch")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: 1, the fastest on a shared 2-core machine)")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast on the GPU (both sides)")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false", help="our engine decodes without CUDA graphs")
    parser.add_argument("--no-ablations", dest="ablations", action="store_false", help="skip the per-optimisation timings")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: inference,train,mining")
    parser.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "csqa"), help="official CSQA files")
    parser.add_argument("--work", default="/tmp/tinythinker-bench", help="work folder (prepared data, cached student)")
    parser.add_argument("--json", default="", help="also write the results here, after each part (a cut-short run keeps what it measured)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    import torch

    from tinythinker.data.schema import read_questions
    from tinythinker.infer import bf16_supported
    from tinythinker.student import build_scratch, load_student, save_student

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    bf16 = bf16_supported(device) and not args.fp32
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} torch threads)"
    load = os.getloadavg()
    work = Path(args.work)
    data = prepare_data(work, Path(args.source))
    test = read_questions(data / "test.jsonl")
    n_infer = args.questions or (32 if device.type == "cpu" else len(test))
    if device.type == "cuda":
        args.chunk = n_infer  # a GPU is not shared: one alternation, our batches span every question
    args.batch_size = args.batch_size or (64 if device.type == "cpu" else 1024)
    n_mine = args.mine_questions or (4 if device.type == "cpu" else 32)
    args.train_steps = args.train_steps or (21 if device.type == "cpu" else 140)
    args.train_batch_size = args.train_batch_size or (8 if device.type == "cpu" else 32)
    args.log_every = args.log_every or args.train_steps // 3
    print(f"device {name}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; inference on {n_infer} of {len(test)} test questions, "
          f"mining on {n_mine}; max_new_tokens {args.max_new_tokens}", flush=True)  # fmt: skip

    stages_dir = work / "stages"
    texts = write_stage_folder(stages_dir, read_questions(data / "train.jsonl")[: args.train_questions])
    init = work / "init"
    if not (init / "config.json").is_file():
        student = build_scratch("t5-small", texts, vocab_size=8000, overrides={}, seed=42)
        save_student(student.model, student.tokenizer, init)
    result: dict = {"device": name, "load_average_start": [round(x, 2) for x in load], "threads": torch.get_num_threads()}

    def save(result: dict) -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(rounded(result)) + "\n")

    # -- the student used for inference and mining: the init after a short phase-1 run (cached)
    args.lengths = "" if args.student or args.lengths == "none" else args.lengths
    student_dir = Path(args.student) if args.student else init if args.lengths else work / f"warm-{args.warm_steps}" / "last"
    if not (student_dir / "config.json").is_file() and ("inference" not in skip or "mining" not in skip):
        print(f"training the inference student for {args.warm_steps} steps (cached in {student_dir.parent})", flush=True)
        ours_trainer_run(init, stages_dir, args, device, student_dir.parent, args.warm_steps, 10, interval=2, batch_size=16, lr=2e-3)
    if "inference" not in skip or "mining" not in skip:
        student = load_student(student_dir)
        model, tokenizer = student.model.to(device).eval(), student.tokenizer
        result["student"] = str(student_dir)
        if args.lengths:
            min_tokens, every = (int(x) for x in args.lengths.split(","))
            control_lengths(model, tokenizer.eos_token_id, tokenizer.all_special_ids, min_tokens, every)
            result["student"] = f"random-weight t5-small, eos after {min_tokens} tokens with p=1/{every} per step"

    if "inference" not in skip:
        questions = test[:n_infer]
        rows, identical, chains = bench_inference(model, tokenizer, questions, args, device, bf16)
        lengths = [len(tokenizer(c.recall)["input_ids"]) for c in chains]
        result["inference"] = rows | {"questions": len(questions), "identical_share": identical,
                                      "recall_tokens_mean": sum(lengths) / len(lengths),
                                      "recalls_at_limit": sum(n >= args.max_new_tokens for n in lengths)}  # fmt: skip
        result["inference_speedup"] = rows["ours"]["questions_per_s"] / rows["naive"]["questions_per_s"]
        result["inference_identical_share"] = identical
        if device.type == "cuda":
            from tinythinker.decode import HOST_SYNCS

            syncs = HOST_SYNCS.get(model)
            result["cuda_graphs"] = "off" if not args.cuda_graphs else "captured" if syncs == frozenset() else f"not captured: {sorted(syncs or ['never tried'])}"
            print(f"  CUDA graphs: {result['cuda_graphs']}", flush=True)
        if args.ablations:
            save(result)
            if device.type == "cuda":  # the same questions; the baseline's figure is the one just measured
                ablation = bench_inference_ablation(model, tokenizer, questions, args, device, bf16, rows["naive"]["questions_per_s"])
            else:
                ablation = bench_inference_ablation(model, tokenizer, questions[: max(1, n_infer // 2)], args, device, bf16)
            result["inference_ablation_questions_per_s"] = ablation
        save(result)

    if "mining" not in skip:
        rows = bench_mining(model, tokenizer, test[:n_mine], args, device, bf16)
        result["mining"] = rows
        result["mining_speedup"] = rows["ours"]["chains_per_s"] / rows["naive"]["chains_per_s"]
        save(result)

    # -- training: ours versus Seq2SeqTrainer (last: a GPU lease cut short keeps the inference figures)
    if "train" not in skip:
        from tinythinker.train.data import read_stage_dir, tokenize_rows

        tokenizer = load_student(init).tokenizer
        stage_data = read_stage_dir(stages_dir)
        all_rows = [row for rows in stage_data.rows.values() for row in rows]
        tokenized = tokenize_rows(tokenizer, all_rows, True, 512, 256)
        hf = hf_trainer_run(init, all_rows, tokenized, args, device, work / "train-hf")
        print(f"  train Seq2SeqTrainer: {hf['tokens_per_s']:.0f} tokens/s", flush=True)
        ours = ours_trainer_run(init, stages_dir, args, device, work / "train-ours", args.train_steps, args.log_every)
        print(f"  train ours: {ours['tokens_per_s']:.0f} tokens/s", flush=True)
        result["train"] = {"ours": ours, "seq2seq_trainer": hf, "batch_size": args.train_batch_size, "steps": args.train_steps}
        result["train_speedup"] = ours["tokens_per_s"] / hf["tokens_per_s"]
        save(result)

    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    save(result)
    print_table(result)
    print(json.dumps(rounded(result)))


def rounded(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {str(k): rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def _mem(row: dict) -> str:
    return f"{row['peak_mib']:.0f} (+{row['peak_extra_mib']:.0f})"


def print_table(result: dict) -> None:
    print()
    print(f"device: {result['device']}" + (f"; CUDA graphs: {result['cuda_graphs']}" if "cuda_graphs" in result else ""))
    print(f"{'benchmark':<46}{'baseline':>14}{'ours':>14}{'ratio':>8}{'peak MiB (rise) base / ours':>34}")
    if "inference" in result:
        i = result["inference"]
        print(f"{'inference, questions/s':<46}{i['naive']['questions_per_s']:>14.2f}{i['ours']['questions_per_s']:>14.2f}"
              f"{result['inference_speedup']:>8.2f}{_mem(i['naive']):>18} / {_mem(i['ours'])}")  # fmt: skip
        print(f"  identical chains: {100 * i['identical_share']:.1f}% of {i['questions']} questions")
    if "train" in result:
        t = result["train"]
        print(f"{'training (vs Seq2SeqTrainer), tokens/s':<46}{t['seq2seq_trainer']['tokens_per_s']:>14.0f}{t['ours']['tokens_per_s']:>14.0f}"
              f"{result['train_speedup']:>8.2f}{_mem(t['seq2seq_trainer']):>18} / {_mem(t['ours'])}")  # fmt: skip
        steps = sorted(set(t["ours"]["loss"]) & set(t["seq2seq_trainer"]["loss"]))
        curve = ", ".join(f"step {s}: {t['seq2seq_trainer']['loss'][s]:.3f} / {t['ours']['loss'][s]:.3f}" for s in steps)
        print(f"  loss (Seq2SeqTrainer / ours): {curve}")
    if "mining" in result:
        m = result["mining"]
        print(f"{'mining, chains/s':<46}{m['naive']['chains_per_s']:>14.2f}{m['ours']['chains_per_s']:>14.2f}"
              f"{result['mining_speedup']:>8.2f}{_mem(m['naive']):>18} / {_mem(m['ours'])}")  # fmt: skip
        if "ours without dedupe" in m:
            print(f"  mining without deduplicated greedy prompts: {m['ours without dedupe']['chains_per_s']:.2f} chains/s")
    for name, value in result.get("inference_ablation_questions_per_s", {}).items():
        print(f"  inference {name}: {value:.2f} questions/s")
    print(f"load average at start {result['load_average_start']}, at end {result['load_average_end']}")


if __name__ == "__main__":
    main()
