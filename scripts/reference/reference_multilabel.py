#!/usr/bin/env python3
"""PyTorch + transformers reference for multi-label fine-tuning: the same recipe as `finetune --task goemotions`.

Reads the task file under Tasks/ (GoEmotions: labels as indices, from --data-dir), fine-tunes
BertForSequenceClassification with problem_type multi_label_classification (BCEWithLogitsLoss) with the Hugging
Face Trainer (AdamW, linear warm-up and decay, dynamic padding, length-grouped batches), predicts a label when its
sigmoid reaches --threshold, and prints one JSON line per run: dev micro/macro F1 and subset accuracy as
scikit-learn computes them, training samples/s, wall time.

    ~/bertkit-venv/bin/python scripts/reference/reference_multilabel.py --data-dir ../shared/data --train-limit 8000 --epochs 1
"""
import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from reference_common import EpochTimer, ListDataset, fine_tuning_arguments
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from transformers import AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments

ROOT = Path(__file__).resolve().parent.parent.parent


def read_split(spec, split, data_dir, limit=None):
    layout = spec["splits"][split]
    path = Path(data_dir) / spec["dataDirectory"] / layout["file"]
    lines = path.read_text(encoding="utf-8").split("\n")
    if layout.get("header", True):
        lines = lines[1:]
    rows = [line.rstrip("\r").split("\t") for line in lines if line][:limit]
    labels = spec["labels"]
    texts = [r[layout["textA"]] for r in rows]
    y = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for i, r in enumerate(rows):
        for label in filter(None, r[layout["label"]].split(layout.get("labelSeparator", ","))):
            y[i, int(label) if layout.get("labelIndices") else labels.index(label)] = 1
    return texts, y


def metrics(threshold):
    def compute(prediction):
        logits, gold = prediction
        predicted = (1 / (1 + np.exp(-logits)) >= threshold).astype(int)
        gold = gold.astype(int)
        return {"micro_f1": f1_score(gold, predicted, average="micro", zero_division=0),
                "macro_f1": f1_score(gold, predicted, average="macro", zero_division=0),
                "micro_precision": precision_score(gold, predicted, average="micro", zero_division=0),
                "micro_recall": recall_score(gold, predicted, average="micro", zero_division=0),
                "subset_accuracy": accuracy_score(gold, predicted)}
    return compute


def main():
    parser = argparse.ArgumentParser()
    fine_tuning_arguments(parser, task="goemotions")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--train-limit", type=int, default=None, help="train on the first N examples only")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = json.loads((ROOT / "Tasks" / f"{args.task}.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    data = {}
    for split, limit in (("train", args.train_limit), ("dev", None)):
        texts, y = read_split(spec, split, args.data_dir, limit)
        encodings = tokenizer(texts, truncation=True, max_length=args.max_length)
        data[split] = ListDataset([{**{k: v[i] for k, v in encodings.items()}, "labels": y[i]} for i in range(len(y))])
    for seed in args.seeds:
        model = BertForSequenceClassification.from_pretrained(args.model, num_labels=len(spec["labels"]),
                                                              problem_type="multi_label_classification")
        steps_per_epoch = -(-len(data["train"]) // args.batch_size)
        total = int(np.ceil(args.epochs * steps_per_epoch))
        training_args = TrainingArguments(
            output_dir="/tmp/bertkit-reference", learning_rate=args.learning_rate, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=32, num_train_epochs=args.epochs, warmup_steps=int(0.1 * total), weight_decay=0.01,
            max_grad_norm=1.0, lr_scheduler_type="linear", seed=seed, train_sampling_strategy="group_by_length",
            eval_strategy="epoch", save_strategy="no", logging_strategy="no", report_to=[], use_cpu=True,
            dataloader_num_workers=0, disable_tqdm=True)
        timer = EpochTimer()
        trainer = Trainer(model=model, args=training_args, train_dataset=data["train"], eval_dataset=data["dev"],
                          data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=metrics(args.threshold),
                          callbacks=[timer])
        start = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - start
        history = [h for h in trainer.state.log_history if any(k.startswith("eval_") for k in h)]
        print(json.dumps({
            "task": args.task, "seed": seed, "train_examples": len(data["train"]), "epochs": args.epochs,
            "final": {k[5:]: v for k, v in history[-1].items() if k[5:] in ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "subset_accuracy")},
            "train_samples_per_second": output.metrics.get("train_samples_per_second"), "seconds": seconds,
            "epoch_seconds": timer.epoch_seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "torch": torch.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
