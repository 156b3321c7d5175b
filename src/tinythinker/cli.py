"""The ``tinythinker`` command line: a thin layer over the package's functions.

Every command turns a TinyThinkerError (bad input, bad config, offline hub access) into one line
on stderr and exit code 2; no traceback is shown for those.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, List, Optional

import typer

from .errors import TinyThinkerError

app = typer.Typer(
    name="tinythinker",
    help="Distill Recall -> Analyze -> Summarize reasoning from a teacher LLM into a small student.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Benchmark data: load official formats, make the paper's splits.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def echo_counts(out: Path, manifest: dict) -> None:
    """``wrote OUT: train 8520, valid 1221, ...`` from a manifest's counts."""
    typer.echo(f"wrote {out}: " + ", ".join(f"{name} {n}" for name, n in manifest["counts"].items()))


def user_errors(func: Callable) -> Callable:
    """Run a command; show TinyThinkerError as one line and exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TinyThinkerError as exc:
            fail(str(exc))

    return wrapper


@data_app.command("prepare")
@user_errors
def data_prepare(
    dataset: str = typer.Option(..., help="csqa, obqa, strategyqa, or mcq (canonical JSONL or CSV of your own)."),
    source: Optional[List[Path]] = typer.Option(
        None, help="Input file(s) in the dataset's official format; repeat for several. Omitted: fetch into the cache."
    ),
    out: Path = typer.Option(..., help="Output folder for train/valid/test.jsonl and manifest.json."),
    seed: int = typer.Option(42, help="Seed of the random splits."),
) -> None:
    """Load a benchmark, split it as the paper does, write canonical JSONL and a manifest."""
    from .data.prepare import prepare

    manifest = prepare(dataset, [str(s) for s in source or []], out, seed=seed)
    echo_counts(out, manifest)


@data_app.command("synth", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@user_errors
def data_synth(
    ctx: typer.Context,
    out: Path = typer.Option(..., help="Output folder for train/valid/test.jsonl, world.json and manifest.json."),
    config: Optional[Path] = typer.Option(None, help="YAML file of WorldConfig fields."),
) -> None:
    """Generate the synthetic benchmark; world settings as key=value (e.g. entities=80 options=4)."""
    from .config import load_config
    from .data.synthetic import WorldConfig, write_benchmark

    manifest = write_benchmark(load_config(WorldConfig, config, ctx.args), out)
    echo_counts(out, manifest)


@app.command("train")
@user_errors
def train_command(
    config: Path = typer.Option(..., "--config", help="Phase-1 YAML config (see configs/ and docs/train.md)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, dotted for nesting (student.name=t5-tiny)."),
) -> None:
    """Phase 1: train a student on the recall / analyze / summarize stages."""
    from .config import load_config
    from .train.sft import SFTConfig, train

    metrics = train(load_config(SFTConfig, config, overrides or []))
    best = metrics["best_accuracy"]
    typer.echo(f"trained {metrics['steps']} steps; best validation accuracy {best if best is None else round(best, 4)}")


@app.command("reflect")
@user_errors
def reflect_command(
    config: Path = typer.Option(..., "--config", help="Phase-2 YAML config (ReflectConfig keys; see docs/reflect.md)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides (iterations=2 dpo_on=recall)."),
) -> None:
    """Phase 2: iterative DPO on the student's own sampled reasoning (self-reflection)."""
    from .config import load_config
    from .train.dpo import ReflectConfig, reflect

    summary = reflect(load_config(ReflectConfig, config, overrides or []))
    for row in summary["iterations"]:
        test = "" if row["test_accuracy"] is None else f", test {row['test_accuracy']:.4f}"
        typer.echo(f"iteration {row['iteration']}: validation {row['valid_accuracy']:.4f}{test}, pairs {row['pairs']}")
    typer.echo(f"kept {summary['best']} (validation {summary['best_valid_accuracy']:.4f})")


@app.command("eval")
@user_errors
def eval_command(
    model: Path = typer.Option(..., help="Student folder (save_pretrained, e.g. RUN/best) or hub name."),
    data: Path = typer.Option(..., help="Canonical question JSONL (e.g. test.jsonl of `data prepare`)."),
    out: Path = typer.Option(..., help="Output folder for metrics.json and predictions.jsonl."),
    samples: int = typer.Option(1, help="Chains per question; above 1: self-consistency with a majority vote."),
    variant: Optional[str] = typer.Option(None, help="Stage variant or cot; default: the one the student was trained on."),
    batch_size: int = typer.Option(64, help="Prompts per generation batch."),
    max_new_tokens: int = typer.Option(200, help="Generation limit per stage."),
    temperature: float = typer.Option(0.7, help="Sampling temperature of recall/analyze when samples > 1."),
    top_k: int = typer.Option(0, help="Top-k sampling when samples > 1 (0: off)."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling when samples > 1 (1.0: off)."),
    limit: int = typer.Option(0, help="Answer only the first N questions (0: all)."),
    seed: int = typer.Option(42, help="Seed of the sampling."),
) -> None:
    """Answer a question file with the three-stage pipeline; write accuracy and per-question predictions."""
    from .evaluate import evaluate

    metrics = evaluate(
        str(model), data, out, samples=samples, variant=variant, batch_size=batch_size,
        max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, limit=limit, seed=seed,
    )
    typer.echo(f"accuracy {metrics['accuracy']:.4f} on {metrics['n']} questions; wrote {out}")


@app.command("teach")
@user_errors
def teach_command(
    data: Path = typer.Option(..., help="Canonical question JSONL to rationalize (e.g. DIR/train.jsonl)."),
    out: Path = typer.Option(..., help="Output folder: rationales.jsonl, report.json, cache.sqlite, teach.log."),
    teacher: Optional[str] = typer.Option(None, help="openai, synthetic, or import:{dss-palm,ecqa-freeflow,strategyqa-facts,jsonl}."),
    model: Optional[str] = typer.Option(None, help="Teacher model name (chat teachers)."),
    base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."),
    api_key_env: Optional[str] = typer.Option(None, help="Environment variable holding the API key [OPENAI_API_KEY]."),
    samples: Optional[int] = typer.Option(None, help="Rationales wanted per question [4]."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature [0.8]."),
    max_tokens: Optional[int] = typer.Option(None, help="Reply limit, doubled when a reply is cut off [256]."),
    rounds: Optional[int] = typer.Option(None, help="Re-ask rounds for rejected replies [2]."),
    use_n: Optional[bool] = typer.Option(None, "--use-n/--no-n", help="Ask all samples in one request with the API's n [on]."),
    concurrency: Optional[int] = typer.Option(None, help="Requests in flight [8]."),
    rpm: Optional[float] = typer.Option(None, help="Requests-per-minute limit."),
    tpm: Optional[float] = typer.Option(None, help="Tokens-per-minute limit."),
    timeout: Optional[float] = typer.Option(None, help="Seconds per request attempt [60]."),
    max_retries: Optional[int] = typer.Option(None, help="Retries per request [6]."),
    exemplars: Optional[str] = typer.Option(None, help="Exemplar set (csqa, obqa, strategyqa, generic) or JSON file."),
    prices: Optional[str] = typer.Option(None, help="JSON/YAML price table {model: {input, output}} in USD per 1M tokens."),
    max_cost: Optional[float] = typer.Option(None, help="Stop before spending more than this many USD (this --out, all runs)."),
    relabel_by_vote: Optional[bool] = typer.Option(None, "--relabel-by-vote", help="Replace gold labels by the teacher's vote."),
    source: Optional[str] = typer.Option(None, help="Importer input file or folder; world.json for the synthetic teacher."),
    estimate: bool = typer.Option(False, "--estimate", help="Print requests, tokens and cost without calling the API."),
    config: Optional[Path] = typer.Option(None, help="YAML with TeachConfig keys (CLI options win)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value TeachConfig overrides."),
) -> None:
    """Generate teacher rationales (or import them): DIR/rationales.jsonl and DIR/report.json."""
    options = dict(locals())
    import dataclasses
    import json

    from .config import load_config
    from .teacher.teach import TeachConfig, estimate as estimate_cost, teach

    fields = {f.name for f in dataclasses.fields(TeachConfig)}
    given = {k: v for k, v in options.items() if k in fields and v is not None}
    # CLI options are applied last, as JSON-quoted overrides (YAML reads JSON back unchanged)
    settings = load_config(TeachConfig, config, [*(overrides or []), *(f"{k}={json.dumps(v)}" for k, v in given.items())])
    if estimate:
        typer.echo(json.dumps(estimate_cost(data, out, settings), indent=2))
        return
    report = teach(data, out, settings)
    if report["status"] != "complete":
        typer.echo(f"stopped ({report['status']}): cache kept in {out}; re-run the same command to finish (see {out}/report.json)", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"wrote {out}/rationales.jsonl: {report['rationales_written']} rationales for "
               f"{report['questions_with_rationale']}/{report['questions']} questions (report: {out}/report.json)")


@app.command("build")
@user_errors
def build_command(
    data: Path = typer.Option(..., help="Prepared data folder (uses train.jsonl) or a question JSONL."),
    rationales: Path = typer.Option(..., help="Rationale JSONL from `tinythinker teach`."),
    out: Path = typer.Option(..., help="Output folder for the stage files and manifest.json."),
    variant: str = typer.Option("recall_analyze_summarize", help="Stage variant, or cot for the CoT-distillation baseline."),
) -> None:
    """Build the stage training sets (recall/analyze/summarize.jsonl, or cot.jsonl) from rationales."""
    from .teacher.build import build

    manifest = build(data, rationales, out, variant)
    echo_counts(out, manifest)


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@user_errors
def run_command(
    ctx: typer.Context,
    config: Optional[str] = typer.Argument(None, help="YAML config file, or a bundled one: default, ablations, ci. [default]"),
    out: Optional[Path] = typer.Option(None, help="Output folder (overrides the config's out)."),
) -> None:
    """The whole pipeline: data, teacher, phase 1 (+ baselines), phase 2, evaluation, report. Resumes."""
    from .config import load_config
    from .pipeline import RunConfig, resolve_config_path, run

    extra = list(ctx.args)
    if config is not None and "=" in config and not Path(config).is_file():  # `run key=value ...`: the default config
        config, extra = None, [config, *extra]
    path = resolve_config_path(config)
    overrides = extra + ([f"out={out}"] if out is not None else [])
    settings = load_config(RunConfig, path, overrides)
    report = run(settings)
    test = report["test_accuracy"]
    typer.echo(f"test accuracy (%): answer-only {test['answer_only']}, phase 1 {test['phase1']}, phase 2 {test['phase2']}")
    for check in report["checks"]:
        typer.echo(f"{'PASS' if check['passed'] else 'FAIL'}: {check['check']}")
    typer.echo(f"report: {Path(settings.out) / 'report.md'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
