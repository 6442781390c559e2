#!/usr/bin/env python3
"""MRPC (or another GLUE task) with the toolkit and with PyTorch + transformers, same recipe, same machine.

Runs `finetune` (release build) and scripts/reference/reference_glue.py for each seed, interleaved, then prints and writes
a markdown table: dev metrics, training samples/s and tokens/s (real tokens, padding excluded), seconds per
epoch of training, inference samples/s on dev (the toolkit's `finetune predict`, PyTorch's `Trainer.predict`),
peak resident memory. With --with-bf16, the toolkit also runs with `--precision bf16` (training and inference) and
PyTorch under bf16 autocast (its mixed-precision mode). --toolkit-only leaves PyTorch out (accuracy over seeds).
Arguments it does not know (say `--epochs 1`) go to both sides.

    swift build -c release
    ~/bertkit-venv/bin/python scripts/bench/benchmark_glue.py --task mrpc --seeds 1 2 3
    ~/bertkit-venv/bin/python scripts/bench/benchmark_glue.py --task mrpc --seeds 42 --with-bf16 --epochs 1
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def peak_rss_mb(stderr):
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(match.group(1)) / 1024 if match else float("nan")


FINETUNE = str(ROOT / ".build/release/finetune")


def run_toolkit(task, seed, extra, out, precision="fp32"):
    db = out / "glue.db"
    command = ["/usr/bin/time", "-v", FINETUNE, "--task", task, "--seed", str(seed),
               "--db", str(db), "--output-dir", str(out / "runs"), "--precision", precision] + extra
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stdout + done.stderr)
    log = done.stdout
    run_id = int(re.search(r"^run (\d+):", log, re.M).group(1))
    rate = float(re.findall(r"([\d.]+) samples/s", log)[-1])
    best = re.search(r"completed in (\d+) s: best (.*) at step", log)
    spec = json.loads((ROOT / "Tasks" / f"{task}.json").read_text())
    final_line = [l for l in log.splitlines() if l.strip().startswith("dev at step")][-1]
    final = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.-]+)", final_line.split(":", 1)[1])}
    examples = int(re.search(r"(\d+) training and", log).group(1))
    split = spec["splits"]["dev"]
    predict = subprocess.run([FINETUNE, "predict", "--model", str(out / "runs" / f"{run_id}-{task}" / "best"),
                              "--task", task, "--split", "dev", "--input", str(ROOT / "Tasks" / spec["dataDirectory"] / split["file"]),
                              "--output", str(out / "predictions-dev.tsv"), "--precision", precision], cwd=ROOT, capture_output=True, text=True)
    if predict.returncode != 0:
        sys.exit(predict.stdout + predict.stderr)
    inference = float(re.search(r"([\d.]+) examples/s", predict.stdout).group(1))
    return {"system": f"bertkit {precision}", "seed": seed, "run": run_id, "final": final, "samples_per_second": rate,
            "epoch_seconds": examples / rate, "wall_seconds": float(best.group(1)), "peak_rss_mb": peak_rss_mb(done.stderr),
            "inference_samples_per_second": inference, "examples": examples}


def run_reference(task, seed, python, extra, bf16=False):
    command = ["/usr/bin/time", "-v", python, str(ROOT / "scripts/reference/reference_glue.py"), "--task", task,
               "--seeds", str(seed)] + extra + (["--bf16"] if bf16 else [])
    start = time.time()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stdout + done.stderr)
    result = json.loads([l for l in done.stdout.splitlines() if l.startswith("{")][-1])
    epoch = statistics.mean(result["epoch_seconds"])
    return {"system": f"PyTorch {result['torch']}" + (" bf16 autocast" if bf16 else ""), "seed": seed,
            "final": result["final"], "samples_per_second": result["train_examples_per_epoch"] / epoch,
            "epoch_seconds": epoch, "wall_seconds": time.time() - start, "peak_rss_mb": peak_rss_mb(done.stderr),
            "inference_samples_per_second": result["inference_samples_per_second"],
            "examples": result["train_examples_per_epoch"], "tokens": result["train_tokens_per_epoch"]}


def main():
    global FINETUNE
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--python", default=sys.executable, help="Python with torch and transformers")
    parser.add_argument("--output", default=str(ROOT / "benchmarks"))
    parser.add_argument("--with-bf16", action="store_true",
                        help="also run the toolkit with --precision bf16 and PyTorch under bf16 autocast")
    parser.add_argument("--toolkit-only", action="store_true", help="run the toolkit only, not PyTorch")
    parser.add_argument("--finetune", default=FINETUNE,
                        help="the toolkit's binary (a copy keeps a long run safe from rebuilds meanwhile)")
    args, extra = parser.parse_known_args()
    FINETUNE = args.finetune
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        runners = [lambda: run_toolkit(args.task, seed, extra, out)]
        if args.with_bf16:
            runners.append(lambda: run_toolkit(args.task, seed, extra, out, precision="bf16"))
        if not args.toolkit_only:
            runners.append(lambda: run_reference(args.task, seed, args.python, extra))
            if args.with_bf16:
                runners.append(lambda: run_reference(args.task, seed, args.python, extra, bf16=True))
        for runner in runners:
            row = runner()
            rows.append(row)
            print(json.dumps(row), flush=True)

    metrics = json.loads((ROOT / "Tasks" / f"{args.task}.json").read_text())["metrics"]
    # Both sides tokenise identically (a test checks it), so the reference's token count serves the toolkit too.
    tokens_per_example = next((r["tokens"] / r["examples"] for r in rows if "tokens" in r), float("nan"))
    lines = [f"| system | seed | " + " | ".join(f"dev {m}" for m in metrics) +
             " | train samples/s | train tokens/s | s per epoch (training) | inference samples/s | wall s | peak RSS MB |",
             "|---|---:|" + "---:|" * (len(metrics) + 6)]
    for row in rows:
        lines.append(f"| {row['system']} | {row['seed']} | " + " | ".join(f"{row['final'][m]:.4f}" for m in metrics) +
                     f" | {row['samples_per_second']:.1f} | {row['samples_per_second'] * tokens_per_example:.0f} | {row['epoch_seconds']:.0f} |"
                     f" {row['inference_samples_per_second']:.0f} | {row['wall_seconds']:.0f} | {row['peak_rss_mb']:.0f} |")
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        def ms(values):
            return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{values[0]:.4f}"
        rate = statistics.mean(r['samples_per_second'] for r in mine)
        lines.append(f"| **{system} mean ± sd** | | " + " | ".join(ms([r['final'][m] for r in mine]) for m in metrics) +
                     f" | {rate:.1f} | {rate * tokens_per_example:.0f} | "
                     f"{statistics.mean(r['epoch_seconds'] for r in mine):.0f} | {statistics.mean(r['inference_samples_per_second'] for r in mine):.0f} | "
                     f"{statistics.mean(r['wall_seconds'] for r in mine):.0f} | {max(r['peak_rss_mb'] for r in mine):.0f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    (out / f"glue-{args.task}{'-toolkit' if args.toolkit_only else ''}.md").write_text(table)


if __name__ == "__main__":
    main()
