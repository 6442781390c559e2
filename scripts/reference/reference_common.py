"""Helpers shared by the PyTorch reference scripts and make_fixtures.py."""
import math
import statistics
import time
from pathlib import Path

import torch
from transformers import TrainerCallback


ROOT = Path(__file__).resolve().parent.parent.parent


def fine_tuning_arguments(parser, task=None, max_length=128, epochs=3):
    """The options every reference fine-tuning script takes, with the toolkit's defaults for its task (`--task`
    only when the script serves several)."""
    if task:
        parser.add_argument("--task", default=task)
    parser.add_argument("--model", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=max_length)
    parser.add_argument("--epochs", type=float, default=epochs)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (the schedule spans them)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (inductor), as Trainer's torch_compile does")


def schedule(args, examples):
    """The Trainer's length of training from --epochs or --max-steps, as `finetune` reads them: the total number of
    optimizer steps (warm-up is 10 % of it) and the TrainingArguments that say so, compilation included."""
    steps_per_epoch = -(-examples // args.batch_size)
    if args.max_steps:
        return args.max_steps, {"max_steps": args.max_steps, "torch_compile": args.compile}
    return int(math.ceil(args.epochs * steps_per_epoch)), {"num_train_epochs": args.epochs, "torch_compile": args.compile}


class ListDataset(torch.utils.data.Dataset):
    """Already-tokenised examples, one dict per example."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class EpochTimer(TrainerCallback):
    """Wall time of each epoch's training steps (evaluation, which the Trainer runs after, excluded), and of each
    optimizer step."""

    def __init__(self):
        self.epoch_seconds, self.start = [], None
        self.step_seconds, self.step_start = [], None

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epoch_seconds.append(time.perf_counter() - self.start)

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds.append(time.perf_counter() - self.step_start)

    def steps(self, batch_size):
        """Training rate with compilation apart: steps over three times the median step are taken as compiling
        (torch.compile compiles on the first step and again for new shapes); their time above the median is
        compile seconds, and the rate counts every step at its time less that."""
        median = statistics.median(self.step_seconds)
        compiling = [t for t in self.step_seconds if t > 3 * median]
        compile_seconds = sum(t - median for t in compiling)
        steady = sum(self.step_seconds) - compile_seconds
        return {"steps": len(self.step_seconds), "step_seconds_total": sum(self.step_seconds),
                "compile_seconds": compile_seconds, "compiling_steps": len(compiling),
                "steady_samples_per_second": len(self.step_seconds) * batch_size / steady}


def squad_normalize(s):
    """SQuAD v1.1's official answer normalisation (evaluate-v1.1.py)."""
    import re
    import string

    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(prediction, ground_truth):
    """SQuAD v1.1's official token-overlap F1."""
    from collections import Counter

    prediction_tokens = squad_normalize(prediction).split()
    ground_truth_tokens = squad_normalize(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_evaluate(examples, predictions):
    """Exact match and F1 in percent, the maximum over each question's gold answers; unanswered scores 0."""
    exact = f1 = 0.0
    for example in examples:
        if example["id"] not in predictions:
            continue
        golds = [a["text"] for a in example["answers"]]
        prediction = predictions[example["id"]]
        exact += max(float(squad_normalize(prediction) == squad_normalize(g)) for g in golds)
        f1 += max(squad_f1(prediction, g) for g in golds)
    return {"exact_match": 100.0 * exact / len(examples), "f1": 100.0 * f1 / len(examples)}


def squad_v2_evaluate(examples, predictions):
    """SQuAD v2.0's evaluate-v2.0.py algorithm (no null-odds file): gold answers that normalise to nothing are
    dropped, an unanswerable question's gold is "", and an empty prediction or gold scores 1 only against an
    empty other; scores are in percent over the predicted questions, overall and split into questions with
    answers (HasAns) and without (NoAns)."""
    def tokens(s):
        return squad_normalize(s).split() if s else []

    def exact(gold, prediction):
        return float(squad_normalize(gold) == squad_normalize(prediction))

    def f1(gold, prediction):
        gold_tokens, predicted_tokens = tokens(gold), tokens(prediction)
        if not gold_tokens or not predicted_tokens:
            return float(gold_tokens == predicted_tokens)
        return float(squad_f1(prediction, gold))

    scores = {}
    for example in examples:
        if example["id"] not in predictions:
            continue
        golds = [a["text"] for a in example["answers"] if squad_normalize(a["text"])] or [""]
        prediction = predictions[example["id"]]
        scores[example["id"]] = (max(exact(g, prediction) for g in golds), max(f1(g, prediction) for g in golds),
                                 bool(example["answers"]))

    def totals(chosen):
        return (100.0 * sum(e for e, _, _ in chosen) / len(chosen), 100.0 * sum(f for _, f, _ in chosen) / len(chosen))

    out = {}
    groups = [("", list(scores.values())), ("has_answer_", [v for v in scores.values() if v[2]]),
              ("no_answer_", [v for v in scores.values() if not v[2]])]
    for prefix, chosen in groups:
        if chosen:
            out[prefix + "exact_match"], out[prefix + "f1"] = totals(chosen)
            out[prefix + "total"] = float(len(chosen))
    return out
