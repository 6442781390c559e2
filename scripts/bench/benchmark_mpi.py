#!/usr/bin/env python3
"""Data-parallel training on this machine: `mpirun -np 2` (one thread each; gradients summed through shared
memory, and through MPI_Allreduce alone) against one process with one thread and one process with two threads, on
MRPC with MiniLM and on BERT-base-shaped 8 x 128 (SQuAD windows of 128 tokens, random weights). Step times come
from results.db (seconds between logged steps, first steps left out); the gradient sum's time per step from the
`timing` rows a run on several processes logs. The setups take turns, for several rounds: this machine's speed
changes between runs (the same run's step time has varied by a third), and a ratio is taken within a round.
Prints a table and writes benchmarks/mpi.md.

    python3 scripts/bench/benchmark_mpi.py [--steps 40] [--base-steps 10] [--rounds 3] [--workloads mrpc bert-base]
"""
import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bench_common import FINETUNE, ROOT, cpu_name, write_table

MPIRUN = ["mpirun", "--allow-run-as-root", "-np", "2"]


def random_bert_base(folder):
    """A BERT-base folder (12 layers, hidden 768, MiniLM's vocabulary) with weights drawn as BERT initialises them."""
    folder.mkdir(parents=True, exist_ok=True)
    minilm = ROOT / "models" / "all-MiniLM-L6-v2"
    config = json.loads((minilm / "config.json").read_text())
    config.update(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    (folder / "config.json").write_text(json.dumps(config))
    for name in ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        if (minilm / name).exists():
            shutil.copy(minilm / name, folder / name)
    rng = np.random.default_rng(0)
    h, ff, v = 768, 3072, config["vocab_size"]
    shapes = {"embeddings.word_embeddings.weight": (v, h), "embeddings.position_embeddings.weight": (512, h),
              "embeddings.token_type_embeddings.weight": (2, h), "embeddings.LayerNorm.weight": (h,),
              "embeddings.LayerNorm.bias": (h,)}
    for l in range(12):
        p = f"encoder.layer.{l}."
        for m in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            shapes[p + m + ".weight"], shapes[p + m + ".bias"] = (h, h), (h,)
        shapes[p + "intermediate.dense.weight"], shapes[p + "intermediate.dense.bias"] = (ff, h), (ff,)
        shapes[p + "output.dense.weight"], shapes[p + "output.dense.bias"] = (h, ff), (h,)
        for n in ["attention.output.LayerNorm", "output.LayerNorm"]:
            shapes[p + n + ".weight"], shapes[p + n + ".bias"] = (h,), (h,)
    shapes["pooler.dense.weight"], shapes["pooler.dense.bias"] = (h, h), (h,)
    header, blobs, offset = {}, [], 0
    for name, shape in shapes.items():
        if name.endswith("LayerNorm.weight"):
            x = np.ones(shape, np.float32)
        elif name.endswith(".bias") or name.endswith("LayerNorm.bias"):
            x = np.zeros(shape, np.float32)
        else:
            x = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        data = x.tobytes()
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(folder / "model.safetensors", "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def run(launcher, threads, arguments, directory):
    """One run; its steps' seconds (first three left out), mean seconds of waiting for the slower process and of the
    gradient sum (or None, None), and final dev metrics."""
    db = directory / "results.db"
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    env.pop("BERTKIT_MPI_SHARED_MEMORY", None)
    if launcher and launcher[0].startswith("BERTKIT_"):
        variable, launcher = launcher[0], launcher[1:]
        env[variable.split("=")[0]] = variable.split("=")[1]
    command = launcher + [str(FINETUNE)] + arguments + ["--db", str(db), "--output-dir", str(directory / "runs"),
                                                        "--save-strategy", "no"]
    if threads:
        command += ["--threads", str(threads)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    with sqlite3.connect(db) as c:
        times = [row[0] for row in c.execute(
            "SELECT (julianday(time) - julianday(LAG(time) OVER (ORDER BY step))) * 86400 FROM metrics "
            "WHERE split = 'train' AND name = 'loss' ORDER BY step")][4:]
        timing = {name: [row[0] for row in c.execute(
            "SELECT value FROM metrics WHERE split = 'timing' AND name = ? AND step > 3", (name,))]
            for name in ("wait_seconds", "allreduce_seconds")}
        dev = dict(c.execute("SELECT name, value FROM metrics WHERE split = 'dev' AND step = (SELECT MAX(step) FROM metrics WHERE split = 'dev')"))
    shutil.rmtree(directory)
    wait, allreduce = (statistics.mean(v) if v else None for v in timing.values())
    return times, wait, allreduce, dev


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--base-steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", choices=["mrpc", "bert-base"], default=["mrpc", "bert-base"])
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "mpi.md"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    base = work / "bert-base-random"
    random_bert_base(base)
    # BERT-base's speed is the point, not its score: its final evaluation runs on one article only.
    squad = json.loads((ROOT / "Tasks" / "data" / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))
    squad["data"] = squad["data"][-1:]
    small_dev = work / "one-article.json"
    small_dev.write_text(json.dumps(squad), encoding="utf-8")
    workloads = [
        ("MRPC, MiniLM, batch 32", ["--task", "mrpc", "--max-steps", str(args.steps), "--batch-size", "32",
                                    "--eval-steps", str(args.steps)], 32, "f1"),
        ("BERT-base 8 x 128 (SQuAD windows)", ["--task", "squad-articles", "--model", str(base), "--max-length", "128",
                                               "--window-overlap", "32", "--max-steps", str(args.base_steps),
                                               "--batch-size", "8", "--eval-steps", "100000", "--eval-file", str(small_dev)], 8, None),
    ]
    setups = [("1 process, 1 thread", [], 1), ("1 process, 2 threads", [], 2),
              ("mpirun -np 2, 1 thread each", MPIRUN, None),
              ("mpirun -np 2, 1 thread each, MPI_Allreduce alone", ["BERTKIT_MPI_SHARED_MEMORY=0"] + MPIRUN, None)]
    lines = [f"# Data-parallel training on one machine ({cpu_name()}, 2 cores)", "",
             f"Command: `python3 scripts/bench/benchmark_mpi.py --rounds {args.rounds} --workloads {' '.join(args.workloads)}` (after `swift build -c release`); step "
             "times from results.db, the first three steps left out. The setups take turns, "
             f"{args.rounds} rounds; each figure is the median over the rounds of a round's mean step, with the "
             "rounds' range; a ratio is taken within each round against that round's one-thread run, then its median.", "",
             "| workload | setup | step s (range over rounds) | samples/s | vs 1 thread (range) | wait for the slower ms/step | gradient sum ms/step (share) | dev metric |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    two_threads = {}
    chosen = {"mrpc": workloads[0], "bert-base": workloads[1]}
    workloads = [chosen[w] for w in args.workloads]
    for name, arguments, batch, metric in workloads:
        rounds = [[run(launcher, threads, arguments, work / "run") for _, launcher, threads in setups] for _ in range(args.rounds)]
        for i, (label, launcher, threads) in enumerate(setups):
            means = [statistics.mean(r[i][0]) for r in rounds]
            ratios = [statistics.mean(r[0][0]) / statistics.mean(r[i][0]) for r in rounds]
            waits = [r[i][1] for r in rounds if r[i][1] is not None]
            sums = [r[i][2] for r in rounds if r[i][2] is not None]
            mean = statistics.median(means)
            if threads == 2:
                two_threads[name] = mean
            share = f"{statistics.median(sums) * 1000:.1f} ({100 * statistics.median(sums) / mean:.0f} %)" if sums else "–"
            wait = f"{statistics.median(waits) * 1000:.1f}" if waits else "–"
            dev = rounds[-1][i][3]
            lines.append(f"| {name} | {label} | {mean:.3f} ({min(means):.3f}–{max(means):.3f}) | {batch / mean:.1f} | "
                         f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f}) | {wait} | {share} | "
                         f"{f'{metric} {dev[metric]:.4f}' if metric else '–'} |")
    shutil.rmtree(work)
    if len(two_threads) == 2:
        lines += scaling_model(two_threads["MRPC, MiniLM, batch 32"], two_threads["BERT-base 8 x 128 (SQuAD windows)"])
    write_table("\n".join(lines) + "\n", Path(args.output))


def distinct_words(texts, per_batch, batches=200, seed=0):
    """Distinct lower-cased words in a batch of `per_batch` texts, on average: a stand-in for the word-embedding
    rows a batch touches (WordPiece splits some words, joins none)."""
    rng = np.random.default_rng(seed)
    counts = [len({w for i in rng.choice(len(texts), per_batch, replace=False) for w in texts[i].lower().split()})
              for _ in range(batches)]
    return statistics.mean(counts)


def scaling_model(minilm_step, base_step):
    """Step time and efficiency of N hosts, each computing what one host of this machine does at the measured
    per-host batch (the global batch grows with N), from the measured step with 2 threads and a ring allreduce
    over the network: 2 (N-1)/N x bytes / bandwidth + 2 (N-1) x latency."""
    mrpc = [line.split("\t") for line in (ROOT / "Tasks/data/glue/MRPC/train.tsv").read_text(encoding="utf-8-sig").splitlines()[1:]]
    squad = json.loads((ROOT / "Tasks/data/squad/dev-v1.1.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    models = [
        # name, measured step (2 threads), dense gradient floats, word table rows x width, distinct words per host batch
        ("MiniLM, MRPC batch 32 per host", minilm_step, 22_713_216 - 30522 * 384, (30522, 384),
         distinct_words([r[3] + " " + r[4] for r in mrpc if len(r) == 5], 32)),
        ("BERT-base, 8 x 128 per host", base_step, 109_482_240 - 30522 * 768, (30522, 768),
         distinct_words(contexts, 8)),
    ]
    latency, efficiency_of_line = 50e-6, 0.8
    out = ["", "## Scaling model", "",
           "Each host computes this machine's measured step (2 threads) on its own batch, so the global batch grows with "
           "the hosts; gradients are summed by a ring allreduce, not overlapped with the backward pass (the toolkit does "
           f"not overlap): 2 (N−1)/N × bytes / bandwidth + 2 (N−1) × {latency * 1e6:.0f} µs, at {efficiency_of_line:.0%} of "
           "the line rate. Bytes: the dense gradients plus the word-embedding rows some host wrote (a host's batch "
           "writes about as many rows as it has distinct words; N hosts write V (1 − e^(−N·u/V)) of the V rows).", "",
           "| model | network | hosts | gradient MB/step | allreduce ms | step ms | efficiency |", "|---|---|---:|---:|---:|---:|---:|"]
    largest = []
    for name, step, dense, (rows, width), u in models:
        for gbit in (10, 100):
            bandwidth = gbit / 8 * 1e9 * efficiency_of_line

            def cost(n):
                touched = rows * (1 - np.exp(-n * u / rows))
                size = 4 * (dense + touched * width)
                allreduce = 2 * (n - 1) / n * size / bandwidth + 2 * (n - 1) * latency
                return size, allreduce, step / (step + allreduce)
            for n in (8, 32, 128):
                size, allreduce, eff = cost(n)
                out.append(f"| {name} | {gbit} Gb/s | {n} | {size / 1e6:.0f} | {allreduce * 1000:.0f} | "
                           f"{(step + allreduce) * 1000:.0f} | {eff:.0%} |")
            n = 2
            while cost(n * 2)[2] >= 0.8 and n < 1 << 16:
                n *= 2
            largest.append(f"{name}, {gbit} Gb/s: " + (f"{n} hosts" if cost(2)[2] >= 0.8 else "none")
                           + f" (u = {u:.0f} distinct words per host batch)")
    out += ["", "Largest power-of-two cluster at ≥ 80 % efficiency: " + "; ".join(largest) + "."]
    return out


if __name__ == "__main__":
    main()
