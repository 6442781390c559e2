"""Helpers shared by the scripts that measure the toolkit against other systems (no PyTorch import here: a
benchmark may run the toolkit before it loads PyTorch)."""
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
FINETUNE = ROOT / ".build" / "release" / "finetune"


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def finetune_predict(model, records, extra=(), repeats=1, warm_up=False, threads=2):
    """`finetune predict` over JSONL records as a user runs it, `repeats` times (after one untimed run with
    `warm_up`): its results, and per timed run the whole command's seconds and the model's as it reports them."""
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "in.jsonl", Path(d) / "out.jsonl"
        src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        walls, models = [], []
        for _ in range(repeats + (1 if warm_up else 0)):
            started = time.perf_counter()
            run = subprocess.run([str(FINETUNE), "predict", "--model", str(model), "--input", str(src), "--output", str(out)]
                                 + list(extra), capture_output=True, text=True, check=True,
                                 env={**os.environ, "BERTKIT_THREADS": str(threads)})
            walls.append(time.perf_counter() - started)
            models.append(float(re.search(r"model: ([0-9.]+) s", run.stdout).group(1)))
        results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        skip = 1 if warm_up else 0
        return results, walls[skip:], models[skip:]


def write_table(text, path):
    """Prints a benchmark's table and writes it to `path`."""
    print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
