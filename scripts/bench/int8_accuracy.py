#!/usr/bin/env python3
"""The task metric of `finetune predict --precision int8` next to fp32's, on the same fine-tuned model, for the
tasks benchmark_inference.py does not cover: SST-2 dev (accuracy) and SQuAD v1.1's article split (the dev articles
36-47: exact match and F1, scored as the official script does); with each, how many predictions int8 and fp32
share, and the whole command's seconds. Prints a table and writes benchmarks/int8-accuracy.md.

    ~/bertkit-venv/bin/python scripts/bench/int8_accuracy.py --sst2 runs/N-sst2/best --squad runs/M-squad-articles/best
"""
import argparse
import sys
import csv
import json
from pathlib import Path

from bench_common import ROOT, cpu_name, finetune_predict, write_table

sys.path.insert(0, str(ROOT / "scripts" / "reference"))
from reference_common import squad_evaluate  # noqa: E402


def sst2(model):
    with open(ROOT / "Tasks/data/glue/SST-2/dev.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    records, gold = [{"text": r[0]} for r in rows], [r[1] for r in rows]
    out = []
    for precision in ["fp32", "int8"]:
        results, walls, _ = finetune_predict(model, records, ["--precision", precision])
        out.append((precision, [r["label"] for r in results], walls[0]))
    lines = []
    for precision, predicted, seconds in out:
        accuracy = sum(p == g for p, g in zip(predicted, gold)) / len(gold)
        same = sum(p == q for p, q in zip(predicted, out[0][1])) / len(gold)
        lines.append(f"| SST-2 dev ({len(gold)} sentences) | {precision} | accuracy {100 * accuracy:.2f} | {100 * same:.2f} % | {seconds:.1f} |")
    return lines


def squad(model):
    data = json.loads((ROOT / "Tasks/data/squad/dev-v1.1.json").read_text(encoding="utf-8"))["data"][36:48]
    examples = [{"id": q["id"], "question": q["question"], "context": p["context"], "answers": q["answers"]}
                for a in data for p in a["paragraphs"] for q in p["qas"]]
    records = [{"question": e["question"], "context": e["context"]} for e in examples]
    out = []
    for precision in ["fp32", "int8"]:
        results, walls, _ = finetune_predict(model, records, ["--precision", precision])
        out.append((precision, {e["id"]: r["answer"] for e, r in zip(examples, results)}, walls[0]))
    lines = []
    for precision, answers, seconds in out:
        score = squad_evaluate(examples, answers)
        same = sum(answers[i] == out[0][1][i] for i in answers) / len(answers)
        lines.append(f"| SQuAD v1.1 dev articles 36-47 ({len(examples)} questions) | {precision} | "
                     f"EM {score['exact_match']:.2f}, F1 {score['f1']:.2f} | {100 * same:.2f} % | {seconds:.1f} |")
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sst2", type=Path)
    parser.add_argument("--squad", type=Path)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "int8-accuracy.md")
    args = parser.parse_args()
    lines = [f"# int8 against fp32: task metrics ({cpu_name()}, 2 threads)", "",
             "`finetune predict --precision fp32|int8` on the same fine-tuned model; agreement: the share of inputs whose "
             "prediction (label, answer text) int8 gives as fp32 does.", "",
             "| task | precision | metric | same as fp32 | seconds (whole command) |", "|---|---|---:|---:|---:|"]
    if args.sst2:
        lines += sst2(args.sst2)
    if args.squad:
        lines += squad(args.squad)
    write_table("\n".join(lines) + "\n", args.output)


if __name__ == "__main__":
    main()
