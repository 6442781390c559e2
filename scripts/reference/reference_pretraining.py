#!/usr/bin/env python3
"""PyTorch + transformers reference for continued pre-training (masked LM + next-sentence prediction).

Trains `BertForPreTraining` with the Hugging Face Trainer on the pairs a bertkit pre-training run packed
(`pairs-train.jsonl` in its run folder), masking them afresh in every batch with BERT's scheme as bertkit
does (15 % of the non-special tokens, rounded, at most --max-predictions; 80 % [MASK], 10 % random, 10 %
unchanged), and scores the run's own held-out masks (`masked-heldout.jsonl`) before and after: the same data,
masking scheme and hyper-parameters on both sides.

    swift run -c release finetune --task pretrain --db benchmarks/pretrain.db --output-dir benchmarks/runs
    ~/bertkit-venv/bin/python scripts/reference/reference_pretraining.py --run-dir benchmarks/runs/1-pretrain

With --check-export, it instead loads bertkit's exported model (the run's `best` folder) into
BertForPreTraining and prints its held-out scores, to compare with the run's own final evaluation.
"""
import argparse
import json
import math
import random
import resource
import time
from pathlib import Path

import numpy as np
import torch
from reference_common import EpochTimer, ListDataset
from transformers import BertForPreTraining, Trainer, TrainingArguments

ROOT = Path(__file__).resolve().parent.parent.parent


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


class MaskingCollator:
    """Pads a batch and masks each sequence afresh, as bertkit's Masker does."""

    def __init__(self, vocab_size, cls_id, sep_id, pad_id, mask_id, probability, max_predictions, seed):
        self.vocab_size, self.special, self.pad_id, self.mask_id = vocab_size, {cls_id, sep_id, pad_id}, pad_id, mask_id
        self.probability, self.max_predictions = probability, max_predictions
        self.random = random.Random(seed)

    def mask(self, ids):
        candidates = [i for i, t in enumerate(ids) if t not in self.special]
        self.random.shuffle(candidates)
        wanted = min(self.max_predictions, max(1, int(math.floor(len(candidates) * self.probability + 0.5))))
        chosen = sorted(candidates[:wanted])
        corrupted, labels = list(ids), [-100] * len(ids)
        for p in chosen:
            labels[p] = ids[p]
            if self.random.random() < 0.8:
                corrupted[p] = self.mask_id
            elif self.random.random() < 0.5:
                corrupted[p] = self.random.randrange(self.vocab_size)
        return corrupted, labels

    def __call__(self, items):
        length = max(len(e["input_ids"]) for e in items)
        batch = {k: [] for k in ("input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label")}
        for e in items:
            ids, labels = self.mask(e["input_ids"])
            pad = length - len(ids)
            batch["input_ids"].append(ids + [self.pad_id] * pad)
            batch["token_type_ids"].append(e["token_type_ids"] + [0] * pad)
            batch["attention_mask"].append([1] * len(ids) + [0] * pad)
            batch["labels"].append(labels + [-100] * pad)
            batch["next_sentence_label"].append(e["next_sentence_label"])
        return {k: torch.tensor(v) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model, heldout, batch_size=64):
    """Masked-LM loss, accuracy and perplexity over every held-out masked position; NSP loss and accuracy."""
    model.eval()
    loss_sum, correct, predictions, nsp_loss_sum, nsp_correct = 0.0, 0, 0, 0.0, 0
    for start in range(0, len(heldout), batch_size):
        chunk = heldout[start:start + batch_size]
        length = max(len(e["input_ids"]) for e in chunk)
        ids = torch.tensor([e["input_ids"] + [0] * (length - len(e["input_ids"])) for e in chunk])
        types = torch.tensor([e["token_type_ids"] + [0] * (length - len(e["token_type_ids"])) for e in chunk])
        mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (length - len(e["input_ids"])) for e in chunk])
        out = model.bert(input_ids=ids, token_type_ids=types, attention_mask=mask)
        rows = torch.tensor([b * length + p for b, e in enumerate(chunk) for p in e["masked_positions"]])
        labels = torch.tensor([t for e in chunk for t in e["masked_labels"]])
        hidden = out.last_hidden_state.reshape(-1, out.last_hidden_state.shape[-1])[rows]
        logits = model.cls.predictions(hidden)
        loss_sum += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(-1) == labels).sum().item()
        predictions += len(labels)
        nsp = model.cls.seq_relationship(out.pooler_output)
        nsp_labels = torch.tensor([e["next_sentence_label"] for e in chunk])
        nsp_loss_sum += torch.nn.functional.cross_entropy(nsp, nsp_labels, reduction="sum").item()
        nsp_correct += (nsp.argmax(-1) == nsp_labels).sum().item()
    mlm_loss = loss_sum / predictions
    return {"mlm_loss": mlm_loss, "mlm_accuracy": correct / predictions, "perplexity": math.exp(mlm_loss),
            "nsp_loss": nsp_loss_sum / len(heldout), "nsp_accuracy": nsp_correct / len(heldout)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True, help="a bertkit pre-training run folder")
    parser.add_argument("--model", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--check-export", action="store_true", help="score the run's exported model instead of training")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--mlm-probability", type=float, default=0.15)
    parser.add_argument("--max-predictions", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = Path(args.run_dir)
    heldout = read_jsonl(run / "masked-heldout.jsonl")

    if args.check_export:
        model = BertForPreTraining.from_pretrained(run / "best").eval()
        print(json.dumps({"export": str(run / "best"), **evaluate(model, heldout)}), flush=True)
        return

    pairs = read_jsonl(run / "pairs-train.jsonl")
    model = BertForPreTraining.from_pretrained(args.model)
    torch.manual_seed(args.seed)
    before = evaluate(model, heldout)
    vocab = [line for line in (Path(args.model) / "vocab.txt").read_text(encoding="utf-8").split("\n")]
    ids = {t: i for i, t in enumerate(vocab)}
    collator = MaskingCollator(model.config.vocab_size, ids["[CLS]"], ids["[SEP]"], ids["[PAD]"], ids["[MASK]"],
                               args.mlm_probability, args.max_predictions, args.seed)
    steps = int(np.ceil(args.epochs * -(-len(pairs) // args.batch_size)))
    training_args = TrainingArguments(
        output_dir="/tmp/bertkit-reference-pretraining", learning_rate=args.learning_rate,
        per_device_train_batch_size=args.batch_size, num_train_epochs=args.epochs, warmup_steps=int(0.1 * steps),
        weight_decay=0.01, max_grad_norm=1.0, lr_scheduler_type="linear", seed=args.seed,
        train_sampling_strategy="group_by_length", eval_strategy="no", save_strategy="no", logging_strategy="no",
        report_to=[], use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, remove_unused_columns=False)
    timer = EpochTimer()
    trainer = Trainer(model=model, args=training_args, train_dataset=ListDataset(pairs), data_collator=collator,
                      callbacks=[timer])
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    after = evaluate(model, heldout)
    print(json.dumps({
        "seed": args.seed, "pairs": len(pairs), "heldout": len(heldout), "before": before, "after": after,
        "train_pairs_per_second": len(pairs) / np.mean(timer.epoch_seconds), "epoch_seconds": timer.epoch_seconds,
        "seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
