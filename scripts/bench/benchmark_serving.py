"""Load benchmark of `finetune serve` against the Python servers a user would deploy on the same fine-tuned model
(scripts/bench/python_server.py): throughput, p50 and p99 latency under wrk at several concurrencies, on MRPC dev
pairs and CoNLL-2003 dev sentences (one input per request, as an API client sends them), with each server's task
accuracy measured through its own HTTP answers. Systems take turns, one at a time on the machine; the table goes to
standard output and to --out.

    ~/bertkit-venv/bin/python scripts/bench/benchmark_serving.py --mrpc /work/exported/mrpc --conll /work/exported/conll \\
        --data-dir ../shared/data --seconds 10

Needs: the release build (`swift build -c release`), wrk (Debian's), and in the venv torch, transformers,
onnxruntime, onnx, fastapi, uvicorn (for the ONNX export and the Python servers).
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--mrpc", required=True, help="a fine-tuned MRPC model folder (finetune export)")
    p.add_argument("--conll", help="a fine-tuned CoNLL-2003 model folder")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--rounds", type=int, default=1, help="rounds of all systems in turn (the spread between rounds)")
    p.add_argument("--accuracy-examples", type=int, default=1000)
    p.add_argument("--systems", nargs="+", help="only these systems (names as in the table)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "serving.md"))
    return p.parse_args()


def mrpc_examples(data_dir):
    rows = (ROOT / "Tasks" / "data" / "glue" / "MRPC" / "dev.tsv").read_text(encoding="utf-8-sig").splitlines()[1:]
    return [({"text": r.split("\t")[3], "text_pair": r.split("\t")[4]}, int(r.split("\t")[0])) for r in rows]


def conll_examples(data_dir):
    """Dev sentences as space-joined text, with their gold entities as (type, start, end) character spans."""
    sentences, words, tags = [], [], []
    for line in (Path(data_dir) / "conll2003" / "valid.txt").read_text().splitlines() + [""]:
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        columns = line.split()
        words.append(columns[0])
        tags.append(columns[-1])
    examples = []
    for words, tags in sentences:
        spans, at, starts = [], 0, []
        for w in words:
            starts.append(at)
            at += len(w) + 1
        previous = "O"
        for w, tag in enumerate(tags):
            kind = tag[2:]
            if tag != "O" and tag.startswith("I-") and previous[2:] == kind and spans:
                spans[-1] = (kind, spans[-1][1], starts[w] + len(words[w]))
            elif tag != "O":
                spans.append((kind, starts[w], starts[w] + len(words[w])))
            previous = tag
        examples.append((" ".join(words), set(spans)))
    return examples


def post(port, inputs):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=json.dumps({"inputs": inputs}).encode(),
                                     headers={"Content-Type": "application/json"})
    with NO_PROXY.open(request, timeout=120) as response:
        return json.loads(response.read())


def accuracy(task, port, examples):
    if task == "mrpc":
        right = sum((post(port, [x])[0]["label"] == "equivalent") == (gold == 1) for x, gold in examples)
        return f"accuracy {right / len(examples):.4f}"
    tp = fp = fn = 0
    for text, gold in examples:
        found = {(e["entity_group"], e["start"], e["end"]) for e in post(port, [text])[0]["entities"]}
        tp, fp, fn = tp + len(found & gold), fp + len(found - gold), fn + len(gold - found)
    return f"entity F1 {2 * tp / (2 * tp + fp + fn):.4f}"


def onnx_exports(folder, directory):
    """The model exported by torch.onnx.export, and quantised by onnxruntime's quantize_dynamic (int8)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer
    config = json.loads((Path(folder) / "config.json").read_text())
    kind = AutoModelForTokenClassification if "TokenClassification" in config["architectures"][0] else AutoModelForSequenceClassification
    model = kind.from_pretrained(folder).eval()
    sample = AutoTokenizer.from_pretrained(folder)(["a text", "another text here"], padding=True, return_tensors="pt")
    fp32, int8 = Path(directory) / "model.onnx", Path(directory) / "model-int8.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    torch.onnx.export(model, tuple(sample[k] for k in names), str(fp32), input_names=names, output_names=["logits"],
                      dynamic_axes={k: {0: "batch", 1: "length"} for k in names}, opset_version=17, dynamo=False)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return str(fp32), str(int8)


def systems(folder, onnx):
    bertkit = str(ROOT / ".build" / "release" / "finetune")
    server = str(ROOT / "scripts" / "bench" / "python_server.py")
    ort = [PYTHON, server, "--backend", "ort", "--model", folder]
    return {
        "bertkit fp32": lambda port: [bertkit, "serve", "--model", folder, "--port", str(port)],
        "bertkit int8": lambda port: [bertkit, "serve", "--model", folder, "--port", str(port), "--precision", "int8"],
        "FastAPI+ORT fp32": lambda port: ort + ["--onnx", onnx[0], "--port", str(port)],
        "FastAPI+ORT int8": lambda port: ort + ["--onnx", onnx[1], "--port", str(port)],
        "FastAPI+ORT fp32 batcher": lambda port: ort + ["--onnx", onnx[0], "--port", str(port), "--batcher"],
        "FastAPI+ORT int8 batcher": lambda port: ort + ["--onnx", onnx[1], "--port", str(port), "--batcher"],
        "FastAPI+pipeline fp32": lambda port: [PYTHON, server, "--backend", "pipeline", "--model", folder, "--port", str(port)],
    }


def start(command, port):
    env = dict(os.environ, NO_PROXY="*", no_proxy="*")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    for _ in range(600):
        try:
            with NO_PROXY.open(f"http://127.0.0.1:{port}/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command} did not start: {process.stderr.read().decode()[-2000:]}")


def resident_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wrk(port, bodies, concurrency, seconds):
    script = Path(bodies).with_suffix(".lua")
    out = subprocess.run(["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "60s",
                          "-s", str(script), f"http://127.0.0.1:{port}/predict"], capture_output=True, text=True,
                         env=dict(os.environ, BODIES=bodies)).stdout

    def duration(text):
        value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
        return float(value) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[unit]
    p50 = duration(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = duration(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return rate, p50, p99, failures


LUA = """
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local counter = 0
function setup(thread) counter = counter + 1; thread:set("offset", counter * 997) end
function init(args) n = offset end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end
"""


def main():
    args = parse()
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    tasks = {"mrpc": (args.mrpc, mrpc_examples(args.data_dir))}
    if args.conll:
        tasks["conll2003"] = (args.conll, conll_examples(args.data_dir))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        prepared = {}
        for task, (folder, examples) in tasks.items():
            directory = Path(work) / task
            directory.mkdir()
            bodies = directory / "bodies.jsonl"
            inputs = [x for x, _ in examples] if task == "mrpc" else [text for text, _ in examples]
            bodies.write_text("".join(json.dumps({"inputs": [i]}) + "\n" for i in inputs))
            bodies.with_suffix(".lua").write_text(LUA)
            prepared[task] = (folder, examples[:args.accuracy_examples], str(bodies), systems(folder, onnx_exports(folder, directory)))
        port = 18500
        for round_ in range(args.rounds):
            for task, (folder, examples, bodies, commands) in prepared.items():
                for name, command in commands.items():
                    if args.systems and name not in args.systems:
                        continue
                    port += 1
                    process = start(command(port), port)
                    try:
                        score = accuracy(task, port, examples)
                        wrk(port, bodies, 8, 3)  # warm-up
                        for c in args.concurrency:
                            rate, p50, p99, failures = wrk(port, bodies, c, args.seconds)
                            rows.append(dict(round=round_, task=task, system=name, score=score, c=c, rate=rate, p50=p50, p99=p99,
                                             failures=failures, rss=resident_mb(process.pid)))
                            print(f"{task} {name} c={c}: {rate:.1f} req/s p50 {p50:.1f} ms p99 {p99:.1f} ms failures {failures} ({score})",
                                  flush=True)
                    finally:
                        process.send_signal(signal.SIGTERM)
                        try:
                            process.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            process.kill()
    write(rows, args, cpu)


def write(rows, args, cpu):
    lines = [f"# Serving: `finetune serve` against Python servers on the same model ({cpu}, 2 cores)", "",
             f"`{' '.join(['scripts/bench/benchmark_serving.py'] + sys.argv[1:])}`; wrk, {args.seconds} s per cell, one input per request; "
             f"{args.rounds} round(s), systems in turn. Ratio: throughput over the best Python server's at the same task and concurrency "
             "(median over rounds).", "",
             "| task | system | accuracy (through HTTP) | concurrency | req/s (median, min-max) | ratio | p50 ms | p99 ms | failed requests | resident MB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    keys = []
    for r in rows:
        key = (r["task"], r["system"], r["c"])
        if key not in keys:
            keys.append(key)
    for task, system, c in keys:
        cell = [r for r in rows if (r["task"], r["system"], r["c"]) == (task, system, c)]
        python = [statistics.median(x["rate"] for x in rows if (x["task"], x["system"], x["c"]) == (task, s, c))
                  for s in {x["system"] for x in rows if x["task"] == task and not x["system"].startswith("bertkit")}]
        rate = statistics.median(r["rate"] for r in cell)
        ratio = f"{rate / max(python):.2f}" if python else "-"
        lines.append(f"| {task} | {system} | {cell[0]['score']} | {c} | {rate:.1f} ({min(r['rate'] for r in cell):.1f}-{max(r['rate'] for r in cell):.1f}) "
                     f"| {ratio} | {statistics.median(r['p50'] for r in cell):.1f} | {statistics.median(r['p99'] for r in cell):.1f} "
                     f"| {sum(r['failures'] for r in cell)} | {max(r['rss'] for r in cell):.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
