"""Stage folders, the round-robin schedule, batch streams, and the exact tokens a student is trained on."""

from __future__ import annotations

import json

import pytest
import torch
from stage_fixtures import THINGS, make_questions, write_stage_dir

from tinythinker import stages
from tinythinker.data.schema import Option, Question
from tinythinker.errors import ConfigError, InputError
from tinythinker.student import build_scratch
from tinythinker.train.data import BatchStream, collate, read_stage_dir, stage_at, stage_schedule, tokenize_rows
from tinythinker.train.sft import token_loss_sum

SKY = Question("s1", "What colour is the sky?", [Option("A", "red"), Option("B", "blue"), Option("C", "green")], "B")


def test_schedule_is_interval_then_interval_times_options_then_interval():
    full = stage_schedule("recall_analyze_summarize", 100, 5)
    assert full == [("recall", 100), ("analyze", 500), ("summarize", 100)]
    assert [stage_at(s, full) for s in (0, 99, 100, 599, 600, 699, 700, 1399)] == [
        "recall", "recall", "analyze", "analyze", "summarize", "summarize", "recall", "summarize"
    ]  # fmt: skip
    assert stage_schedule("recall_summarize", 3, 4) == [("recall", 3), ("summarize", 3)]
    assert stage_schedule("analyze_summarize", 3, 4) == [("analyze", 12), ("summarize", 3)]
    assert stage_schedule("summarize", 3, 4) == [("summarize", 3)]
    assert stage_schedule("cot", 3, 4) == [("cot", 3)]


def test_stream_is_seeded_resumable_and_covers_every_row():
    lengths = [(i * 7) % 23 for i in range(40)]
    a, b = BatchStream(lengths, 8, seed=3), BatchStream(lengths, 8, seed=3)
    first = [a.next() for _ in range(5)]
    assert first == [b.next() for _ in range(5)]
    assert sorted(i for batch in first for i in batch) == list(range(40))  # one pass = every row once
    state = a.state_dict()
    ahead = [a.next() for _ in range(7)]
    c = BatchStream(lengths, 8, seed=3)
    c.load_state_dict(json.loads(json.dumps(state)))
    assert [c.next() for _ in range(7)] == ahead
    assert BatchStream(lengths, 8, seed=4).next() != first[0]


def test_length_grouping_cuts_padding():
    lengths = [1 + (i * 37) % 100 for i in range(400)]

    def padding(stream):
        total = 0
        for _ in range(50):
            batch = stream.next()
            total += sum(max(lengths[i] for i in batch) - lengths[i] for i in batch)
        return total

    grouped, plain = BatchStream(lengths, 8, 0, group_by_length=True), BatchStream(lengths, 8, 0, group_by_length=False)
    assert padding(grouped) * 5 < padding(plain)


def test_the_student_is_trained_on_exactly_the_method_strings():
    """Token ids decode back to METHOD.md section 3 strings, for seq2seq inputs/targets and causal prompt + completion."""
    recall_input = "What colour is the sky?\n(A) red (B) blue (C) green\nRecall:"
    analyze_input = "What colour is the sky?\n(A) red (B) blue (C) green\nRecall: The sky is blue.\nAnalyze: For option B,"
    rows = [(recall_input, "The sky is blue."), (analyze_input, "blue is correct. Because the sky is blue.")]
    built = stages.stage_rows(SKY, "The sky is blue", {"A": "red is incorrect.", "B": "blue is correct. Because the sky is blue.", "C": "no."})
    assert built["recall"][0] == rows[0] and built["analyze"][1] == rows[1]
    texts = [t for row in rows for t in row]
    for preset in ("t5-tiny", "llama-tiny"):
        student = build_scratch(preset, texts * 3, vocab_size=300)
        tok = student.tokenizer
        seq2seq = preset.startswith("t5")
        for (source, target), (ids, labels) in zip(rows, tokenize_rows(tok, rows, seq2seq, 512, 256)):
            assert labels[-1] == tok.eos_token_id
            if seq2seq:
                assert ids[-1] == tok.eos_token_id
                assert tok.decode(ids, skip_special_tokens=True) == source
                assert tok.decode(labels, skip_special_tokens=True) == target
            else:
                assert ids[0] == tok.bos_token_id
                assert tok.decode(ids + labels, skip_special_tokens=True) == source + stages.COMPLETION_SEPARATOR + target
                assert tok.decode(labels, skip_special_tokens=True) == stages.COMPLETION_SEPARATOR + target


def test_causal_loss_counts_completion_tokens_only():
    student = build_scratch("llama-tiny", ["a b c d e f g h"] * 5, vocab_size=300, overrides={"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2, "num_key_value_heads": 2})
    examples = [([5, 6, 7], [8, 9, 1]), ([5, 6], [10, 1])]
    batch = collate(examples, pad_id=0, seq2seq=False)
    assert batch["labels"].tolist() == [[-100, -100, -100, 8, 9, 1], [-100, -100, 10, 1, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1] * 6, [1, 1, 1, 1, 0, 0]]
    model = student.model
    total = token_loss_sum(model, batch, False, model)
    expected = 0.0
    for prompt, completion in examples:
        logits = model(torch.tensor([prompt + completion])).logits[0].log_softmax(-1)
        expected -= sum(logits[len(prompt) - 1 + k, token].item() for k, token in enumerate(completion))
    assert total.item() == pytest.approx(expected, rel=1e-4)


def test_stage_folder_errors_name_file_line_and_field(tmp_path):
    folder = write_stage_dir(tmp_path / "stages", make_questions(list(THINGS)[:3]))
    data = read_stage_dir(folder)
    assert data.variant == stages.FULL_VARIANT and data.num_options == 3
    assert [len(data.rows[s]) for s in ("recall", "analyze", "summarize")] == [3, 9, 3]
    with pytest.raises(ConfigError, match="built for variant"):
        read_stage_dir(folder, variant="summarize")
    lines = (folder / "analyze.jsonl").read_text().splitlines()
    lines[1] = json.dumps({"id": "x", "input": "q", "target": ""})
    (folder / "analyze.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"analyze.jsonl:2: field 'target'"):
        read_stage_dir(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(InputError, match="manifest.json: file not found"):
        read_stage_dir(folder)
