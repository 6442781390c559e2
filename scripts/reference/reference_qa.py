#!/usr/bin/env python3
"""PyTorch + transformers reference for span QA: the recipe of transformers' question-answering example.

Windows of max_length tokens whose contexts overlap by `--window-overlap` tokens (transformers' `stride`),
BertForQuestionAnswering trained with the Hugging Face Trainer, answers post-processed over all windows of a
question (n-best 20, at most 30 tokens), scored with SQuAD v1.1's official exact match and F1. Uses the task file's
split (squad-articles: train on the first 36 articles of dev-v1.1.json, evaluate on the last 12).

    ~/bertkit-venv/bin/python scripts/reference/reference_qa.py --task squad-articles --seeds 42
"""
import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from reference_common import schedule, EpochTimer, ListDataset, fine_tuning_arguments, squad_evaluate
from transformers import AutoTokenizer, BertForQuestionAnswering, DataCollatorWithPadding, Trainer, TrainingArguments

ROOT = Path(__file__).resolve().parent.parent.parent


def read_split(spec, split):
    layout = spec["splits"][split]
    data = json.loads((ROOT / "Tasks" / spec["dataDirectory"] / layout["file"]).read_text(encoding="utf-8"))["data"]
    first, end = layout.get("articles", [0, len(data)])
    examples = []
    for article in data[first:end]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                examples.append({"id": qa["id"], "question": qa["question"], "context": paragraph["context"],
                                 "answers": qa["answers"]})
    return examples


def features(tokenizer, examples, max_length, overlap, training):
    encoded = tokenizer([e["question"].lstrip() for e in examples], [e["context"] for e in examples],
                        truncation="only_second", max_length=max_length, stride=overlap,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    items, windows = [], []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        example = examples[encoded["overflow_to_sample_mapping"][i]]
        sequence_ids = encoded.sequence_ids(i)
        item = {k: encoded[k][i] for k in ("input_ids", "token_type_ids", "attention_mask")}
        if training:
            answer = example["answers"][0]
            start_char, end_char = answer["answer_start"], answer["answer_start"] + len(answer["text"])
            context = [t for t, s in enumerate(sequence_ids) if s == 1]
            first, last = context[0], context[-1]
            if offsets[first][0] > start_char or offsets[last][1] < end_char:
                item["start_positions"], item["end_positions"] = 0, 0
            else:
                start = first
                while start <= last and offsets[start][0] <= start_char:
                    start += 1
                end = last
                while end >= first and offsets[end][1] >= end_char:
                    end -= 1
                item["start_positions"], item["end_positions"] = start - 1, end + 1
        items.append(item)
        windows.append((encoded["overflow_to_sample_mapping"][i],
                        [o if s == 1 else None for o, s in zip(offsets, sequence_ids)]))
    return items, windows


def postprocess(examples, windows, start_logits, end_logits, n_best=20, max_answer=30):
    by_example = {}
    for w, (e, _) in enumerate(windows):
        by_example.setdefault(e, []).append(w)
    predictions = {}
    for e, example in enumerate(examples):
        best, best_score = "", -np.inf
        for w in by_example.get(e, []):
            offsets = windows[w][1]
            starts = np.argsort(start_logits[w])[-1:-n_best - 1:-1]
            ends = np.argsort(end_logits[w])[-1:-n_best - 1:-1]
            for s in starts:
                for t in ends:
                    if s >= len(offsets) or t >= len(offsets) or offsets[s] is None or offsets[t] is None:
                        continue
                    if t < s or t - s + 1 > max_answer:
                        continue
                    score = start_logits[w][s] + end_logits[w][t]
                    if score > best_score:
                        best_score, best = score, example["context"][offsets[s][0]:offsets[t][1]]
        predictions[example["id"]] = best
    return predictions


def main():
    parser = argparse.ArgumentParser()
    fine_tuning_arguments(parser, task="squad-articles", max_length=384, epochs=2)
    parser.add_argument("--window-overlap", type=int, default=128)
    parser.add_argument("--evaluate-only", metavar="MODEL",
                        help="no training: score a fine-tuned BertForQuestionAnswering folder (a bertkit export) on the dev split")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = json.loads((ROOT / "Tasks" / f"{args.task}.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    train_examples, eval_examples = read_split(spec, "train"), read_split(spec, "dev")
    train_items, _ = features(tokenizer, train_examples, args.max_length, args.window_overlap, training=True)
    eval_items, eval_windows = features(tokenizer, eval_examples, args.max_length, args.window_overlap, training=False)

    def predictions(model):
        """Answers for the dev questions. A Trainer of its own: one whose arguments group by length also
        reorders its evaluation batches (transformers 5), and the windows must stay in order."""
        trainer = Trainer(model=model, args=TrainingArguments(output_dir="/tmp/bertkit-reference-qa", per_device_eval_batch_size=32,
                                                              report_to=[], use_cpu=True, disable_tqdm=True),
                          data_collator=DataCollatorWithPadding(tokenizer))
        start_logits, end_logits = trainer.predict(ListDataset(eval_items)).predictions
        return postprocess(eval_examples, eval_windows, start_logits, end_logits)

    if args.evaluate_only:
        model = BertForQuestionAnswering.from_pretrained(args.evaluate_only)
        print(json.dumps({"model": args.evaluate_only, **squad_evaluate(eval_examples, predictions(model))}))
        return

    for seed in args.seeds:
        model = BertForQuestionAnswering.from_pretrained(args.model)
        steps, length = schedule(args, len(train_items))
        training_args = TrainingArguments(
            output_dir="/tmp/bertkit-reference-qa", learning_rate=args.learning_rate,
            per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=64, **length,
            warmup_steps=int(0.1 * steps), weight_decay=0.01, max_grad_norm=1.0, lr_scheduler_type="linear", seed=seed,
            train_sampling_strategy="group_by_length", eval_strategy="no", save_strategy="no", logging_strategy="no",
            report_to=[], use_cpu=True, dataloader_num_workers=0, disable_tqdm=True)
        timer = EpochTimer()
        trainer = Trainer(model=model, args=training_args, train_dataset=ListDataset(train_items),
                          data_collator=DataCollatorWithPadding(tokenizer), callbacks=[timer])
        start = time.perf_counter()
        trainer.train()
        trainer.save_model(f"/tmp/bertkit-reference-qa/seed-{seed}")  # to score again without retraining
        print(json.dumps({
            "seed": seed, "learning_rate": args.learning_rate, **squad_evaluate(eval_examples, predictions(model)),
            "train_windows_per_second": len(train_items) / np.mean(timer.epoch_seconds),
            "epoch_seconds": timer.epoch_seconds, "seconds": time.perf_counter() - start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch": torch.__version__, "compiled": args.compile, **timer.steps(args.batch_size),
        }), flush=True)


if __name__ == "__main__":
    main()
