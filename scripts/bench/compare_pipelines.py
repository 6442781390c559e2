#!/usr/bin/env python3
"""`finetune predict` against transformers' pipelines on models the toolkit trained: agreement and speed.

For each head, 500 inputs go through `finetune predict` (the release build) and through the pipeline on the
same exported folder, both at 2 threads; the script prints a table and writes it to --output:
  token classification  raw CoNLL-2003 test sentences (words joined by spaces), aggregation first: the same
                        entities (type, start, end) in a text
  question answering    held-out SQuAD v1.1 dev questions (articles 36-47): the same answer (text and offsets)
  fill-mask             held-out pre-training corpus sentences with one word masked: the same best filler, and
                        the same five
Speed is examples per second over the whole command (loading included) and, for the toolkit, in the model alone.

transformers 5 has no question-answering pipeline; run in the environment of make_pipeline_fixtures.py:

    ~/bertkit-venv-tf4/bin/python scripts/bench/compare_pipelines.py --conll DIR --squad DIR --pretrain DIR \\
        [--data ../shared/data] [--output benchmarks/pipelines.md]
"""
import argparse
import json
import os
import random
import time
from pathlib import Path

import torch
from bench_common import ROOT, cpu_name, finetune_predict, write_table
from transformers import AutoTokenizer, pipeline

N = 500


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def conll_texts(path):
    sentences, words = [], []
    for line in open(path, encoding="utf-8"):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append(" ".join(words))
            words = []
        else:
            words.append(fields[0])
    if words:
        sentences.append(" ".join(words))
    return sentences


def token_classification(model, data):
    texts = conll_texts(data / "conll2003" / "test.txt")[:N]
    ours, (wall,), (model_seconds,) = finetune_predict(model, [{"text": t} for t in texts], ["--aggregation", "first", "--max-length", "128"])
    tokenizer = AutoTokenizer.from_pretrained(model, model_max_length=128)
    ner = pipeline("token-classification", model=str(model), tokenizer=tokenizer, aggregation_strategy="first", stride=64)
    theirs, seconds = timed(lambda: [ner(t) for t in texts])
    key = lambda entities: [(e["entity_group"], e["start"], e["end"]) for e in entities]
    same = sum(key(o["entities"]) == key(t) for o, t in zip(ours, theirs))
    entities = sum(len(t) for t in theirs)
    return {"head": "token classification (CoNLL-2003 test)", "inputs": len(texts), "agree": same,
            "detail": f"{entities} entities in the pipeline's output", "ours": (wall, model_seconds), "theirs": seconds}


def question_answering(model, data):
    squad = json.load(open(data / "squad" / "dev-v1.1.json", encoding="utf-8"))["data"]
    records = [{"question": q["question"], "context": p["context"]}
               for article in squad[36:48] for p in article["paragraphs"] for q in p["qas"]][:N]
    ours, (wall,), (model_seconds,) = finetune_predict(model, records, [])
    qa = pipeline("question-answering", model=str(model))
    theirs, seconds = timed(lambda: [qa(question=r["question"], context=r["context"]) for r in records])
    same = sum((o["answer"], o["start"], o["end"]) == (t["answer"], t["start"], t["end"]) for o, t in zip(ours, theirs))
    close = sum(abs(o["score"] - t["score"]) <= 1e-4 for o, t in zip(ours, theirs))
    return {"head": "question answering (SQuAD v1.1 dev, articles 36-47)", "inputs": len(records), "agree": same,
            "detail": f"scores within 1e-4: {close}", "ours": (wall, model_seconds), "theirs": seconds}


def fill_mask(model, data):
    lines = (data / "pretrain" / "squad-dev-paragraphs.txt").read_text(encoding="utf-8").split("\n\n")[1886:]
    sentences = [s for doc in lines for s in doc.splitlines() if 5 <= len(s.split()) <= 60]
    rng = random.Random(0)
    texts = []
    for s in sentences[:N]:
        words = s.split()
        i = rng.randrange(len(words))
        words[i] = "[MASK]"
        texts.append(" ".join(words))
    ours, (wall,), (model_seconds,) = finetune_predict(model, [{"text": t} for t in texts], ["--max-length", "128"])
    fill = pipeline("fill-mask", model=str(model), top_k=5)
    theirs, seconds = timed(lambda: [fill(t) for t in texts])
    best = sum(o["masks"][0][0]["token"] == t[0]["token"] for o, t in zip(ours, theirs))
    five = sum([f["token"] for f in o["masks"][0]] == [f["token"] for f in t] for o, t in zip(ours, theirs))
    return {"head": "fill-mask (pre-training corpus, held-out documents)", "inputs": len(texts), "agree": best,
            "detail": f"same five fillers in order: {five}", "ours": (wall, model_seconds), "theirs": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conll", type=Path, required=True)
    parser.add_argument("--squad", type=Path, required=True)
    parser.add_argument("--pretrain", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "pipelines.md")
    args = parser.parse_args()
    torch.set_num_threads(2)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    # The pre-training corpus lives with the task's data in the repository.
    rows = [token_classification(args.conll, args.data), question_answering(args.squad, ROOT / "Tasks" / "data"),
            fill_mask(args.pretrain, ROOT / "Tasks" / "data")]
    lines = [f"CPU: {cpu_name()}; 2 threads each; transformers {__import__('transformers').__version__}, torch {torch.__version__}", "",
             "| head | inputs | identical | detail | toolkit examples/s (whole command / model) | pipeline examples/s | ratio |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        wall, model_seconds = r["ours"]
        ours, theirs = r["inputs"] / wall, r["inputs"] / r["theirs"]
        lines.append(f"| {r['head']} | {r['inputs']} | {r['agree']} ({100 * r['agree'] / r['inputs']:.1f} %) | {r['detail']} "
                     f"| {ours:.1f} / {r['inputs'] / model_seconds:.1f} | {theirs:.1f} | {ours / theirs:.2f}x |")
    write_table("\n".join(lines) + "\n", args.output)


if __name__ == "__main__":
    main()
