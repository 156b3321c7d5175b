"""The run report: ``report.json`` (numbers), ``report.md`` (tables) and ``report.png`` (a chart).

``report.json`` holds at least::

    {"test_accuracy": {"answer_only": float | null, "cot": float | null,
                       "phase1": {VARIANT: float, ...}, "phase2": [float per iteration]},
     "wall_seconds": {STEP: float, ...}}

Accuracies are in percent. ``answer_only`` is the ``summarize`` variant's score; a baseline the
config did not run is null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .io import atomic_write_text, write_json

LABELS = {
    "summarize": "answer only",
    "recall_summarize": "recall + summarize",
    "analyze_summarize": "analyze + summarize",
    "recall_analyze_summarize": "TinyThinker phase 1",
}


def percent(accuracy: float | None) -> float | None:
    return None if accuracy is None else round(100.0 * accuracy, 2)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def render_markdown(report: dict[str, Any]) -> str:
    test, valid = report["test_accuracy"], report.get("valid_accuracy", {})
    lines = [f"# tinythinker report: {report.get('name', 'run')}", ""]
    if report.get("description"):
        lines += [report["description"], ""]
    lines += [f"Test questions: {report.get('n_test', '?')}; chance: {_fmt(report.get('chance'))} %.", ""]
    lines += ["## Accuracy (%)", "", "| model | validation | test |", "|---|---|---|"]
    rows = [("answer only (`summarize`)", valid.get("answer_only"), test.get("answer_only"))]
    if test.get("cot") is not None or valid.get("cot") is not None:
        rows.append(("standard CoT distillation", valid.get("cot"), test.get("cot")))
    for variant, value in test.get("phase1", {}).items():
        if variant != "summarize":
            rows.append((f"phase 1 `{variant}`", valid.get("phase1", {}).get(variant), value))
    for index, value in enumerate(test.get("phase2", []), start=1):
        rows.append((f"phase 2 iteration {index}", (valid.get("phase2") or [None] * index)[index - 1], value))
    lines += [f"| {name} | {_fmt(v)} | {_fmt(t)} |" for name, v, t in rows]
    if report.get("phase2_best_iteration"):
        lines += ["", f"Phase 2 keeps the model of iteration {report['phase2_best_iteration']} (best validation accuracy)."]
    elif report.get("phase2_best_iteration") == 0:
        lines += ["", "No phase-2 iteration beat phase 1 on validation: phase 2 keeps phase 1's model."]
    lines += ["", "## Wall time (s)", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {step} | {seconds:.1f} |" for step, seconds in report.get("wall_seconds", {}).items()]
    total = sum(report.get("wall_seconds", {}).values())
    lines += [f"| **total** | **{total:.1f}** |", ""]
    if report.get("checks"):
        lines += ["## Checks", ""] + [f"- {'PASS' if c['passed'] else 'FAIL'}: {c['check']}" for c in report["checks"]] + [""]
    return "\n".join(lines)


def render_chart(report: dict[str, Any], path: Path) -> None:
    """A bar chart of test accuracy per model, with the chance level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = report["test_accuracy"]
    names, values = [], []
    if test.get("answer_only") is not None:
        names.append("answer only")
        values.append(test["answer_only"])
    if test.get("cot") is not None:
        names.append("CoT distill.")
        values.append(test["cot"])
    for variant, value in test.get("phase1", {}).items():
        if variant != "summarize" and value is not None:
            names.append(LABELS.get(variant, variant).replace("TinyThinker ", ""))
            values.append(value)
    for index, value in enumerate(test.get("phase2", []), start=1):
        names.append(f"phase 2 it. {index}")
        values.append(value)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names) + 1), 3.6), dpi=120)
    bars = ax.bar(range(len(names)), values, color=["#999999" if n in ("answer only", "CoT distill.") else "#3b75af" for n in names])
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 1, f"{value:.1f}", ha="center", fontsize=8)
    if report.get("chance") is not None:
        ax.axhline(report["chance"], color="#cc4444", linestyle="--", linewidth=1, label="chance")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(report.get("name", "tinythinker"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(report: dict[str, Any], out: str | Path) -> None:
    """Write report.json, report.md and report.png into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    render_chart(report, out / "report.png")
    atomic_write_text(out / "report.md", render_markdown(report))
    write_json(out / "report.json", report)
