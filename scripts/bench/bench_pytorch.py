#!/usr/bin/env python3
"""PyTorch + transformers side of `swift run -c release benchmark`: encoder throughput on the same machine.

Prints one JSON object. Run in a venv outside the repository:
    ~/bertkit-venv/bin/python scripts/bench/bench_pytorch.py --model models/all-MiniLM-L6-v2 --batch 32 --length 128
    ~/bertkit-venv/bin/python scripts/bench/bench_pytorch.py --shape base --batch 8 --length 512

Measures fp32, then the same steps under bf16 autocast (torch.autocast("cpu", torch.bfloat16)), PyTorch's
mixed-precision mode on CPUs.
"""
import argparse
import gc
import json
import re
import time

import torch
import transformers
from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel


def timed(step, seconds):
    """Median time of `step` over repeated calls, after two warm-up calls."""
    step(), step()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def reset_peak_memory():
    """Starts a new peak resident set (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_memory_mb():
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="a checkpoint folder (with --shape model)")
    parser.add_argument("--shape", choices=["model", "base"], default="model",
                        help="model: the checkpoint; base: BERT-base (12 layers, hidden 768) with random weights")
    parser.add_argument("--family", choices=["bert", "roberta"], default="bert", help="with --shape base: whose base model")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-bf16", action="store_true", help="measure fp32 only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    if args.shape == "model":
        model = BertModel.from_pretrained(args.model)
    else:
        model = RobertaModel(RobertaConfig()) if args.family == "roberta" else BertModel(BertConfig())
    config = model.config
    ids = torch.randint(1000, config.vocab_size, (args.batch, args.length))
    types = torch.zeros_like(ids)  # ids from 1000 on: never RoBERTa's padding id
    mask = torch.ones_like(ids)

    model.eval()

    def forward():
        with torch.no_grad():
            model(input_ids=ids, token_type_ids=types, attention_mask=mask)

    model.train()
    weights = torch.randn(args.batch, args.length, config.hidden_size)

    def forward_backward():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
        loss = (out.last_hidden_state * weights).sum() + out.pooler_output.sum()
        loss.backward()
        model.zero_grad(set_to_none=False)

    # Peak memory of each precision's forward and training steps, the parameters and gradients included (the
    # fp32 phase makes the gradients; the bf16 phase starts with them resident).
    model.eval()
    t_forward = timed(forward, args.seconds)
    model.train()
    t_train = timed(forward_backward, args.seconds)
    fp32_peak = peak_memory_mb()
    tokens = args.batch * args.length
    result = {
        "torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(),
        "forward_seconds": t_forward, "forward_backward_seconds": t_train, "peak_rss_mb": fp32_peak,
        "forward_tokens_per_second": tokens / t_forward, "forward_backward_tokens_per_second": tokens / t_train,
    }
    if not args.no_bf16:
        reset_peak_memory()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model.eval()
            b_forward = timed(forward, args.seconds)
            model.train()
            b_train = timed(forward_backward, args.seconds)
        result.update({"bf16_forward_seconds": b_forward, "bf16_forward_backward_seconds": b_train,
                       "bf16_peak_rss_mb": peak_memory_mb()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
