"""Helpers shared by the PyTorch reference scripts (reference_glue.py, reference_ner.py)."""
import time

import torch
from transformers import TrainerCallback


class ListDataset(torch.utils.data.Dataset):
    """Already-tokenised examples, one dict per example."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class EpochTimer(TrainerCallback):
    """Wall time of each epoch's training steps (evaluation, which the Trainer runs after, excluded)."""

    def __init__(self):
        self.epoch_seconds, self.start = [], None

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epoch_seconds.append(time.perf_counter() - self.start)


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
