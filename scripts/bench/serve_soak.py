"""`finetune serve` held under load, overloaded, fed bad requests and stopped under load: the measurements of
RELIABILITY.md's "Serving" section. Reference tooling (Python clients and wrk); the server is the release build.

    ~/bertkit-venv/bin/python scripts/bench/serve_soak.py --model /work/exported/mrpc --minutes 30

Phases, each against a fresh server on 127.0.0.1 with one MRPC dev pair per request:
  peak      wrk at concurrency 32 for 15 s: the requests/s the server sustains.
  soak      paced clients offering --fraction of the peak for --minutes (open loop: a request every 1/rate s,
            whatever the answers); per window: achieved requests/s, p50/p99, failures, and the server's resident
            memory.
  overload  wrk at concurrency 640, each connection pausing between requests so that together they offer 10x the
            peak, against --max-concurrent-requests 64, with a probe client sending one request every 50 ms: the
            share of 429s, the admitted throughput, the probe's admitted latency, the server alive after.
  bad       10,000 requests: valid bodies cut, bytes flipped, types changed, fields renamed: every status counted;
            no 5xx and the server alive is the pass.
  drain     16 clients asking in a loop; SIGTERM after 5 s: every request whose answer began arrives whole
            (client 200s = the server's logged 200s), exit status 0, the drain's duration.
"""
import argparse
import http.client
import json
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BINARY = str(ROOT / ".build" / "release" / "finetune")


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--fraction", type=float, default=0.8)
    p.add_argument("--window", type=float, default=300, help="seconds per soak row")
    p.add_argument("--phases", nargs="+", default=["soak", "overload", "bad", "drain"])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "serve-soak.md"))
    return p.parse_args()


def bodies():
    rows = (ROOT / "Tasks" / "data" / "glue" / "MRPC" / "dev.tsv").read_text(encoding="utf-8-sig").splitlines()[1:]
    return [json.dumps({"inputs": [{"text": r.split("\t")[3], "text_pair": r.split("\t")[4]}]}).encode() for r in rows]


class Server:
    def __init__(self, args, port, *extra, log=None):
        self.port = port
        self.log = log
        command = [BINARY, "serve", "--model", args.model, "--precision", args.precision, "--port", str(port), *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=open(log, "w") if log else subprocess.DEVNULL, text=True)
        self.banner = self.process.stdout.readline().strip()

    def resident_mb(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        return self.process.returncode


def call(connection, body):
    """One request on a keep-alive connection: (status, seconds), status 0 when the connection failed."""
    started = time.perf_counter()
    try:
        connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    except (OSError, http.client.HTTPException):
        connection.close()
        return 0, time.perf_counter() - started


def wrk(port, concurrency, seconds, script):
    """Requests/s, requests, and answers other than 2xx."""
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "30s", "-s", script,
                          f"http://127.0.0.1:{port}/predict"], capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return rate, total, int(bad.group(1)) if bad else 0


def percentile(values, q):
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def main():
    args = parse()
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    payloads = bodies()
    work = tempfile.mkdtemp()
    script = Path(work) / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ' + json.dumps(payloads[0].decode()) + "\n")
    lines = [f"# `finetune serve` under load ({cpu}, 2 cores, {args.precision}, {Path(args.model).name})", "",
             f"`{' '.join(['scripts/bench/serve_soak.py'] + sys.argv[1:])}`", ""]

    # Peak.
    server = Server(args, 18601)
    wrk(18601, 8, 3, str(script))
    peak, _, _ = wrk(18601, 32, 15, str(script))
    lines += [f"Peak (wrk, concurrency 32, 15 s): {peak:.1f} requests/s. {server.banner}", ""]
    print(lines[-2], flush=True)

    server.stop()
    if "soak" in args.phases:
        lines += soak(args, peak, payloads)
    if "overload" in args.phases:
        lines += overload(args, peak, payloads, work)
    if "bad" in args.phases:
        lines += bad(args, payloads)
    if "drain" in args.phases:
        lines += drain(args, payloads, work)
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


def soak(args, peak, payloads):
    server = Server(args, 18601)
    rate = args.fraction * peak
    clients = 16
    lines, results, lock, stop = [], [], threading.Lock(), time.monotonic() + args.minutes * 60
    start = time.monotonic()

    def paced(k):
        connection = http.client.HTTPConnection("127.0.0.1", 18601, timeout=30)
        interval = clients / rate
        next_at = start + k * interval / clients
        i = k
        while next_at < stop:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            status, seconds = call(connection, payloads[i % len(payloads)])
            if status == 0:
                connection = http.client.HTTPConnection("127.0.0.1", 18601, timeout=30)
            with lock:
                results.append((next_at - start, status, seconds))
            i += clients
            next_at += interval

    memory = []
    threads = [threading.Thread(target=paced, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        memory.append((time.monotonic() - start, server.resident_mb()))
        time.sleep(10)
    for t in threads:
        t.join()
    lines += [f"Soak: {clients} paced clients offering {rate:.1f} requests/s ({args.fraction:.0%} of the peak) for {args.minutes:g} min.", "",
              "| minutes | requests | achieved req/s | p50 ms | p99 ms | failed | resident MB (start-end of window) |", "|---|---:|---:|---:|---:|---:|---|"]
    for w in range(int(args.minutes * 60 // args.window)):
        lo, hi = w * args.window, (w + 1) * args.window
        window = [r for r in results if lo <= r[0] < hi]
        ok = [r[2] for r in window if r[1] == 200]
        rss = [m for t, m in memory if lo <= t < hi] or [0]
        lines.append(f"| {lo / 60:g}-{hi / 60:g} | {len(window)} | {len(window) / args.window:.1f} | {percentile(ok, 0.5):.1f} | "
                     f"{percentile(ok, 0.99):.1f} | {len(window) - len(ok)} | {rss[0]:.0f}-{rss[-1]:.0f} |")
        print(lines[-1], flush=True)
    failed = sum(1 for r in results if r[1] != 200)
    lines += ["", f"In all: {len(results)} requests, {failed} not answered 200; resident memory {memory[0][1]:.0f} MB at the start, "
              f"{max(m for _, m in memory):.0f} MB at most, {memory[-1][1]:.0f} MB at the end.", ""]
    server.stop()
    return lines


def overload(args, peak, payloads, work):
    server = Server(args, 18602, "--max-concurrent-requests", "64")
    # Each of 640 connections pauses between its requests, so that together they offer 10x the peak.
    paced = Path(work) / "paced.lua"
    paced.write_text((Path(work) / "post.lua").read_text() + f"function delay() return {640 * 1000 / (10 * peak):.0f} end\n")
    probe, probe_stop = [], threading.Event()

    def probing():
        connection = http.client.HTTPConnection("127.0.0.1", 18602, timeout=30)
        while not probe_stop.is_set():
            status, seconds = call(connection, payloads[1])
            if status == 0:
                connection = http.client.HTTPConnection("127.0.0.1", 18602, timeout=30)
            probe.append((status, seconds))
            time.sleep(0.05)
    prober = threading.Thread(target=probing)
    prober.start()
    _, total, shed = wrk(18602, 640, 30, str(paced))
    probe_stop.set()
    prober.join()
    admitted = [s for status, s in probe if status == 200]
    alive = server.process.poll() is None and call(http.client.HTTPConnection("127.0.0.1", 18602, timeout=30), payloads[2])[0] == 200
    lines = [f"Overload: wrk at concurrency 640 for 30 s, paced to offer {10 * peak:.0f} requests/s (10x the peak), against "
             f"--max-concurrent-requests 64: {total / 30:.0f} requests/s sent, {shed} of {total} answered 429 ({shed / max(total, 1):.0%}), "
             f"{(total - shed) / 30:.0f} requests/s admitted and answered 200. "
              f"Probe (one request every 50 ms): {len(admitted)} of {len(probe)} admitted, p50 {percentile(admitted, 0.5):.0f} ms, "
              f"p99 {percentile(admitted, 0.99):.0f} ms, slowest {max(admitted, default=0) * 1000:.0f} ms. Server alive and answering after: {alive}; "
              f"resident {server.resident_mb():.0f} MB.", ""]
    print(lines[-2], flush=True)
    server.stop()
    return lines


def bad(args, payloads):
    server = Server(args, 18603)
    random.seed(7)
    statuses = {}
    connection = http.client.HTTPConnection("127.0.0.1", 18603, timeout=30)
    for n in range(10000):
        body = bytearray(random.choice(payloads))
        kind = n % 5
        if kind == 0:
            body = body[:random.randrange(len(body))]
        elif kind == 1:
            for _ in range(random.randint(1, 4)):
                body[random.randrange(len(body))] = random.randrange(256)
        elif kind == 2:
            body = json.dumps({"inputs": random.choice([3, None, True, {"text": 5}, [[]], [{}], "", [""] * 2000])}).encode()
        elif kind == 3:
            body = body.replace(b'"inputs"', random.choice([b'"input"', b'"Inputs"', b'"inputs", "x": 1, "y"']))
        else:
            body = json.dumps({"inputs": [{"text": "a" * random.randint(0, 5000), "text_pair": random.choice(["b", "\u00e9\U0001F600", "\x00"])}],
                               "truncate": random.choice([True, False, 1, "yes"])}).encode()
        status, _ = call(connection, bytes(body))
        if status == 0:
            connection = http.client.HTTPConnection("127.0.0.1", 18603, timeout=30)
        statuses[status] = statuses.get(status, 0) + 1
    alive = call(http.client.HTTPConnection("127.0.0.1", 18603, timeout=30), payloads[0])[0] == 200
    lines = [f"Bad requests: 10,000 (cut, bytes flipped, wrong types, renamed fields, long or odd texts, bad truncate): statuses "
              + ", ".join(f"{s}: {c}" for s, c in sorted(statuses.items())) + f"; server alive after: {alive}.", ""]
    print(lines[-2], flush=True)
    server.stop()
    return lines


def drain(args, payloads, work):
    log = str(Path(work) / "drain.log")
    lock = threading.Lock()
    server = Server(args, 18604, "--log-requests", log=log)
    answered, refused, broken = [0], [0], [0]

    def asking(k):
        connection = http.client.HTTPConnection("127.0.0.1", 18604, timeout=60)
        i = k
        while True:
            try:
                connection.request("POST", "/predict", payloads[i % len(payloads)], {"Content-Type": "application/json"})
            except OSError:
                with lock:
                    refused[0] += 1
                return
            try:
                response = connection.getresponse()
                response.read()
                with lock:
                    answered[0] += response.status == 200
                if response.getheader("Connection", "").lower() == "close":
                    connection = http.client.HTTPConnection("127.0.0.1", 18604, timeout=60)
            except (OSError, http.client.HTTPException):
                # Sent, and no answer: lost unless the server never read it (closed before reading: it logs nothing).
                with lock:
                    broken[0] += 1
                connection = http.client.HTTPConnection("127.0.0.1", 18604, timeout=60)
            i += 16
    askers = [threading.Thread(target=asking, args=(k,), daemon=True) for k in range(16)]
    for t in askers:
        t.start()
    time.sleep(5)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    status = server.process.wait(timeout=60)
    drained = time.monotonic() - signalled
    for t in askers:
        t.join(timeout=10)
    logged = sum(1 for l in open(log) if "status=200" in l)
    lines = [f"Drain: 16 clients in a loop, SIGTERM after 5 s: exit status {status} after {drained:.2f} s; the clients received "
              f"{answered[0]} answers 200 and the server logged {logged} answered; {broken[0]} requests sent on connections the server "
              f"closed without reading them, {refused[0]} connections refused after the signal.", ""]
    print(lines[-2], flush=True)
    return lines


if __name__ == "__main__":
    main()
