"""Inference engine: the exact METHOD.md section 3 strings per variant, batching, sampling seeds, voting."""

from __future__ import annotations

import pytest
import torch

from tinythinker.data.schema import Option, Question
from tinythinker.infer import GREEDY, ChainDecoding, Decoding, Engine, majority_vote, sampled, summary_metrics
from tinythinker.student import build_scratch

SKY = Question("s1", "What colour is the sky?", [Option("A", "red"), Option("B", "blue"), Option("C", "green")], "B")
GRASS = Question("g1", "What colour is grass?", [Option("A", "green"), Option("B", "pink")], "A")
BLOCK = "What colour is the sky?\n(A) red (B) blue (C) green"


class ScriptedEngine(Engine):
    """Records every prompt and answers from a script (no model): the strings the student would see."""

    def __init__(self, summaries=None):
        self.prompts: list[tuple[str, Decoding]] = []
        self.summaries = list(summaries or [])

    def generate(self, prompts, decoding=GREEDY):
        self.prompts += [(p, decoding) for p in prompts]
        out = []
        for p in prompts:
            if p.endswith("Recall:"):
                out.append("  The sky is blue ")  # normalised to "The sky is blue."
            elif p.endswith(","):
                label = p[-2]
                out.append(f"{'blue is correct' if label == 'B' else 'this is incorrect'}.")
            elif p.endswith("Answer:"):
                out.append("The sky is blue. So the answer is option B.")
            else:
                out.append(self.summaries.pop(0) if self.summaries else "So the answer is option B.")
        return out


def test_full_chain_shows_the_student_exactly_the_method_strings():
    engine = ScriptedEngine()
    [prediction] = engine.predict([SKY])
    prompts = [p for p, _ in engine.prompts]
    assert prompts == [
        f"{BLOCK}\nRecall:",
        f"{BLOCK}\nRecall: The sky is blue.\nAnalyze: For option A,",
        f"{BLOCK}\nRecall: The sky is blue.\nAnalyze: For option B,",
        f"{BLOCK}\nRecall: The sky is blue.\nAnalyze: For option C,",
        f"{BLOCK}\nRecall: The sky is blue.\nAnalyze: For option A, this is incorrect. For option B, blue is correct. "
        "For option C, this is incorrect.\nSummarize:",
    ]
    chain = prediction.chains[0]
    assert chain.recall == "The sky is blue."
    assert chain.analyses == {"A": "this is incorrect.", "B": "blue is correct.", "C": "this is incorrect."}
    assert chain.summary == "So the answer is option B." and chain.answer == "B"
    assert prediction.to_dict() == {
        "id": "s1", "gold": "B", "prediction": "B", "correct": True, "votes": {"B": 1}, "tie": False, "tied": [],
        "chains": [{"recall": "The sky is blue.", "analyses": chain.analyses, "summary": "So the answer is option B.", "answer": "B"}],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("summarize", [f"{BLOCK}\nSummarize:"]),
        ("recall_summarize", [f"{BLOCK}\nRecall:", f"{BLOCK}\nRecall: The sky is blue.\nSummarize:"]),
        (
            "analyze_summarize",
            [f"{BLOCK}\nAnalyze: For option A,", f"{BLOCK}\nAnalyze: For option B,", f"{BLOCK}\nAnalyze: For option C,",
             f"{BLOCK}\nAnalyze: For option A, this is incorrect. For option B, blue is correct. For option C, this is incorrect.\nSummarize:"],
        ),  # fmt: skip
        ("cot", [f"{BLOCK}\nAnswer:"]),
    ],
)
def test_every_variant_sends_its_own_strings(variant, expected):
    engine = ScriptedEngine()
    [prediction] = engine.predict([SKY], variant=variant)
    assert [p for p, _ in engine.prompts] == expected
    assert prediction.prediction == "B" and prediction.correct


def test_chains_from_given_recalls_and_per_stage_decoding():
    engine = ScriptedEngine()
    decoding = ChainDecoding(recall=sampled(0.7), analyze=sampled(0.9, top_k=5), summarize=GREEDY)
    chains = engine.chains([SKY, GRASS], decoding=decoding, recalls=["Given one.", "Given two."])
    assert [c.recall for c in chains] == ["Given one.", "Given two."]
    assert not any(p.endswith("Recall:") for p, _ in engine.prompts)  # the recall stage was skipped
    analyze = [d for p, d in engine.prompts if p.endswith(",")]
    assert len(analyze) == 5 and all(d == Decoding(True, 0.9, 5, 1.0, 200) for d in analyze)
    assert [d for p, d in engine.prompts if p.endswith("Summarize:")] == [GREEDY, GREEDY]
    assert "Recall: Given two.\nAnalyze: For option A," in engine.prompts[3][0]
    with pytest.raises(ValueError, match="no recall stage"):
        engine.chains([SKY], variant="analyze_summarize", recalls=["x."])


def test_majority_vote_and_deterministic_ties():
    assert majority_vote(["A", "B", "B", None]) == ("B", {"A": 1, "B": 2}, [])
    assert majority_vote(["C", "A", "A", "C"]) == ("C", {"A": 2, "C": 2}, ["C", "A"])  # first reached wins
    assert majority_vote(["A", "C", "C", "A"]) == ("A", {"A": 2, "C": 2}, ["A", "C"])
    assert majority_vote([None, None]) == (None, {}, [])
    assert majority_vote([None, "D"]) == ("D", {"D": 1}, [])


def test_self_consistency_votes_over_samples_and_reports_ties():
    # SKY: answers B, C, C -> C by majority (wrong). GRASS: B, A, none, Z -> tie of B and A, B reached first.
    engine = ScriptedEngine(["So the answer is option B.", "So the answer is option C.", "the answer is option C."])
    [sky] = engine.predict([SKY], samples=3)
    assert sky.votes == {"B": 1, "C": 2} and sky.prediction == "C" and not sky.correct and not sky.tie
    assert len(sky.chains) == 3 and [c.answer for c in sky.chains] == ["B", "C", "C"]
    recall_decoding = {d for p, d in engine.prompts if p.endswith("Recall:")}
    summarize_decoding = {d for p, d in engine.prompts if p.endswith("Summarize:")}
    assert recall_decoding == {Decoding(True, 0.7, 0, 1.0, 200)} and summarize_decoding == {GREEDY}  # METHOD.md section 5
    engine = ScriptedEngine(["So the answer is option B.", "So the answer is option A.", "nothing", "So the answer is option Z."])
    [grass] = engine.predict([GRASS], samples=4)
    assert grass.votes == {"A": 1, "B": 1} and grass.tie and grass.tied == ["B", "A"] and grass.prediction == "B"
    assert [c.answer for c in grass.chains] == ["B", "A", None, None]  # Z is not an option: no vote
    metrics = summary_metrics([sky, grass])
    assert metrics == {"accuracy": 0.0, "n": 2, "correct": 0, "unparsed": 0, "ties": 1}


@pytest.fixture(scope="module", params=["t5-tiny", "llama-tiny"])
def tiny_engine(request):
    texts = [SKY.question, GRASS.question, "Recall: Analyze: For option A, So the answer is option B."] * 5
    size = (
        {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "d_kv": 16}
        if request.param == "t5-tiny"
        else {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2}
    )
    student = build_scratch(request.param, texts, vocab_size=320, overrides=size, seed=5)
    # random weights often pick eos or pad first; zero logits for special tokens give non-empty texts
    with torch.no_grad():
        student.model.get_output_embeddings().weight[student.tokenizer.all_special_ids] = 0.0
    return student


def test_batched_generation_equals_one_by_one(tiny_engine):
    prompts = ["What colour is the sky?\nRecall:", "a", "What colour is grass? (A) green (B) pink\nSummarize:", "Recall:"]
    decoding = Decoding(max_new_tokens=12)
    batched = Engine(tiny_engine.model, tiny_engine.tokenizer, batch_size=4).generate(prompts, decoding)
    single = Engine(tiny_engine.model, tiny_engine.tokenizer, batch_size=1).generate(prompts, decoding)
    assert batched == single and any(batched)


def test_sampling_repeats_with_a_seed_and_varies_without(tiny_engine):
    engine = Engine(tiny_engine.model, tiny_engine.tokenizer, batch_size=8)
    decoding = ChainDecoding.self_consistency(temperature=1.0, max_new_tokens=10)
    first = engine.predict([SKY, GRASS], samples=3, decoding=decoding, seed=11)
    again = engine.predict([SKY, GRASS], samples=3, decoding=decoding, seed=11)
    other = engine.predict([SKY, GRASS], samples=3, decoding=decoding, seed=12)
    texts = lambda preds: [c.recall for p in preds for c in p.chains]  # noqa: E731
    assert texts(first) == texts(again)
    assert texts(first) != texts(other)
    assert len(set(texts(first))) > 1  # the samples of a question differ
    greedy = engine.predict([SKY], decoding=ChainDecoding.greedy(10))
    assert greedy[0].chains[0].recall == engine.predict([SKY], decoding=ChainDecoding.greedy(10), seed=99)[0].chains[0].recall
