"""Students: load a Hugging Face model by hub name or local folder, or build one from scratch.

Features:
- Any seq2seq model (T5, Flan-T5, BART, ...) or causal LM, through the transformers Auto classes.
  ``trust_remote_code`` is off unless asked for. Offline or unknown hub names fail with one line.
- ``init: scratch``: a model from a named size preset (``PRESETS``) with random weights and a
  byte-level BPE tokenizer trained with the ``tokenizers`` library on the given texts. The saved
  folder loads with plain ``AutoTokenizer`` / ``AutoModelForSeq2SeqLM`` / ``AutoModelForCausalLM``.
- Saving always uses safetensors.

Assumptions: encoder inputs get the tokenizer's own special tokens (``</s>`` for T5); causal
students see ``prompt + COMPLETION_SEPARATOR + target + eos`` (see ``tinythinker.stages``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError, TinyThinkerError
from .io import staged_dir, write_json

# Size presets for `init: scratch`. "arch" picks the transformers config class; the rest are its fields.
PRESETS: dict[str, dict[str, Any]] = {
    "t5-tiny": dict(arch="t5", d_model=64, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4, d_kv=16),
    "t5-mini": dict(arch="t5", d_model=256, d_ff=1024, num_layers=4, num_decoder_layers=4, num_heads=4, d_kv=64),
    # the shape of google-t5/t5-small (60M parameters with its 32k vocabulary)
    "t5-small": dict(arch="t5", d_model=512, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8, d_kv=64),
    "llama-tiny": dict(
        arch="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4
    ),
    "llama-small": dict(
        arch="llama", hidden_size=512, intermediate_size=1408, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8
    ),
}
SCRATCH_VOCAB_SIZE = 8000
STUDENT_META = "tinythinker_student.json"  # written by the trainer beside a saved student: variant, step, accuracy
T5_FAMILY = ("t5", "mt5", "umt5", "longt5", "switch_transformers")


@dataclass
class StudentConfig:
    """Which student to train.

    Fields:
        name: hub name (``google-t5/t5-small``), a local ``save_pretrained`` folder, or, with
            ``init: scratch``, a preset name from ``tinythinker.student.PRESETS``.
        init: ``pretrained`` (load ``name``) or ``scratch`` (random weights, new tokenizer).
        vocab_size: size of the tokenizer trained for a scratch student.
        overrides: extra fields for a scratch model's transformers config (e.g. ``{dropout_rate: 0.0}``).
        trust_remote_code: allow model code from the hub (off by default; only for models you trust).
    """

    name: str = "t5-tiny"
    init: str = "scratch"
    vocab_size: int = SCRATCH_VOCAB_SIZE
    overrides: dict = field(default_factory=dict)
    trust_remote_code: bool = False

    def validate(self) -> None:
        if self.init not in ("pretrained", "scratch"):
            raise ConfigError(f"student.init: expected 'pretrained' or 'scratch', got {self.init!r}")
        if self.init == "scratch" and self.name not in PRESETS:
            raise ConfigError(f"student.name: unknown scratch preset {self.name!r}; choose one of {', '.join(PRESETS)}")
        if self.vocab_size < 300:
            raise ConfigError("student.vocab_size: must be at least 300 (256 byte symbols + specials)")


@dataclass
class Student:
    """A model with its tokenizer; ``is_seq2seq`` tells encoder-decoder from decoder-only."""

    model: Any
    tokenizer: Any

    @property
    def is_seq2seq(self) -> bool:
        return bool(getattr(self.model.config, "is_encoder_decoder", False))

    @property
    def model_type(self) -> str:
        return str(getattr(self.model.config, "model_type", ""))

    def save(self, out: str | Path, meta: dict[str, Any] | None = None) -> None:
        save_student(self.model, self.tokenizer, out, meta)


def is_t5(model_or_config: Any) -> bool:
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "model_type", "") in T5_FAMILY


def _hub_error(name: str, exc: Exception) -> TinyThinkerError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if Path(name).is_dir():
        return TinyThinkerError(f"cannot load student from folder {name}: {first}")
    return TinyThinkerError(
        f"cannot load student {name!r}: not a local model folder and not reachable on the Hugging Face hub "
        f"(offline, misspelled or gated?): {first}"
    )


def load_student(name: str | Path, trust_remote_code: bool = False) -> Student:
    """Load a seq2seq or causal model (float32) and its tokenizer from the hub or a local folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    name = str(name)
    local = Path(name).expanduser()
    if local.is_dir():
        name = str(local)
    elif name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise TinyThinkerError(f"cannot load student {name!r}: folder not found")
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
        auto = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
        # float32 weights (transformers 5 would keep a checkpoint's bf16/fp16); bf16 comes from autocast
        model = auto.from_pretrained(name, trust_remote_code=trust_remote_code, dtype=torch.float32)
    except (OSError, EnvironmentError, ValueError) as exc:
        raise _hub_error(name, exc) from None
    except Exception as exc:  # huggingface_hub errors that do not derive from OSError
        if type(exc).__module__.startswith(("huggingface_hub", "requests", "httpx", "urllib3")):
            raise _hub_error(name, exc) from None
        raise
    if tokenizer.eos_token_id is None:
        raise TinyThinkerError(f"student {name}: its tokenizer has no eos token, so generated stages could not end")
    if tokenizer.pad_token_id is None:
        # decoder-only models often ship without a pad token; eos is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    return Student(model, tokenizer)


def train_tokenizer(texts: Iterable[str], vocab_size: int = SCRATCH_VOCAB_SIZE, causal: bool = False):
    """A byte-level BPE tokenizer (lossless on any text, newlines included) as a transformers tokenizer.

    Encoder-decoder inputs end with ``</s>`` (as T5's); causal inputs start with ``<s>``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"] + (["<s>"] if causal else [])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    if causal:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    else:
        tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    extra = {"bos_token": "<s>"} if causal else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", clean_up_tokenization_spaces=False, **extra
    )


def scratch_model(preset: str, tokenizer, overrides: dict | None = None, seed: int = 42):
    """A randomly initialised model of a preset's shape, sized to the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, LlamaConfig, T5Config

    if preset not in PRESETS:
        raise ConfigError(f"unknown scratch preset {preset!r}; choose one of {', '.join(PRESETS)}")
    fields = copy.deepcopy(PRESETS[preset])
    arch = fields.pop("arch")
    fields.update(overrides or {})
    torch.manual_seed(seed)
    try:
        if arch == "t5":
            config = T5Config(
                vocab_size=len(tokenizer),
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                decoder_start_token_id=tokenizer.pad_token_id,
                **fields,
            )
            return AutoModelForSeq2SeqLM.from_config(config)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            max_position_embeddings=fields.pop("max_position_embeddings", 2048),
            tie_word_embeddings=fields.pop("tie_word_embeddings", True),
            **fields,
        )
        return AutoModelForCausalLM.from_config(config)
    except Exception as exc:  # TypeError / ValueError, or huggingface_hub's strict-dataclass validation error
        if isinstance(exc, (TypeError, ValueError)) or type(exc).__module__.startswith("huggingface_hub"):
            message = " ".join(str(exc).split())
            raise ConfigError(f"student.overrides: invalid for preset {preset!r}: {message}") from None
        raise


def build_scratch(preset: str, texts: Iterable[str], vocab_size: int = SCRATCH_VOCAB_SIZE, overrides: dict | None = None, seed: int = 42) -> Student:
    """Train a tokenizer on ``texts`` and build a random model of ``preset``'s shape."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown scratch preset {preset!r}; choose one of {', '.join(PRESETS)}")
    causal = PRESETS[preset]["arch"] != "t5"
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size, causal=causal)
    return Student(scratch_model(preset, tokenizer, overrides, seed=seed), tokenizer)


def make_student(config: StudentConfig, texts: Iterable[str] = (), seed: int = 42) -> Student:
    """The student a config describes; ``texts`` train a scratch student's tokenizer."""
    if config.init == "scratch":
        return build_scratch(config.name, texts, config.vocab_size, config.overrides, seed=seed)
    return load_student(config.name, trust_remote_code=config.trust_remote_code)


def causal_prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Prompt ids of a causal student: the tokenizer's own prefix (e.g. bos), no trailing eos.

    The completion (``COMPLETION_SEPARATOR + target + eos``) is tokenized separately, so training
    and generation see the same prompt tokens.
    """
    ids = list(tokenizer(prompt)["input_ids"])
    if tokenizer.eos_token_id is not None and ids and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    return ids


def causal_completion_ids(tokenizer, target: str) -> list[int]:
    """Completion ids of a causal student: separator + target, then eos."""
    from .stages import COMPLETION_SEPARATOR

    return list(tokenizer(COMPLETION_SEPARATOR + target, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]


def save_student(model, tokenizer, out: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Write a standard ``save_pretrained`` folder (safetensors) atomically.

    ``meta`` (e.g. the variant a student was trained on) goes to ``tinythinker_student.json``.
    """
    with staged_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if meta is not None:
            write_json(Path(tmp) / STUDENT_META, meta)
