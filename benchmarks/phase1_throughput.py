"""Phase-1 training tokens/s and three-stage inference questions/s of a scratch student.

    .venv/bin/python benchmarks/phase1_throughput.py [--preset t5-small] [--steps 200] [--batch-size 64]
        [--questions 512] [--max-new-tokens 64] [--out DIR]

Writes a synthetic stage folder (CSQA-like: 5 options, rationales of realistic length), trains the
preset from scratch for a fixed number of steps with the phase-1 trainer (one cycle = the whole run,
so no evaluation interrupts the timing; ``train_tokens_per_s`` counts non-padding encoder + decoder
tokens), then times the greedy full three-stage pipeline (1 recall + 5 analyses + 1 summary per
question, batched) on fresh questions with the trained student. Device-agnostic: CUDA with bf16
autocast when available, else CPU. Prints the device name beside both numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

WORDS = (
    "river stone cloud apple window music garden winter paper candle forest engine market doctor bridge "
    "island pocket silver thunder violin letter school ocean mirror ladder rabbit tunnel planet harbor"
).split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_questions(n: int, seed: int, prefix: str):
    from tinythinker.data.schema import Option, Question

    rng = random.Random(seed)
    return [
        Question(f"{prefix}{i}", sentence(rng, 14).capitalize() + "?", [Option(l, sentence(rng, 2)) for l in "ABCDE"], rng.choice("ABCDE"))
        for i in range(n)
    ]


def write_stage_folder(folder: Path, questions, seed: int) -> None:
    from tinythinker import stages
    from tinythinker.io import write_json, write_jsonl

    rng = random.Random(seed)
    rows: dict[str, list[dict]] = {}
    for q in questions:
        recall = sentence(rng, 25)
        analyses = {o.label: f"{o.text} is {'correct' if o.label == q.answer else 'incorrect'}. Because {sentence(rng, 18)}." for o in q.options}
        for stage, pairs in stages.stage_rows(q, recall, analyses).items():
            rows.setdefault(stage, []).extend({"id": q.id, "input": i, "target": t} for i, t in pairs)
    for stage, stage_rows in rows.items():
        write_jsonl(folder / f"{stage}.jsonl", stage_rows)
    write_json(folder / "manifest.json", {"variant": stages.FULL_VARIANT, "counts": {s: len(r) for s, r in rows.items()}, "num_options": 5})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="t5-small")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-questions", type=int, default=2000)
    parser.add_argument("--questions", type=int, default=512, help="questions answered in the inference timing")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()

    import torch

    from tinythinker.config import load_config
    from tinythinker.infer import ChainDecoding, Engine, default_device
    from tinythinker.student import load_student
    from tinythinker.train.sft import SFTConfig, train

    root = Path(args.out or tempfile.mkdtemp(prefix="phase1-bench-"))
    write_stage_folder(root / "stages", make_questions(args.train_questions, 0, "t"), seed=1)
    device = default_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    # interval = steps / 7: one cycle (1 recall : 5 analyze : 1 summarize blocks) spans the run
    config = load_config(SFTConfig, None, [
        f"stages={root / 'stages'}", "valid=", f"out={root / 'run'}", f"student.name={args.preset}", "student.init=scratch",
        f"interval={max(1, args.steps // 7)}", f"max_steps={args.steps}", f"batch_size={args.batch_size}", "log_every=50",
        "resume=false", "lr=5e-4",
    ])  # fmt: skip
    metrics = train(config)

    student = load_student(root / "run" / "last")
    engine = Engine(student.model.to(device), student.tokenizer, batch_size=args.eval_batch_size, device=device)
    questions = make_questions(args.questions, 99, "e")
    engine.predict(questions[: min(16, len(questions))], decoding=ChainDecoding.greedy(args.max_new_tokens))  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    predictions = engine.predict(questions, decoding=ChainDecoding.greedy(args.max_new_tokens))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    result = {
        "device": name,
        "preset": args.preset,
        "parameters": sum(p.numel() for p in student.model.parameters()),
        "train_steps": metrics["steps"],
        "batch_size": args.batch_size,
        "train_tokens_per_s": round(metrics["train_tokens_per_s"], 1),
        "inference_questions": len(predictions),
        "inference_max_new_tokens": args.max_new_tokens,
        "inference_questions_per_s": round(len(predictions) / seconds, 2),
        "mean_recall_chars": round(sum(len(p.chains[0].recall or "") for p in predictions) / len(predictions), 1),
    }
    print(json.dumps(result, indent=2))
    print(f"{name}: training {result['train_tokens_per_s']:.0f} tokens/s, three-stage inference {result['inference_questions_per_s']:.2f} questions/s")


if __name__ == "__main__":
    main()
