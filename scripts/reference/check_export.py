#!/usr/bin/env python3
"""Checks that transformers loads a bertkit export and gives the same outputs as `finetune predict`.

    finetune export 3 --to /tmp/mrpc-export
    finetune predict --model /tmp/mrpc-export --task mrpc --split dev --input Tasks/data/glue/MRPC/dev.tsv --output /tmp/pred.tsv
    ~/bertkit-venv/bin/python scripts/reference/check_export.py --model /tmp/mrpc-export --task mrpc --split dev --predictions /tmp/pred.tsv

Exits non-zero when a logit differs by more than --tolerance (relative to the largest logit).
"""
import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent.parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--predictions", required=True, help="TSV written by `finetune predict`")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    spec = json.loads((ROOT / "Tasks" / f"{args.task}.json").read_text())
    layout = spec["splits"][args.split]
    lines = (ROOT / "Tasks" / spec["dataDirectory"] / layout["file"]).read_text(encoding="utf-8-sig").split("\n")
    rows = [l.rstrip("\r").split("\t") for l in (lines[1:] if layout.get("header", True) else lines) if l]
    a = [r[layout["textA"]] for r in rows]
    b = [r[layout["textB"]] for r in rows] if "textB" in layout else None

    ours = [l.split("\t") for l in Path(args.predictions).read_text().splitlines()[1:]]
    worst = 0.0
    agree = 0
    with torch.no_grad():
        for start in range(0, len(a), 64):
            batch = tokenizer(a[start:start + 64], b[start:start + 64] if b else None, truncation=True,
                              max_length=args.max_length, padding=True, return_tensors="pt")
            logits = model(**batch).logits
            for i, row in enumerate(logits):
                mine = ours[start + i]
                expected = [float(x) for x in mine[2:]] if len(mine) > 2 else [float(mine[1])]
                scale = max(1.0, float(row.abs().max()))
                worst = max(worst, max(abs(float(x) - y) for x, y in zip(row, expected)) / scale)
                if model.config.problem_type != "regression":
                    agree += model.config.id2label[int(row.argmax())] == mine[1]
    print(json.dumps({"examples": len(a), "architecture": model.config.architectures, "worst_relative_logit_error": worst,
                      "same_predicted_label": agree}))
    sys.exit(0 if worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
