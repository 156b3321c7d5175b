"""Students: scratch presets with a trained tokenizer, saving, plain Auto-class reloading, clear load errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import transformers

from tinythinker.errors import ConfigError, TinyThinkerError
from tinythinker.student import PRESETS, StudentConfig, build_scratch, is_t5, load_student, make_student
from tinythinker.train.sft import resolve_precision

TEXTS = [
    "What colour is the sky?\n(A) red (B) blue (C) green\nRecall: The sky is blue.\nAnalyze: For option A, red is incorrect.",
    "Où est la café? Ünïcödé and  double  spaces, tabs\tand 1234.",
    "So the answer is option B.",
]
TINY = {
    "t5-tiny": {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "d_kv": 16},
    "llama-tiny": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2},
}


@pytest.mark.parametrize(("preset", "auto_class"), [("t5-tiny", "AutoModelForSeq2SeqLM"), ("llama-tiny", "AutoModelForCausalLM")])
def test_scratch_student_saves_and_reloads_with_plain_auto_classes(tmp_path, preset, auto_class):
    student = build_scratch(preset, TEXTS * 5, vocab_size=320, overrides=TINY[preset], seed=3)
    assert student.is_seq2seq == (preset == "t5-tiny")
    student.save(tmp_path / "student")
    assert (tmp_path / "student" / "model.safetensors").is_file()
    assert not list((tmp_path / "student").glob("*.bin"))
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "student")
    model = getattr(transformers, auto_class).from_pretrained(tmp_path / "student")
    for text in TEXTS:  # byte-level: lossless, newlines and accents included
        assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text
    ids = tokenizer(TEXTS[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        extra = {"decoder_input_ids": ids[:, :4]} if student.is_seq2seq else {}
        student.model.eval()
        assert torch.equal(model(input_ids=ids, **extra).logits, student.model(input_ids=ids, **extra).logits)
    reloaded = load_student(tmp_path / "student")
    assert reloaded.tokenizer.pad_token_id is not None and reloaded.is_seq2seq == student.is_seq2seq


def test_t5_inputs_end_with_eos_and_causal_prompts_start_with_bos():
    t5 = build_scratch("t5-tiny", TEXTS, vocab_size=300, overrides=TINY["t5-tiny"])
    assert t5.tokenizer("Recall:")["input_ids"][-1] == t5.tokenizer.eos_token_id
    assert t5.model.config.decoder_start_token_id == t5.tokenizer.pad_token_id
    llama = build_scratch("llama-tiny", TEXTS, vocab_size=300, overrides=TINY["llama-tiny"])
    assert llama.tokenizer("Recall:")["input_ids"][0] == llama.tokenizer.bos_token_id


def test_t5_small_preset_has_the_t5_small_shape():
    student = build_scratch("t5-small", TEXTS, vocab_size=300)
    config = student.model.config
    assert (config.d_model, config.d_ff, config.num_layers, config.num_decoder_layers, config.num_heads) == (512, 2048, 6, 6, 8)
    assert is_t5(student.model)


def test_config_and_errors_are_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown scratch preset 'gpt-9'"):
        StudentConfig(name="gpt-9", init="scratch").validate()
    with pytest.raises(ConfigError, match="student.init"):
        StudentConfig(init="warm").validate()
    with pytest.raises(TinyThinkerError, match="folder not found"):
        load_student(str(tmp_path / "missing" / "model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TinyThinkerError, match="cannot load student from folder"):
        load_student(tmp_path / "empty")
    with pytest.raises(ConfigError, match="invalid for preset"):
        build_scratch("t5-tiny", TEXTS, vocab_size=300, overrides={"num_heads": "many"})
    config = StudentConfig(name="t5-tiny", vocab_size=300, overrides=TINY["t5-tiny"])
    assert make_student(config, TEXTS).is_seq2seq
    assert set(PRESETS) >= {"t5-tiny", "t5-small", "llama-tiny"}


def test_fp16_refused_for_t5_models():
    t5 = build_scratch("t5-tiny", TEXTS, vocab_size=300, overrides=TINY["t5-tiny"])
    with pytest.raises(ConfigError, match="fp16 is refused for T5"):
        resolve_precision("fp16", t5.model, "cuda")
    assert resolve_precision("auto", t5.model, "cpu") == "no"
    assert resolve_precision("bf16", t5.model, "cpu") == "bf16"


def test_offline_hub_name_fails_with_one_line(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "1", "question": "q?", "options": [{"label": "A", "text": "a"}, {"label": "B", "text": "b"}], "answer": "A"}\n')
    command = [sys.executable, "-m", "tinythinker.cli", "eval", "--model", "google-t5/t5-small", "--data", str(questions), "--out", str(tmp_path / "out")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot load student 'google-t5/t5-small'"), done.stderr
    assert not (tmp_path / "out").exists()


def test_students_load_in_float32_whatever_the_checkpoint_dtype(tmp_path):
    student = build_scratch("t5-tiny", TEXTS, vocab_size=300, overrides=TINY["t5-tiny"])
    student.model.to(torch.bfloat16)
    student.save(tmp_path / "bf16")
    assert next(load_student(tmp_path / "bf16").model.parameters()).dtype == torch.float32
