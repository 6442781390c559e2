#!/usr/bin/env python3
"""PyTorch + transformers reference for CoNLL-2003 NER: the recipe of transformers' token-classification example.

Labels on each word's first sub-token (-100 elsewhere), BertForTokenClassification, the Hugging Face Trainer
(AdamW, linear warm-up and decay, dynamic padding, length-grouped batches), seqeval entity F1 on valid and test.
Prints one JSON line per seed.

    ~/bertkit-venv/bin/python scripts/reference/reference_ner.py --data-dir ../shared/data --seeds 42
"""
import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from seqeval.metrics import f1_score, precision_score, recall_score
from reference_common import schedule, EpochTimer, ListDataset, fine_tuning_arguments
from transformers import (AutoTokenizer, BertForTokenClassification, DataCollatorForTokenClassification, Trainer,
                          TrainingArguments)

ROOT = Path(__file__).resolve().parent.parent.parent


def read_conll(path, tag_column):
    sentences, words, tags = [], [], []
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        words.append(fields[0])
        tags.append(fields[tag_column])
    if words:
        sentences.append((words, tags))
    return sentences


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True, help="folder holding conll2003/{train,valid,test}.txt")
    fine_tuning_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = json.loads((ROOT / "Tasks" / "conll2003.json").read_text())
    labels = spec["labels"]
    label_ids = {l: i for i, l in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    splits = {}
    for name, file in (("train", "train.txt"), ("valid", "valid.txt"), ("test", "test.txt")):
        sentences = read_conll(Path(args.data_dir) / "conll2003" / file, 3)
        items = []
        for words, tags in sentences:
            encoding = tokenizer(words, is_split_into_words=True, truncation=True, max_length=args.max_length)
            previous, aligned = None, []
            for word in encoding.word_ids():
                aligned.append(-100 if word is None or word == previous else label_ids[tags[word]])
                previous = word
            encoding["labels"] = aligned
            items.append(dict(encoding))
        splits[name] = (ListDataset(items), sentences)

    def compute(prediction):
        logits, gold = prediction
        predicted = np.argmax(logits, axis=2)
        true_tags = [[labels[g] for g in row if g != -100] for row in gold]
        predicted_tags = [[labels[p] for p, g in zip(prow, grow) if g != -100] for prow, grow in zip(predicted, gold)]
        return {"f1": f1_score(true_tags, predicted_tags), "precision": precision_score(true_tags, predicted_tags),
                "recall": recall_score(true_tags, predicted_tags)}

    for seed in args.seeds:
        model = BertForTokenClassification.from_pretrained(args.model, num_labels=len(labels),
                                                           id2label=dict(enumerate(labels)), label2id=label_ids)
        total, length = schedule(args, len(splits["train"][0]))
        training_args = TrainingArguments(
            output_dir="/tmp/bertkit-reference-ner", learning_rate=args.learning_rate,
            per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=64, **length,
            warmup_steps=int(0.1 * total), weight_decay=0.01, max_grad_norm=1.0, lr_scheduler_type="linear", seed=seed,
            train_sampling_strategy="group_by_length", eval_strategy="epoch", save_strategy="no", logging_strategy="no",
            report_to=[], use_cpu=True, dataloader_num_workers=0, disable_tqdm=True)
        timer = EpochTimer()
        trainer = Trainer(model=model, args=training_args, train_dataset=splits["train"][0], eval_dataset=splits["valid"][0],
                          data_collator=DataCollatorForTokenClassification(tokenizer), compute_metrics=compute,
                          callbacks=[timer])
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        valid = trainer.evaluate(splits["valid"][0])
        test = trainer.evaluate(splits["test"][0])
        print(json.dumps({
            "seed": seed, "learning_rate": args.learning_rate,
            "valid": {k[5:]: v for k, v in valid.items() if k[5:] in ("f1", "precision", "recall")},
            "test": {k[5:]: v for k, v in test.items() if k[5:] in ("f1", "precision", "recall")},
            "train_sentences_per_second": len(splits["train"][0]) / np.mean(timer.epoch_seconds),
            "epoch_seconds": timer.epoch_seconds, "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch": torch.__version__, "compiled": args.compile, **timer.steps(args.batch_size),
        }), flush=True)


if __name__ == "__main__":
    main()
