#!/usr/bin/env python3
"""Texts per second through the `tokenizers` library for each tokenizer folder given (its tokenizer.json), on the
singles of Tests/BertKitTests/Fixtures/tokenizers/texts.json: one text at a time, and encode_batch (all cores).
Prints {"folder": {"single": rate, "batch": rate}} as JSON; `benchmark --measure tokenizers` runs it."""
import argparse
import json
import time

from tokenizers import Tokenizer

parser = argparse.ArgumentParser()
parser.add_argument("folders", nargs="+")
parser.add_argument("--rounds", type=int, default=5)
args = parser.parse_args()
texts = json.load(open("Tests/BertKitTests/Fixtures/tokenizers/texts.json", encoding="utf-8"))["singles"]
rates = {}
for folder in args.folders:
    tokenizer = Tokenizer.from_file(folder + "/tokenizer.json")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    single, batch = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for text in texts:
            tokenizer.encode(text)
        single.append(len(texts) / (time.perf_counter() - start))
        start = time.perf_counter()
        tokenizer.encode_batch(texts)
        batch.append(len(texts) / (time.perf_counter() - start))
    rates[folder] = {"single": sorted(single)[len(single) // 2], "batch": sorted(batch)[len(batch) // 2]}
print(json.dumps(rates))
