#!/usr/bin/env python3
"""The toolkit against what a user would pick instead, in one run, on four tasks: MRPC (sentence pairs), SST-2
(short single sentences), CoNLL-2003 (token classification, short) and SQuAD windows of 384 tokens (the
squad-articles split). Every row reports the task's dev metric next to its speed; all at 2 threads.

Training, the same recipe and number of optimizer steps on each side (batch 32, the task's learning rate and
length, warm-up 10 %, seed 42):
  - `finetune --task T --max-steps N`;
  - PyTorch eager: the Hugging Face Trainer (scripts/reference/reference_*.py: dynamic padding, length-grouped batches);
  - PyTorch with torch.compile (the Trainer's torch_compile, inductor): compile seconds apart from the rate.
Inference, on the dev split, with the model the toolkit trained (its best/ folder, Hugging Face layout):
  - `finetune evaluate --precision fp32|int8` (timed as it reports: the forward passes and scoring);
  - a plain PyTorch loop under torch.inference_mode(), fp32 and torch.ao dynamic int8;
  - ONNX Runtime (all graph optimisations) on torch.onnx.export's graph, fp32 and quantize_dynamic int8.
  The Python rows time forward passes over batches tokenised beforehand (32, sorted by length), after a warm-up
  pass; the toolkit's time is a new process's, once its weights are packed (and quantised), with its first-call
  costs.
  This machine's speed moves between runs, so the inference systems take turns for several rounds, and each
  ratio is taken within a round: the table gives the median over rounds and the range. With --training-rounds N
  the toolkit and PyTorch eager train the same way N times in turn (torch.compile once), and their ratio is
  likewise taken per round. Every round's rates also go to a JSON file beside the table (benchmarks/anchors.json
  for benchmarks/anchors.md), so that several runs can be pooled.

    swift build -c release
    ~/bertkit-venv/bin/python scripts/bench/benchmark_anchors.py [--tasks mrpc sst2 conll2003 squad-articles]
        [--data ../shared/data] [--output benchmarks/anchors.md] [--keep-models DIR | --models DIR]
        [--training-rounds N] [--inference-rounds N]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import FINETUNE, ROOT, cpu_name, write_table

# Steps of training per task: MRPC's is one epoch; the others a few hundred steps (SQuAD's windows are long).
# Inference rounds (each system one timed pass a round): one for SQuAD, without the Python rows' warm-up (a pass
# is a minute or more), else three.
TASKS = {
    "mrpc": {"reference": "reference_glue.py", "steps": 115, "rounds": 3},
    "sst2": {"reference": "reference_glue.py", "steps": 400, "rounds": 3},
    "conll2003": {"reference": "reference_ner.py", "steps": 400, "rounds": 3},
    "squad-articles": {"reference": "reference_qa.py", "steps": 40, "rounds": 1},
}
SEED = 42


def environment():
    return {**os.environ, "BERTKIT_THREADS": "2"}


def task_spec(task):
    """The task's file in Tasks/, parsed."""
    return json.loads((ROOT / "Tasks" / f"{task}.json").read_text())


def data_options(task, data):
    return ["--data-dir", str(data)] if task == "conll2003" else []


def train_toolkit(task, steps, data, work):
    """`finetune` for `steps` steps: training samples/s, the final dev metric, and the model folder."""
    spec = task_spec(task)
    done = subprocess.run([str(FINETUNE), "--task", task, "--max-steps", str(steps), "--eval-steps", str(steps),
                           "--seed", str(SEED), "--db", str(work / "anchors.db"), "--output-dir", str(work / "runs")]
                          + data_options(task, data), cwd=ROOT, capture_output=True, text=True, env=environment())
    if done.returncode != 0:
        sys.exit(done.stdout + done.stderr)
    run = int(re.search(r"^run (\d+):", done.stdout, re.M).group(1))
    rate = float(re.findall(r"([\d.]+) samples/s", done.stdout)[-1])
    final = [line for line in done.stdout.splitlines() if line.strip().startswith("dev at step")][-1]
    metric = float(re.search(rf"\b{spec['mainMetric']} ([\d.-]+)", final.split(":", 1)[1]).group(1))
    return {"system": "bertkit", "rate": rate, "metric": metric}, work / "runs" / f"{run}-{task}" / "best"


def train_reference(task, steps, data, python, compiled):
    """A reference script for `steps` steps: its rate (compilation apart), compile seconds and dev metric."""
    script = TASKS[task]["reference"]
    command = [python, str(ROOT / "scripts" / "reference" / script), "--seeds", str(SEED), "--max-steps", str(steps)]
    command += ["--task", task] if script != "reference_ner.py" else ["--data-dir", str(data)]
    command += ["--compile"] if compiled else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stdout + done.stderr)
    result = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    metric = {"reference_glue.py": lambda r: r["final"][task_spec(task)["mainMetric"]],
              "reference_ner.py": lambda r: r["valid"]["f1"], "reference_qa.py": lambda r: r["f1"]}[script](result)
    if compiled:
        rate, compile_seconds = result["steady_samples_per_second"], result["compile_seconds"]
    else:  # every step counts, as the toolkit's rate counts its own
        rate, compile_seconds = result["steps"] * 32 / result["step_seconds_total"], None
    name = f"PyTorch {result['torch']} " + ("torch.compile (inductor)" if compiled else "eager (Trainer)")
    return {"system": name, "rate": rate, "metric": metric, "compile_seconds": compile_seconds}


def evaluate_toolkit(task, model, precision, data):
    """`finetune evaluate` once: the seconds it reports and the main metric."""
    spec = task_spec(task)
    done = subprocess.run([str(FINETUNE), "evaluate", "--model", str(model), "--task", task, "--precision", precision]
                          + data_options(task, data), cwd=ROOT, capture_output=True, text=True, env=environment())
    if done.returncode != 0:
        sys.exit(done.stdout + done.stderr)
    line = [l for l in done.stdout.splitlines() if " dev, " in l][-1]
    seconds = float(re.search(r"\(([\d.]+) s\)", line).group(1))
    return seconds, float(re.search(rf"\b{spec['mainMetric']} ([\d.-]+)", line).group(1))


def inference_rounds(task, model, rounds, data):
    """The inference systems in turn, `rounds` times: the examples, and per round each system's seconds and metric."""
    measured = []
    for _ in range(rounds):
        round_ = {f"bertkit evaluate {p}": evaluate_toolkit(task, model, p, data) for p in ("fp32", "int8")}
        count, others = python_rows(task, model, warm_up=rounds > 1, data=data)
        round_.update({name: (seconds, metric) for name, seconds, metric in others})
        measured.append(round_)
    return count, measured


class Workload:
    """A task's dev split for the Python rows: batches tokenised beforehand, the head to load, and scoring."""

    def __init__(self, task, model, data):
        import torch
        from transformers import AutoTokenizer
        self.task, self.torch = task, torch
        spec = task_spec(task)
        self.tokenizer = tokenizer = AutoTokenizer.from_pretrained(model)
        if task in ("mrpc", "sst2"):
            from reference_glue import metrics_for, read_split
            a, b, self.gold = read_split(spec, "dev")
            encoded = [tokenizer(x, y, truncation=True, max_length=128) if b else tokenizer(x, truncation=True, max_length=128)
                       for x, y in zip(a, b or [None] * len(a))]
            self.score_logits = lambda logits: metrics_for(spec)((logits, self.gold))[spec["mainMetric"]]
            self.outputs, self.head = ["logits"], "AutoModelForSequenceClassification"
        elif task == "conll2003":
            from reference_ner import read_conll
            self.sentences = read_conll(Path(data) / "conll2003" / "valid.txt", 3)
            encoded = [tokenizer(words, is_split_into_words=True, truncation=True, max_length=128) for words, _ in self.sentences]
            self.word_ids = [e.word_ids() for e in encoded]
            self.outputs, self.head = ["logits"], "AutoModelForTokenClassification"
            self.labels = spec["labels"]
        else:
            from reference_qa import features, read_split
            self.examples = read_split(spec, "dev")
            items, self.windows = features(tokenizer, self.examples, 384, 128, training=False)
            encoded = items
            self.outputs, self.head = ["start_logits", "end_logits"], "AutoModelForQuestionAnswering"
        self.count = len(self.examples) if task == "squad-articles" else len(encoded)
        self.lengths = [len(e["input_ids"]) for e in encoded]
        order = sorted(range(len(encoded)), key=lambda i: self.lengths[i])
        self.batches = []
        for start in range(0, len(order), 32):
            chosen = order[start:start + 32]
            batch = tokenizer.pad([{k: encoded[i][k] for k in ("input_ids", "token_type_ids", "attention_mask")} for i in chosen],
                                  return_tensors="pt")
            self.batches.append((chosen, batch))

    def run(self, forward):
        """Every batch through `forward` (inputs -> output arrays); per input, its outputs cut to its length."""
        results = [None] * len(self.lengths)
        for chosen, batch in self.batches:
            outputs = forward(batch)
            for row, i in enumerate(chosen):
                results[i] = [o[row][:self.lengths[i]] for o in outputs]
        return results

    def score(self, results):
        import numpy as np
        if self.task in ("mrpc", "sst2"):
            return self.score_logits(np.stack([r[0] for r in results]))
        if self.task == "conll2003":
            from seqeval.metrics import f1_score
            predicted = []
            for (words, _), ids, (logits,) in zip(self.sentences, self.word_ids, results):
                tags, previous = [], None
                for position, word in enumerate(ids):
                    if word is not None and word != previous:
                        tags.append(self.labels[int(logits[position].argmax())])
                    previous = word
                predicted.append(tags + ["O"] * (len(words) - len(tags)))  # words cut by the length limit
            return f1_score([tags for _, tags in self.sentences], predicted)
        from reference_common import squad_evaluate
        from reference_qa import postprocess
        predictions = postprocess(self.examples, self.windows, [r[0] for r in results], [r[1] for r in results])
        return squad_evaluate(self.examples, predictions)["f1"]


def python_rows(task, model, warm_up, data):
    """The plain PyTorch loop and ONNX Runtime rows: examples, and per system its seconds for one pass (after an
    untimed one with `warm_up`) and dev metric.
    Measured in a process of their own, so that this one never loads PyTorch: its threads and environment
    slowed the toolkit's runs started from a process that had (by up to 15 % in a trial)."""
    done = subprocess.run([sys.executable, __file__, "--python-rows", task, str(model), str(int(warm_up)), "--data", str(data)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stdout + done.stderr)
    result = json.loads(done.stdout.splitlines()[-1])
    return result["count"], [tuple(row) for row in result["rows"]]


def measure_python_rows(task, model, warm_up, data):
    import onnxruntime as ort
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    torch.set_num_threads(2)
    work = Workload(task, model, data)
    network = getattr(transformers, work.head).from_pretrained(model).eval()
    rows = []

    def measure(name, forward):
        if warm_up:
            work.run(forward)
        started = time.perf_counter()
        results = work.run(forward)
        rows.append((name, time.perf_counter() - started, work.score(results)))

    def torch_forward(m):
        def forward(batch):
            with torch.inference_mode():
                out = m(**batch)
            return [getattr(out, name).numpy() for name in work.outputs]
        return forward
    measure(f"PyTorch {torch.__version__} loop fp32", torch_forward(network))
    quantized = torch.ao.quantization.quantize_dynamic(network, {torch.nn.Linear}, dtype=torch.qint8)
    measure(f"PyTorch {torch.__version__} loop dynamic int8", torch_forward(quantized))

    names = ["input_ids", "attention_mask", "token_type_ids"]
    with tempfile.TemporaryDirectory() as d:
        fp32, int8 = Path(d) / "model.onnx", Path(d) / "model-int8.onnx"
        sample = work.batches[0][1]
        torch.onnx.export(network, tuple(sample[k] for k in names), str(fp32), input_names=names, output_names=work.outputs,
                          dynamic_axes={k: {0: "batch", 1: "length"} for k in names}, opset_version=17, dynamo=False)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        for label, path in (("fp32", fp32), ("dynamic int8", int8)):
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            measure(f"ONNX Runtime {ort.__version__} {label}",
                    lambda batch, s=session: s.run(work.outputs, {k: batch[k].numpy() for k in names}))
    return work.count, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="folder holding conll2003/")
    parser.add_argument("--python", default=sys.executable, help="Python with torch and transformers (for the reference scripts)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "anchors.md")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 4 training steps, one inference pass")
    parser.add_argument("--training-rounds", type=int, default=1, metavar="N",
                        help="train with the toolkit and PyTorch eager N times each, in turn (default 1)")
    parser.add_argument("--inference-rounds", type=int, metavar="N",
                        help="inference rounds per task (default: 3, SQuAD 1)")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--keep-models", type=Path, metavar="DIR", help="copy each model the toolkit trains to DIR/TASK")
    models.add_argument("--models", type=Path, metavar="DIR",
                        help="no training: inference only, on the models in DIR/TASK (from an earlier --keep-models)")
    parser.add_argument("--python-rows", nargs=3, metavar=("TASK", "MODEL", "WARM_UP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.python_rows:
        task, model, warm_up = args.python_rows
        count, rows = measure_python_rows(task, model, warm_up == "1", args.data)
        print(json.dumps({"count": count, "rows": rows}))
        return
    training = ["| task | system | steps | train samples/s (median, min–max) | vs PyTorch eager (range) | compile s | dev metric |",
                "|---|---|---:|---|---:|---:|---:|"]
    inference = ["| task | system | dev examples/s (median, min–max) | vs best other fp32 (range) | vs best other int8 (range) | dev metric |",
                 "|---|---|---|---:|---:|---:|"]
    # Every round's rates, written next to the table (same name, .json): a statistic over several runs needs them.
    started, used_rounds, every_round = time.time(), {}, {}
    with tempfile.TemporaryDirectory() as d:
        for task in args.tasks:
            steps, rounds = (4, 1) if args.quick else (TASKS[task]["steps"], args.inference_rounds or TASKS[task]["rounds"])
            used_rounds[task] = rounds
            if args.models:
                model, systems = args.models / task, ()
            else:
                # Per round, the toolkit then PyTorch eager (the same seed: the same model every round).
                ours, eager = [], []
                for round_ in range(args.training_rounds):
                    row, model = train_toolkit(task, steps, args.data, Path(d) / task / str(round_))
                    ours.append(row)
                    eager.append(train_reference(task, steps, args.data, args.python, compiled=False))
                if args.keep_models:
                    shutil.copytree(model, args.keep_models / task, dirs_exist_ok=True)
                compiled = train_reference(task, steps, args.data, args.python, compiled=True)
                # torch.compile ran once: its ratio is to the median eager rate.
                eager_median = statistics.median(r["rate"] for r in eager)
                systems = ((ours, [o["rate"] / e["rate"] for o, e in zip(ours, eager)]),
                           (eager, [1.0] * len(eager)), ([compiled], [compiled["rate"] / eager_median]))
            every_round[task] = {"training samples/s": {runs[0]["system"]: [r["rate"] for r in runs] for runs, _ in systems}}
            for runs, ratios in systems:
                own = [r["rate"] for r in runs]
                rate = f"{statistics.median(own):.1f}" + (f" ({min(own):.1f}–{max(own):.1f})" if len(own) > 1 else "")
                ratio = f"{statistics.median(ratios):.2f}x" + (f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else "")
                compile_seconds = f"{runs[0]['compile_seconds']:.0f}" if runs[0].get("compile_seconds") is not None else "–"
                training.append(f"| {task} | {runs[0]['system']} | {steps} | {rate} | {ratio} | {compile_seconds} | {runs[-1]['metric']:.4f} |")

            count, measured = inference_rounds(task, model, rounds, args.data)
            rates = [{name: count / seconds for name, (seconds, _) in round_.items()} for round_ in measured]
            every_round[task]["inference examples/s, per round"] = rates
            # Per round, the fastest system that is not the toolkit, among the int8 ones and among the others.
            best = [{kind: max(r for name, r in round_.items() if not name.startswith("bertkit") and ("int8" in name) == (kind == "int8"))
                     for kind in ("fp32", "int8")} for round_ in rates]
            for name in measured[0]:
                ratios = {kind: [round_[name] / b[kind] for round_, b in zip(rates, best)] for kind in ("fp32", "int8")}
                own = [round_[name] for round_ in rates]
                inference.append(f"| {task} | {name} | {statistics.median(own):.1f} ({min(own):.1f}–{max(own):.1f}) | "
                                 + " | ".join(f"{statistics.median(ratios[k]):.2f}x ({min(ratios[k]):.2f}–{max(ratios[k]):.2f})"
                                              for k in ("fp32", "int8"))
                                 + f" | {measured[-1][name][1]:.4f} |")
            lines = [f"# The toolkit against PyTorch and ONNX Runtime ({cpu_name()}, 2 threads)", "",
                     f"Command: `python scripts/bench/benchmark_anchors.py {' '.join(sys.argv[1:])}` (after `swift build -c release`); "
                     f"{(time.time() - started) / 60:.0f} min so far. Seed {SEED}; metrics: MRPC F1, SST-2 accuracy, CoNLL-2003 "
                     "entity F1 (valid), SQuAD F1 (percent). Training rates count every step; torch.compile's rate leaves out "
                     "the steps that compiled (over three times the median step), whose extra time is the compile column. "
                     f"Training rounds: {args.training_rounds} (the toolkit and PyTorch eager in turn, each ratio taken within "
                     "a round; torch.compile once, against the median eager rate).", "",
                     "## Training", ""] + (training if not args.models else [f"Not measured: inference only, on the models in {args.models}."]) + ["", "## Inference (the toolkit's trained model, dev split)", "",
                     "Examples are pairs, sentences, sentences and questions. The toolkit's time is what `finetune evaluate` "
                     "reports in a new process (its forward passes and scoring once the weights are packed, and quantised for "
                     "int8, as the others' sessions are built untimed; with a new process's first-call costs; it tokenises "
                     "before); the others' is one pass of forward passes over batches tokenised beforehand, after a warm-up pass "
                     "(none when a task has one round). Rounds: " + ", ".join(f"{t} {n}" for t, n in used_rounds.items()) + "; the systems take turns, "
                     "each ratio is taken within a round, and the table gives the median and range over rounds.", ""] + inference
            write_table("\n".join(lines) + "\n", args.output)  # after each task, so a long run keeps what it measured
            args.output.with_suffix(".json").write_text(json.dumps(every_round, indent=1) + "\n")


if __name__ == "__main__":
    main()
