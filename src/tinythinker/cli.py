"""The ``tinythinker`` command line: a thin layer over the package's functions.

Every command turns a TinyThinkerError (bad input, bad config, offline hub access) into one line
on stderr and exit code 2; no traceback is shown for those.
"""

from __future__ import annotations

import functools
import sys
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
    counts = ", ".join(f"{name} {n}" for name, n in manifest["counts"].items())
    typer.echo(f"wrote {out}: {counts}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
