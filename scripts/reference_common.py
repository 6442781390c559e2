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
