"""``tinythinker data prepare``: official files -> the paper's seeded splits (METHOD.md section 7).

Datasets are declared as data below: their official files, where to fetch them, their reader and
how they are split. Outputs are written to a temporary folder and moved into place only when
everything succeeded, so a failed run leaves nothing at ``--out``.
"""

from __future__ import annotations

import os
import random
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from .. import __version__
from ..errors import InputError, TinyThinkerError
from ..io import sha256_file, staged_dir, write_json
from .loaders import read_arc_style, read_mcq, read_strategyqa
from .schema import Question, check_unique_ids, write_questions

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """How one benchmark is read and split."""

    name: str
    reader: Callable[[str | Path], list[tuple[Question, int]]]
    files: tuple[str, ...]  # official file names, in the order --source takes them
    split: str  # "holdout": train minus |dev| random -> valid, dev -> test; "given": files are train/valid/test;
    # "ratio": concatenate, shuffle, 80/10/10
    archive_url: str | None = None  # a zip holding the files (found by name), or
    file_urls: tuple[str, ...] = ()  # one URL per file


DATASETS: dict[str, DatasetSpec] = {
    "csqa": DatasetSpec(
        "csqa",
        partial(read_arc_style, dataset="csqa", num_options=5),
        ("train_rand_split.jsonl", "dev_rand_split.jsonl"),
        "holdout",
        file_urls=(
            "https://s3.amazonaws.com/commensenseqa/train_rand_split.jsonl",
            "https://s3.amazonaws.com/commensenseqa/dev_rand_split.jsonl",
        ),
    ),
    "obqa": DatasetSpec(
        "obqa",
        partial(read_arc_style, dataset="obqa", num_options=4),
        ("train.jsonl", "dev.jsonl", "test.jsonl"),
        "given",
        archive_url="https://ai2-public-datasets.s3.amazonaws.com/open-book-qa/OpenBookQA-V1-Sep2018.zip",
    ),
    "strategyqa": DatasetSpec(
        "strategyqa",
        read_strategyqa,
        ("strategyqa_train.json",),
        "ratio",
        archive_url="https://storage.googleapis.com/ai2i/strategyqa/data/strategyqa_dataset.zip",
    ),
    "mcq": DatasetSpec("mcq", read_mcq, (), "ratio"),
}

# Files that are split the same way as one official file (the shared StrategyQA copy is in two parts).
KNOWN_PARTS = {"strategyqa": ("strategyqa_train_part1_of2.json", "strategyqa_train_part2_of2.json")}


def cache_dir() -> Path:
    return Path(os.environ.get("TINYTHINKER_CACHE", Path.home() / ".cache" / "tinythinker")) / "datasets"


def _download(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial_file = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, partial_file.open("wb") as handle:
            shutil.copyfileobj(response, handle)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        partial_file.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise TinyThinkerError(f"could not download {url} ({reason}); offline, pass the local files with --source") from None
    os.replace(partial_file, target)


def fetch(spec: DatasetSpec, cache: Path | None = None) -> list[Path]:
    """Official files for ``spec`` from the cache, downloading them first when missing."""
    if not spec.files:
        raise TinyThinkerError(f"--dataset {spec.name} needs your own files: pass them with --source")
    folder = (cache or cache_dir()) / spec.name
    paths = [folder / name for name in spec.files]
    if all(p.is_file() for p in paths):
        return paths
    if spec.archive_url:
        archive = folder / Path(spec.archive_url).name
        if not archive.is_file():
            _download(spec.archive_url, archive)
        with zipfile.ZipFile(archive) as zipped:
            members = {Path(m).name: m for m in zipped.namelist() if "/Additional/" not in m}
            for path in paths:
                if path.name not in members:
                    raise TinyThinkerError(f"{archive}: {path.name} not found in the archive")
                with zipped.open(members[path.name]) as src, path.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    else:
        for url, path in zip(spec.file_urls, paths):
            if not path.is_file():
                _download(url, path)
    return paths


def resolve_sources(spec: DatasetSpec, sources: list[str]) -> list[Path]:
    """``--source`` values: files in the documented order, or one folder holding the official names."""
    if not sources:
        return fetch(spec)
    if len(sources) == 1 and Path(sources[0]).is_dir():
        folder = Path(sources[0])
        for names in (spec.files, KNOWN_PARTS.get(spec.name, ())):
            if names and all((folder / n).is_file() for n in names):
                return [folder / n for n in names]
        expected = " or ".join(", ".join(n) for n in (spec.files, KNOWN_PARTS.get(spec.name, ())) if n)
        raise InputError(folder, f"folder does not hold the {spec.name} files ({expected or 'pass files, not a folder'})")
    paths = [Path(s) for s in sources]
    for path in paths:
        if not path.is_file():
            raise InputError(path, "file not found")
    wanted = {"holdout": (2,), "given": (3,)}.get(spec.split)
    if spec.name == "mcq":
        wanted = (1, 2, 3)
    if wanted and len(paths) not in wanted:
        raise TinyThinkerError(f"--dataset {spec.name} takes {' or '.join(map(str, wanted))} --source files ({', '.join(spec.files)}), got {len(paths)}")
    return paths


def split_questions(spec: DatasetSpec, per_file: list[list[Question]], seed: int) -> dict[str, list[Question]]:
    """The paper's splits, seeded. Order inside each split follows the input order."""
    rng = random.Random(seed)
    split = spec.split
    if spec.name == "mcq":
        split = {1: "ratio", 2: "holdout_10", 3: "given"}[len(per_file)]
    if split == "given":
        return dict(zip(SPLITS, per_file))
    if split in ("holdout", "holdout_10"):
        train, test = per_file
        size = len(test) if split == "holdout" else len(train) // 10
        if size >= len(train):
            raise TinyThinkerError(f"cannot hold out {size} validation questions from {len(train)} training questions")
        held = set(rng.sample(range(len(train)), size))
        return {
            "train": [q for i, q in enumerate(train) if i not in held],
            "valid": [q for i, q in enumerate(train) if i in held],
            "test": test,
        }
    pool = [q for questions in per_file for q in questions]
    rng.shuffle(pool)
    n_train, n_valid = len(pool) * 8 // 10, len(pool) // 10
    return {"train": pool[:n_train], "valid": pool[n_train : n_train + n_valid], "test": pool[n_train + n_valid :]}


def prepare(dataset: str, sources: list[str], out: str | Path, seed: int = 42) -> dict:
    """Read, validate and split a benchmark; write ``train/valid/test.jsonl`` and ``manifest.json``."""
    if dataset not in DATASETS:
        raise TinyThinkerError(f"unknown --dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    spec = DATASETS[dataset]
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise TinyThinkerError(f"{out}: exists and is not a prepared data folder; choose another --out")
    paths = resolve_sources(spec, sources)
    per_file: list[list[Question]] = []
    located_all: list[tuple[Question, int, Path]] = []
    for path in paths:
        located = spec.reader(path)
        if not located:
            raise InputError(path, "file is empty: no questions")
        check_unique_ids(located, path)
        per_file.append([q for q, _ in located])
        located_all.extend((q, line, path) for q, line in located)
    first_seen: dict[str, tuple[Path, int]] = {}
    for question, line, path in located_all:
        if question.id in first_seen:
            other, other_line = first_seen[question.id]
            raise InputError(path, f"duplicate id {question.id!r} (also in {other}:{other_line})", line=line, field="id")
        first_seen[question.id] = (path, line)
    splits = split_questions(spec, per_file, seed)
    empty = [name for name in SPLITS if not splits[name]]
    if empty:
        total = sum(len(qs) for qs in per_file)
        raise TinyThinkerError(f"the {empty[0]} split would be empty ({total} questions in all): give more questions, or train/valid/test files")
    manifest = {
        "dataset": dataset,
        "seed": seed,
        "counts": {name: len(splits[name]) for name in SPLITS},
        "sources": [{"path": str(p), "sha256": sha256_file(p), "questions": len(qs)} for p, qs in zip(paths, per_file)],
        "tinythinker_version": __version__,
    }
    with staged_dir(out) as tmp:
        for name in SPLITS:
            write_questions(tmp / f"{name}.jsonl", splits[name])
        write_json(tmp / "manifest.json", manifest)
    return manifest
