#!/usr/bin/env python3
"""Writes the corpus of bad inputs in Tests/CLITests/BadInputs: model folders, data files and task files that
must each end a run with a clear error naming the file (and line or tensor), a `failed` row in results.db
and no partial artifact (BadInputTests runs every case in cases.json). Small files are written here; large
ones (the tiny model's weights) are symbolic links to Tests/BertKitTests/Fixtures. Run from anywhere:

    python3 scripts/make_bad_inputs.py
"""
import json
import os
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/CLITests/BadInputs"
TINY = ROOT / "Tests/BertKitTests/Fixtures/tiny-bert"
CONFIG = json.loads((TINY / "config.json").read_text())
cases = []


def safetensors(header: dict, data: bytes, header_length: int | None = None) -> bytes:
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text) if header_length is None else header_length) + text + data


def model(name: str, error: str, *, weights: bytes | None = None, config: dict | None = None,
          vocab: str | None = None, note: str):
    """A model folder: the tiny model's files, but for those given."""
    folder = OUT / "models" / name
    folder.mkdir(parents=True)
    for file, content in [("model.safetensors", weights), ("vocab.txt", vocab)]:
        if content is None:
            os.symlink(os.path.relpath(TINY / file, folder), folder / file)
        else:
            (folder / file).write_bytes(content if isinstance(content, bytes) else content.encode())
    (folder / "config.json").write_text(json.dumps(CONFIG if config is None else config, indent=2, sort_keys=True) + "\n")
    cases.append({"name": name, "note": note, "task": "mrpc-slice", "model": f"models/{name}", "error": error})


def data(name: str, file: str, content: bytes, task: str, error: str, note: str):
    """A training file that replaces the task's train split (--train-file)."""
    folder = OUT / "data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_bytes(content)
    cases.append({"name": name, "note": note, "task": task, "model": "tiny-bert",
                  "arguments": ["--train-file", f"BadInputs/data/{file}"], "error": error})


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    w = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    model("safetensors-header-longer-than-file", "model.safetensors: header length 4096 exceeds the file size",
          weights=safetensors({"a": w}, b"\0" * 8, header_length=4096), note="truncated file: the header says more than there is")
    model("safetensors-header-length-2-63", "header length 9223372036854775808 exceeds the file size",
          weights=safetensors({"a": w}, b"\0" * 8, header_length=2**63), note="a header length of 2^63")
    model("safetensors-offsets-past-end", "tensor 'a': data ends at byte 64 but the data section holds 8 bytes",
          weights=safetensors({"a": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]}}, b"\0" * 8), note="offsets past the end")
    model("safetensors-overlapping-tensors", "overlap another tensor's bytes",
          weights=safetensors({"a": w, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
          note="two tensors share bytes")
    model("safetensors-dtype-disagrees", "tensor 'a': F32 [2] needs 8 bytes but data_offsets span 4",
          weights=safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
          note="the dtype and shape need more bytes than the offsets give")
    model("safetensors-shape-overflows", "tensor 'a': shape [4611686018427387904, 4611686018427387904] needs more bytes",
          weights=safetensors({"a": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 8]}}, b"\0" * 8),
          note="an element count that overflows 64 bits")
    model("safetensors-not-json", "model.safetensors: header is not valid JSON",
          weights=struct.pack("<Q", 8) + b"not json" + b"\0" * 8, note="garbage header")
    model("config-heads-do-not-divide", "config.json: hidden_size 32 must be a positive multiple of num_attention_heads 5",
          config={**CONFIG, "num_attention_heads": 5}, note="hidden size not divisible by heads")
    model("config-negative-size", "config.json: intermediate_size is -48; layer counts and sizes must be positive",
          config={**CONFIG, "intermediate_size": -48}, note="a negative size")
    model("config-10000-layers", "model.safetensors: holds 2 encoder layers but config.json says num_hidden_layers 10000",
          config={**CONFIG, "num_hidden_layers": 10000}, note="a config that would allocate tens of GB")
    model("config-without-hidden-size",
          "has shape [97, 32] but config.json implies [97, 768] (config.json does not set hidden_size 768",
          config={k: v for k, v in CONFIG.items() if k != "hidden_size"}, note="a missing size takes BERT's default")
    model("config-not-json", "config.json: is not a valid BERT config.json",
          config=None, note="config.json is not JSON")
    (OUT / "models/config-not-json/config.json").write_text("{ this is not json\n")
    vocab = (TINY / "vocab.txt").read_text()
    model("vocab-larger-than-vocab-size", "vocab.txt: has 99 tokens but config.json's vocab_size is 97",
          vocab=vocab + "extra\nmore\n", note="ids past the embedding table")
    model("vocab-empty", "vocab.txt: is empty", vocab="", note="an empty vocabulary")
    lines = vocab.split("\n")
    model("vocab-duplicate-token", f"vocab.txt: line 97 repeats the token '{lines[50]}' of line 51",
          vocab="\n".join(lines[:96] + [lines[50]]) + "\n", note="a token twice")

    data("tsv-missing-column", "missing-column.tsv",
         b"Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA sentence.\tAnother one.\n0\t3\t4\tOnly one string\n",
         "mrpc-slice", "missing-column.tsv:3: expected at least 5 tab-separated fields, found 4", "a row with a column missing")
    data("tsv-unknown-label", "unknown-label.tsv",
         b"Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA sentence.\tAnother one.\nyes\t3\t4\tOne.\tTwo.\n",
         "mrpc-slice", "unknown-label.tsv:3: unknown label 'yes'; expected one of 0, 1", "a label outside the task's")
    data("conll-unknown-tag", "unknown-tag.txt", b"John NNP B-NP B-PER\nlives VBZ B-VP O\nin IN B-PP B-TOWN\n",
         "ner-tiny", "unknown-tag.txt:3: unknown tag 'B-TOWN'", "a tag outside the task's labels")
    data("squad-answer-start-wrong", "wrong-start.json", json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": "The cat sat on the mat.", "qas": [{"id": "q1", "question": "Where did the cat sit?",
                                                       "answers": [{"text": "the mat", "answer_start": 3}]}]}]}]}).encode(),
         "qa-tiny", "question q1: answer_start 3 does not point at \"the mat\"", "an answer_start that misses the answer")
    data("corpus-not-utf8", "not-utf8.txt", bytes(range(128, 256)) * 4 + b"\n\n" + bytes(range(128, 256)) + b"\n",
         "pretrain-tiny", "pre-training needs at least 2 training documents", "a corpus with no UTF-8 line")
    (OUT / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
