#!/usr/bin/env python3
"""Inference speed and accuracy on MRPC dev: `finetune predict` in fp32 and int8 against the strongest things a
user would pick instead, in one run, each at 2 threads, batches of 32 pairs sorted by length:
  - a plain PyTorch loop under torch.inference_mode(), fp32, and with torch.ao dynamic int8 quantisation;
  - ONNX Runtime (all graph optimisations) on the model exported by torch.onnx.export, fp32, and with
    onnxruntime.quantization.quantize_dynamic (int8 weights, dynamic int8 activations).
Every row reports dev F1 and accuracy next to examples per second (median of --repeats timed passes after one
warm-up; the spread is min-max), and int8 rows their agreement with the same system's fp32 predictions.

    ~/bertkit-venv/bin/pip install onnxruntime onnx onnxscript seqeval
    ~/bertkit-venv/bin/python scripts/bench/benchmark_inference.py --model runs/1-mrpc/best [--output benchmarks/inference.md]

With --conll MODEL (a CoNLL-2003 token classifier) and --data DIR (the folder holding conll2003/), the toolkit's
fp32 and int8 predictions of the CoNLL-2003 test words are also scored (seqeval entity F1) and compared.
"""
import argparse
import csv
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_common import FINETUNE, ROOT, cpu_name, finetune_predict, write_table
DEV = ROOT / "Tasks" / "data" / "glue" / "MRPC" / "dev.tsv"


def mrpc_dev():
    with open(DEV, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(r[3], r[4]) for r in rows], [int(r[0]) for r in rows]


def scores(predicted, gold):
    tp = sum(p == 1 and g == 1 for p, g in zip(predicted, gold))
    fp = sum(p == 1 and g == 0 for p, g in zip(predicted, gold))
    fn = sum(p == 0 and g == 1 for p, g in zip(predicted, gold))
    f1 = 2 * tp / (2 * tp + fp + fn)
    return f1, sum(p == g for p, g in zip(predicted, gold)) / len(gold)


def toolkit(model, pairs, precision, repeats):
    """`finetune predict` on the pairs: predicted labels, whole-command and model seconds of each timed run."""
    results, walls, models = finetune_predict(model, [{"text": a, "text_pair": b} for a, b in pairs], ["--precision", precision],
                                              repeats=repeats, warm_up=True)
    return [int(r["label"]) for r in results], walls, models  # MRPC's labels are "0", "1"


def batches(tokenizer, pairs, size=32):
    """Length-sorted batches of 32, padded to their longest pair, and the original index of each row."""
    order = sorted(range(len(pairs)), key=lambda i: len(tokenizer(*pairs[i])["input_ids"]))
    for start in range(0, len(order), size):
        chosen = order[start:start + size]
        yield chosen, tokenizer([pairs[i][0] for i in chosen], [pairs[i][1] for i in chosen], padding=True,
                                truncation=True, max_length=128, return_tensors="pt")


def timed_passes(run, repeats):
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predicted = run()
        times.append(time.perf_counter() - started)
    return predicted, times


def conll_rows(model, test):
    """The toolkit's CoNLL predictions in fp32 and int8, scored with seqeval against the gold tags."""
    from seqeval.metrics import f1_score
    gold, sentence = [], []
    for line in open(test, encoding="utf-8"):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if sentence:
                gold.append(sentence)
            sentence = []
        else:
            sentence.append(fields[-1])
    if sentence:
        gold.append(sentence)
    rows, predictions = [], {}
    with tempfile.TemporaryDirectory() as d:
        for precision in ["fp32", "int8"]:
            out = Path(d) / f"{precision}.txt"
            started = time.perf_counter()
            subprocess.run([str(FINETUNE), "predict", "--model", str(model), "--input", str(test), "--format", "conll",
                            "--precision", precision, "--output", str(out)], check=True, capture_output=True,
                           env={**os.environ, "BERTKIT_THREADS": "2"})
            seconds = time.perf_counter() - started
            predicted = [[line.split()[-1] for line in block.splitlines()] for block in out.read_text().split("\n\n") if block.strip()]
            predictions[precision] = predicted
            same = sum(a == b for x, y in zip(predicted, predictions["fp32"]) for a, b in zip(x, y))
            words = sum(len(x) for x in predicted)
            rows.append(f"| {precision} | {f1_score(gold, predicted):.4f} | {seconds:.1f} | {100 * same / words:.2f} % |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "inference.md")
    parser.add_argument("--conll", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    pairs, gold = mrpc_dev()
    n = len(pairs)
    rows = []

    def add(name, predicted, times, reference=None, model_times=None):
        f1, accuracy = scores(predicted, gold)
        rates = [n / t for t in times]
        row = {"system": name, "f1": f1, "accuracy": accuracy, "median": statistics.median(rates), "low": min(rates), "high": max(rates),
               "agreement": None if reference is None else sum(a == b for a, b in zip(predicted, reference)) / n,
               "model": None if model_times is None else statistics.median(n / t for t in model_times)}
        rows.append(row)
        return predicted

    # The toolkit's rows first, before this process loads PyTorch (whose import alone slowed the child's runs by
    # up to 15 % in a trial: its threads and environment are this process's, not the child's business).
    predicted, walls, models = toolkit(args.model, pairs, "fp32", args.repeats)
    fp32 = add("bertkit predict fp32", predicted, walls, model_times=models)
    predicted, walls, models = toolkit(args.model, pairs, "int8", args.repeats)
    add("bertkit predict int8", predicted, walls, reference=fp32, model_times=models)

    import torch
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    prepared = list(batches(tokenizer, pairs))

    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()

    def torch_loop(m):
        def run():
            predicted = [0] * n
            with torch.inference_mode():
                for chosen, batch in prepared:
                    for i, p in zip(chosen, m(**batch).logits.argmax(-1).tolist()):
                        predicted[i] = p
            return predicted
        return run
    torch_fp32 = add("PyTorch loop fp32", *timed_passes(torch_loop(model), args.repeats))
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    add("PyTorch loop dynamic int8", *timed_passes(torch_loop(quantized), args.repeats), reference=torch_fp32)

    with tempfile.TemporaryDirectory() as d:
        onnx_path, int8_path = Path(d) / "model.onnx", Path(d) / "model-int8.onnx"
        sample = prepared[0][1]
        torch.onnx.export(model, (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]), str(onnx_path),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                          dynamic_axes={k: {0: "batch", 1: "length"} for k in ["input_ids", "attention_mask", "token_type_ids"]},
                          opset_version=17, dynamo=False)
        quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)

        def session(path):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 2
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

            def run():
                predicted = [0] * n
                for chosen, batch in prepared:
                    logits = s.run(None, {k: batch[k].numpy() for k in ["input_ids", "attention_mask", "token_type_ids"]})[0]
                    for i, p in zip(chosen, logits.argmax(-1).tolist()):
                        predicted[i] = p
                return predicted
            return run
        ort_fp32 = add(f"ONNX Runtime {ort.__version__} fp32", *timed_passes(session(onnx_path), args.repeats))
        add(f"ONNX Runtime {ort.__version__} dynamic int8", *timed_passes(session(int8_path), args.repeats), reference=ort_fp32)

    best_int8 = max(r["median"] for r in rows if "int8" in r["system"] and not r["system"].startswith("bertkit"))
    lines = [f"CPU: {cpu_name()}; 2 threads each; MRPC dev, {n} pairs, batches of 32 sorted by length; torch {torch.__version__}", "",
             "| system | dev F1 | accuracy | examples/s (median, min-max) | model only | int8 agrees with fp32 |",
             "|---|---:|---:|---|---:|---:|"]
    for r in rows:
        model_only = "" if r["model"] is None else f"{r['model']:.1f}"
        agreement = "" if r["agreement"] is None else f"{100 * r['agreement']:.1f} %"
        lines.append(f"| {r['system']} | {r['f1']:.4f} | {r['accuracy']:.4f} | {r['median']:.1f} ({r['low']:.1f}-{r['high']:.1f}) | "
                     f"{model_only} | {agreement} |")
    ours = next(r for r in rows if r["system"] == "bertkit predict int8")
    lines += ["", f"bertkit int8 (whole command) against the faster other int8: {ours['median'] / best_int8:.2f}x"]
    write_table("\n".join(lines) + "\n", args.output)  # kept even if the CoNLL part below fails
    if args.conll:
        lines += ["", "CoNLL-2003 test (3,453 sentences, words given, first sub-token), toolkit only:", "",
                  "| precision | entity F1 (seqeval) | seconds (whole command) | words labelled as fp32 does |", "|---|---:|---:|---:|"]
        lines += conll_rows(args.conll, args.data / "conll2003" / "test.txt")
        write_table("\n".join(lines) + "\n", args.output)


if __name__ == "__main__":
    main()
