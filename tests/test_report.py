"""report.md / report.json / report.png from a report mapping."""

import json

from tinythinker.report import render_markdown, write_report


def report(best_iteration):
    return {
        "name": "t", "n_test": 60, "chance": 25.0,
        "test_accuracy": {"answer_only": 26.7, "cot": None, "phase1": {"summarize": 26.7, "recall_analyze_summarize": 61.7}, "phase2": [63.3, 65.0]},
        "valid_accuracy": {"answer_only": 28.3, "cot": None, "phase1": {"summarize": 28.3, "recall_analyze_summarize": 60.0}, "phase2": [61.0, 62.0]},
        "phase2_best_iteration": best_iteration,
        "wall_seconds": {"data": 0.5, "train:summarize": 18.0},
        "checks": [{"check": "phase 1 beats answer-only on test by 35.0 points (needed 15)", "passed": True}],
    }


def test_markdown_tables_and_phase2_sentence():
    text = render_markdown(report(2))
    assert "| answer only (`summarize`) | 28.3 | 26.7 |" in text
    assert "| phase 1 `recall_analyze_summarize` | 60.0 | 61.7 |" in text
    assert "| phase 2 iteration 2 | 62.0 | 65.0 |" in text
    assert "standard CoT" not in text  # not run: no row
    assert "keeps the model of iteration 2" in text and "| **total** | **18.5** |" in text
    assert "- PASS: phase 1 beats answer-only" in text
    assert "keeps phase 1's model" in render_markdown(report(0))


def test_write_report_files(tmp_path):
    write_report(report(1), tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["test_accuracy"]["phase2"] == [63.3, 65.0]
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "report.md").read_text().startswith("# tinythinker report: t")
