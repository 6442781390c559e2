#!/usr/bin/env python3
"""How much arithmetic one inference pass over a task's dev split is: the floating-point operations of its
matrix products (the encoder's linear layers, attention's two products per head, the pooler and the head),
counted from the dev split as benchmark_anchors.py tokenises it, for two ways of running it:

  - the toolkit's `finetune evaluate`: every layer over each sequence's real tokens alone, the last layer's
    queries, feed-forward block and head over the rows the head reads (each word's first token for a tagger,
    `[CLS]` for a sequence classifier; keys and values over every token);
  - a padded pass (the plain PyTorch loop, ONNX Runtime): batches of 32 sorted by length, every layer over
    every position of the batch padded to its longest sequence.

With --seconds (the pass's time, as benchmark_anchors.py reports it: examples / examples per second) and --peak
(the cores' multiply-add peak in GFLOP/s, from `benchmark`), also the rate of each pass's products and its share
of the peak. The toolkit's pass counted, other passes measured: how close a system's time is to the time its
arithmetic needs at the peak.

    ~/bertkit-venv/bin/python scripts/bench/pass_flops.py --task conll2003 --model DIR [--data ../shared/data]
        [--seconds toolkit=7.4 onnxruntime=8.8] [--peak 231]
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_anchors import Workload  # noqa: E402


def layer_flops(query_rows, key_rows, attended, hidden, intermediate):
    """One layer: `query_rows` rows through the query, attention output and feed-forward products, `key_rows`
    through the key and value products, and `attended` = Σ over sequences of (query rows × keys) for QKᵀ and PV."""
    return (2 * query_rows * hidden * hidden * 2          # query, attention output
            + 2 * key_rows * hidden * hidden * 2          # key, value
            + 2 * query_rows * hidden * intermediate * 2  # intermediate, output
            + 2 * attended * hidden * 2)                  # QKᵀ and P·V over all heads


def passes(workload, config, classes):
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    lengths = workload.lengths
    if workload.task == "conll2003":
        # Each word's first token: where the word index changes.
        scored = [sum(1 for p, w in enumerate(ids) if w is not None and (p == 0 or ids[p - 1] != w))
                  for ids in workload.word_ids]
        head = lambda rows, sequences: 2 * rows * h * classes
    elif workload.task in ("mrpc", "sst2"):
        scored = [1] * len(lengths)
        head = lambda rows, sequences: 2 * sequences * h * h + 2 * sequences * h * classes  # pooler, classifier
    else:
        sys.exit("counted for conll2003, mrpc and sst2 (span QA runs the padded pass in the toolkit too)")

    tokens = sum(lengths)
    squares = sum(n * n for n in lengths)
    toolkit = ((layers - 1) * layer_flops(tokens, tokens, squares, h, i)
               + layer_flops(sum(scored), tokens, sum(s * n for s, n in zip(scored, lengths)), h, i)
               + head(sum(scored), len(lengths)))

    padded_tokens, padded_squares = 0, 0
    for chosen, _ in workload.batches:
        longest = max(lengths[j] for j in chosen)
        padded_tokens += len(chosen) * longest
        padded_squares += len(chosen) * longest * longest
    padded_head_rows = padded_tokens if workload.task == "conll2003" else len(lengths)
    padded = layers * layer_flops(padded_tokens, padded_tokens, padded_squares, h, i) + head(padded_head_rows, len(lengths))
    return [("toolkit (packed rows, scored last layer)", tokens, toolkit),
            ("padded batches, every row", padded_tokens, padded)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", required=True, choices=["conll2003", "mrpc", "sst2"])
    parser.add_argument("--model", required=True, type=Path, help="a fine-tuned model folder (Hugging Face layout)")
    parser.add_argument("--data", default=Path(__file__).resolve().parent.parent.parent.parent / "shared" / "data", type=Path)
    parser.add_argument("--seconds", nargs="*", default=[], help="NAME=SECONDS: a pass's time (toolkit=… counts as the "
                        "toolkit's pass, any other name as a padded one)")
    parser.add_argument("--peak", type=float, help="multiply-add peak of the cores used, GFLOP/s")
    args = parser.parse_args()

    config = json.loads((args.model / "config.json").read_text())
    workload = Workload(args.task, str(args.model), args.data)
    counted = passes(workload, config, len(config.get("id2label", {})) or 2)
    print(f"{args.task} dev: {workload.count} examples, {len(workload.batches)} batches of up to 32")
    print("| pass | token rows | product FLOPs |")
    print("|---|---:|---:|")
    for name, rows, flops in counted:
        print(f"| {name} | {rows} | {flops / 1e12:.3f} T |")
    if args.seconds:
        print()
        print("| system | seconds | product GFLOP/s | share of the peak |")
        print("|---|---:|---:|---:|")
        for item in args.seconds:
            name, seconds = item.split("=")
            flops = counted[0][2] if name == "toolkit" else counted[1][2]
            rate = flops / float(seconds) / 1e9
            share = f"{100 * rate / args.peak:.0f} %" if args.peak else "–"
            print(f"| {name} | {float(seconds):.2f} | {rate:.0f} | {share} |")
        if args.peak:
            print(f"\nAt the peak ({args.peak:.0f} GFLOP/s) the toolkit's products alone take {counted[0][2] / args.peak / 1e9:.2f} s.")


if __name__ == "__main__":
    main()
