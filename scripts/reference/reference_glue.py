#!/usr/bin/env python3
"""PyTorch + transformers reference for GLUE fine-tuning: the same recipe as `finetune --task TASK`.

Reads the task file under Tasks/, tokenizes with the model's tokenizer, fine-tunes BertForSequenceClassification
with the Hugging Face Trainer (AdamW, linear warm-up and decay, dynamic padding, length-grouped batches) and
prints one JSON line per run: dev metrics, training samples/s, wall time per epoch, peak resident memory.

    ~/bertkit-venv/bin/python scripts/reference/reference_glue.py --task mrpc --seeds 1 2 3
"""
import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from reference_common import schedule, EpochTimer, ListDataset, fine_tuning_arguments
from transformers import (AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding, Trainer,
                          TrainingArguments)

ROOT = Path(__file__).resolve().parent.parent.parent


def read_split(spec, split):
    layout = spec["splits"][split]
    path = ROOT / "Tasks" / spec["dataDirectory"] / layout["file"]
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    if layout.get("header", True):
        lines = lines[1:]
    rows = [line.rstrip("\r").split("\t") for line in lines if line]
    a = [r[layout["textA"]] for r in rows]
    b = [r[layout["textB"]] for r in rows] if "textB" in layout else None
    labels = spec.get("labels")
    y = [labels.index(r[layout["label"]]) if labels else float(r[layout["label"]]) for r in rows]
    return a, b, y


def metrics_for(spec):
    def compute(prediction):
        logits, labels = prediction
        out = {}
        if spec.get("labels"):
            predicted = np.argmax(logits, axis=1)
            for name in spec["metrics"]:
                out[name] = {"accuracy": lambda: accuracy_score(labels, predicted),
                             "f1": lambda: f1_score(labels, predicted),
                             "matthews": lambda: matthews_corrcoef(labels, predicted)}[name]()
        else:
            predicted = logits.reshape(-1)
            for name in spec["metrics"]:
                out[name] = {"pearson": lambda: pearsonr(predicted, labels)[0],
                             "spearman": lambda: spearmanr(predicted, labels)[0]}[name]()
        return {k: float(v) for k, v in out.items()}
    return compute


def main():
    parser = argparse.ArgumentParser()
    fine_tuning_arguments(parser, task="mrpc")
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--no-group-by-length", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--eval-batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = json.loads((ROOT / "Tasks" / f"{args.task}.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    data = {}
    for split in ("train", "dev"):
        a, b, y = read_split(spec, split)
        encodings = tokenizer(a, b, truncation=True, max_length=args.max_length) if b else \
            tokenizer(a, truncation=True, max_length=args.max_length)
        data[split] = ListDataset([{**{k: v[i] for k, v in encodings.items()}, "labels": y[i]} for i in range(len(y))])

    for seed in args.seeds:
        labels = spec.get("labels")
        model = BertForSequenceClassification.from_pretrained(
            args.model, num_labels=len(labels) if labels else 1,
            problem_type="single_label_classification" if labels else "regression")
        total, length = schedule(args, len(data["train"]))
        training_args = TrainingArguments(
            output_dir="/tmp/bertkit-reference", learning_rate=args.learning_rate,
            per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=args.eval_batch_size,
            **length, warmup_steps=int(args.warmup_ratio * total),
            weight_decay=args.weight_decay, max_grad_norm=1.0, lr_scheduler_type="linear", seed=seed,
            train_sampling_strategy="random" if args.no_group_by_length else "group_by_length", eval_strategy="epoch", save_strategy="no",
            logging_strategy="no", report_to=[], use_cpu=True, bf16=args.bf16, dataloader_num_workers=0,
            disable_tqdm=True)
        timer = EpochTimer()
        trainer = Trainer(model=model, args=training_args, train_dataset=data["train"], eval_dataset=data["dev"],
                          data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=metrics_for(spec),
                          callbacks=[timer])
        start = time.perf_counter()
        train_output = trainer.train()
        seconds = time.perf_counter() - start
        inference_start = time.perf_counter()
        trainer.predict(data["dev"])
        inference_seconds = time.perf_counter() - inference_start
        history = [h for h in trainer.state.log_history if any(k.startswith("eval_") for k in h)]
        final = {k[5:]: v for k, v in history[-1].items() if k[5:] in spec["metrics"]}
        best = max((h[f"eval_{spec['mainMetric']}"] for h in history))
        print(json.dumps({
            "task": args.task, "seed": seed, "learning_rate": args.learning_rate, "bf16": args.bf16,
            "final": final, f"best_{spec['mainMetric']}": best,
            "train_samples_per_second": train_output.metrics.get("train_samples_per_second"),
            "seconds": seconds, "epoch_seconds": timer.epoch_seconds, "train_examples_per_epoch": len(data["train"]),
            "train_tokens_per_epoch": sum(len(e["input_ids"]) for e in data["train"].items),
            "inference_samples_per_second": len(data["dev"]) / inference_seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "torch": torch.__version__, "compiled": args.compile, **timer.steps(args.batch_size),
        }), flush=True)


if __name__ == "__main__":
    main()
