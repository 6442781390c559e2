#!/usr/bin/env python3
"""Writes the bundled pre-training corpus: the Wikipedia paragraphs of SQuAD v1.1's dev set (CC BY-SA 4.0).

Format of BERT's original pre-training data: one sentence per line, a blank line between documents; here a
document is one paragraph, in the order of the file (48 articles, 2,067 paragraphs). Sentences are split by a
small rule set (end punctuation, then space, then a capital, digit or opening quote; common abbreviations and
initials do not end a sentence); no tokenizer is needed to read the result.

    python3 scripts/make_corpus.py   # reads Tasks/data/squad/dev-v1.1.json, writes Tasks/data/pretrain/
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "Tasks" / "data" / "squad" / "dev-v1.1.json"
OUT = ROOT / "Tasks" / "data" / "pretrain" / "squad-dev-paragraphs.txt"

ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "gov", "sen", "rep", "rev", "col", "lt", "capt",
                 "no", "vs", "etc", "inc", "ltd", "co", "corp", "e.g", "i.e", "u.s", "u.k", "a.d", "b.c", "ca", "c", "approx",
                 "jan", "feb", "mar", "apr", "aug", "sept", "sep", "oct", "nov", "dec", "mt", "ft", "fig", "vol", "op"}
BOUNDARY = re.compile(r'(?<=[.!?])["\')\]]*\s+(?=["\'(\[]?[A-Z0-9])')


def sentences(paragraph):
    text = " ".join(paragraph.split())
    out, start = [], 0
    for m in BOUNDARY.finditer(text):
        before = text[start:m.start()].rstrip("\"')]")
        word = before.split(" ")[-1].rstrip(".!?").lower() if before else ""
        if before.endswith(".") and (word in ABBREVIATIONS or re.fullmatch(r"[a-z]", word)):
            continue  # "Dr. Smith", "J. R. R. Tolkien"
        out.append(text[start:m.start()] + m.group(0).rstrip())  # the sentence with its closing quotes
        start = m.end()
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


def main():
    articles = json.loads(SOURCE.read_text(encoding="utf-8"))["data"]
    documents = [sentences(p["context"]) for a in articles for p in a["paragraphs"]]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n\n".join("\n".join(d) for d in documents) + "\n", encoding="utf-8")
    lines = sum(len(d) for d in documents)
    print(f"{OUT}: {len(documents)} documents, {lines} sentences")


if __name__ == "__main__":
    main()
