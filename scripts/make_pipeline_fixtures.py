#!/usr/bin/env python3
"""Golden outputs of transformers' pipelines on tiny fine-tuned models, for `finetune predict`'s tests.

transformers 5 removed the question-answering pipeline, so this runs with the last release that has it, in its
own virtual environment outside the repository (CI never runs this; the outputs are committed):

    python3 -m venv ~/bertkit-venv-tf4
    ~/bertkit-venv-tf4/bin/pip install 'torch==2.13.0+cpu' 'transformers==4.57.6' safetensors
    ~/bertkit-venv-tf4/bin/python scripts/make_pipeline_fixtures.py

Writes into Tests/BertKitTests/Fixtures/pipelines/: a model folder per head, made from the tiny BERT of
make_fixtures.py (its character vocabulary makes every word several sub-tokens) with a random head scaled so that
labels are far from ties, inputs (JSONL), and expected.json, what the pipelines answered:
  token-classifier/    BertForTokenClassification, CoNLL-2003's nine labels; token-classification with each
                       aggregation (simple, first, average, max), windows of 40 tokens sharing 8
  question-answering/  BertForQuestionAnswering; question-answering with top_k 3, windows of 40 tokens sharing 20,
                       with and without handle_impossible_answer
  masked-lm/           BertForPreTraining (its masked-LM head and the tied decoder); fill-mask, top 5
  masked-lm-only/      the same weights saved as BertForMaskedLM (no pooler, no next-sentence head): the same fillers
  text-classifier/     BertForSequenceClassification, three labels; text-classification, every label's score,
                       truncated (longest first) to 40 tokens
"""
import json
import shutil
from pathlib import Path

import torch
from transformers import (BertForMaskedLM, BertForPreTraining, BertForQuestionAnswering, BertForSequenceClassification,
                          BertForTokenClassification, pipeline)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "BertKitTests" / "Fixtures"
OUT = FIXTURES / "pipelines"
TINY = FIXTURES / "tiny-bert"
CONLL_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

TEXTS = [
    "John Smith lives in New York.",
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday, 3 May.",
    "Café naïve résumé: the ÅNGSTRÖM unit!",
    "I love 😀 and hello😀world, don't you?",
    "[MASK] is a word, and so is [UNK] here.",
    "a",
    "",
    "The European Union (EU) and the United Nations (UN) signed 12 treaties in 1999, 2004 and 2021; "
    "delegates from Germany, France and Spain attended the talks at Geneva's Palais des Nations.",
    "Dr. Jane O'Neil-Smith of Acme Corp. earned $1,000,000 (roughly 5%) last year.",
]

QUESTIONS = [
    {"question": "who?", "context": "John Smith lives in New York and works for Acme."},
    {"question": "where is it?", "context": "The tower is in Paris, France. It was built in 1889 by Eiffel's company."},
    {"question": "when?", "context": "Tuesday."},
    {"question": "what did they sign?", "context": TEXTS[7]},
    {"question": "how much?", "context": TEXTS[8] + " " + TEXTS[1] + " " + TEXTS[0]},
    {"question": "naïve?", "context": "Café naïve résumé: the ÅNGSTRÖM unit! It is 10^-10 metres."},
]

MASKED = [
    "the cat sat on the [MASK].",
    "[MASK] and [MASK] went to the market",
    "paris is the capital of [MASK]",
    "x[MASK]y",
]

PAIRS = [
    {"text": "The company said profits rose.", "text_pair": "Profits went up, the firm said."},
    {"text": "He plays the guitar.", "text_pair": "It rained all day in Seattle."},
    {"text": "A single sentence to classify."},
    {"text": "Another one, with 😀 unknown characters!"},
]


def save(model, name):
    folder = OUT / name
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "generation_config.json").unlink(missing_ok=True)
    shutil.copy(TINY / "vocab.txt", folder / "vocab.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 40}) + "\n")
    return folder


def scaled_head(linear, scale, seed):
    """A random head with large weights, so that the best label wins by a margin float32 cannot blur."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        linear.weight.copy_(scale * torch.randn(linear.weight.shape, generator=g))
        linear.bias.copy_(torch.randn(linear.bias.shape, generator=g))


def write_jsonl(name, records):
    (OUT / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def plain(value):
    """Pipeline outputs with numpy numbers made JSON numbers."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def main():
    torch.manual_seed(0)  # heads that from_pretrained initialises and no pipeline reads (the NSP head)
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {}

    model = BertForTokenClassification.from_pretrained(
        TINY, num_labels=len(CONLL_LABELS), id2label=dict(enumerate(CONLL_LABELS)),
        label2id={l: i for i, l in enumerate(CONLL_LABELS)}).eval()
    scaled_head(model.classifier, 0.5, seed=1)
    folder = save(model, "token-classifier")
    expected["token-classification"] = {}
    for aggregation in ["simple", "first", "average", "max"]:
        ner = pipeline("token-classification", model=str(folder), aggregation_strategy=aggregation, stride=8)
        expected["token-classification"][aggregation] = [plain(ner(t)) for t in TEXTS]
    write_jsonl("texts.jsonl", [{"text": t} for t in TEXTS])

    model = BertForQuestionAnswering.from_pretrained(TINY).eval()
    scaled_head(model.qa_outputs, 0.5, seed=2)
    folder = save(model, "question-answering")
    qa = pipeline("question-answering", model=str(folder))
    expected["question-answering"] = [plain(qa(question=q["question"], context=q["context"], top_k=3)) for q in QUESTIONS]
    expected["question-answering-no-answer"] = [
        plain(qa(question=q["question"], context=q["context"], top_k=3, handle_impossible_answer=True)) for q in QUESTIONS]
    write_jsonl("questions.jsonl", QUESTIONS)

    model = BertForPreTraining.from_pretrained(TINY).eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        head = model.cls.predictions
        for p in head.transform.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
        head.transform.LayerNorm.weight.copy_(10 + torch.randn(head.transform.LayerNorm.weight.shape, generator=g))
        head.bias.copy_(torch.randn(head.bias.shape, generator=g))
    folder = save(model, "masked-lm")
    fill = pipeline("fill-mask", model=str(folder), top_k=5)
    expected["fill-mask"] = []
    for text in MASKED:
        result = plain(fill(text))
        expected["fill-mask"].append(result if isinstance(result[0], list) else [result])
    write_jsonl("masked.jsonl", [{"text": t} for t in MASKED])
    only = save(BertForMaskedLM.from_pretrained(folder).eval(), "masked-lm-only")
    fill = pipeline("fill-mask", model=str(only), top_k=5)
    assert [plain(fill(t)) for t in MASKED[:1]] == [expected["fill-mask"][0][0]], "BertForMaskedLM fills as BertForPreTraining"

    labels = ["negative", "neutral", "positive"]
    model = BertForSequenceClassification.from_pretrained(
        TINY, num_labels=3, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)}).eval()
    scaled_head(model.classifier, 0.5, seed=4)
    folder = save(model, "text-classifier")
    classify = pipeline("text-classification", model=str(folder), top_k=None)
    expected["text-classification"] = [plain(classify(p, truncation=True)) for p in PAIRS]
    write_jsonl("pairs.jsonl", PAIRS)

    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
