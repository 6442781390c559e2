#!/usr/bin/env python3
"""How fast `finetune dashboard` shows a big results.db: the benchmark binary writes one of 1,000 runs and
1,000,000 metric rows (`benchmark --measure results-db`), the dashboard serves it, and each page is timed twice:
the server's answer as a client gets it (request to last byte, over 127.0.0.1), and in headless Chromium driven
through chromedriver (WebDriver), from navigation start to the load event, which includes parsing and laying out
the page. Then a training run writing the same file is timed alone and while the dashboard follows it. Needs the release build (`swift build -c release`), chromium and chromium-driver (scripts/setup).

    python3 scripts/bench/dashboard_speed.py [--loads 20] [--output benchmarks/dashboard.md]
"""
import argparse
import json
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_common import ROOT, FINETUNE, cpu_name, write_table

BENCHMARK = ROOT / ".build" / "release" / "benchmark"
# Only 127.0.0.1, never through a proxy.
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def webdriver(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with LOCAL.open(request, timeout=120) as reply:
        return json.loads(reply.read())["value"]


def summary(seconds):
    ms = sorted(1000 * s for s in seconds)
    return f"{statistics.median(ms):.0f} | {ms[int(0.9 * (len(ms) - 1))]:.0f} | {ms[-1]:.0f}"


def training_beside_the_dashboard(work, steps, rounds=3):
    """Seconds of a training run alone and with the dashboard reading its results.db, `rounds` times in turn."""
    fixtures = ROOT / "Tests" / "BertKitTests" / "Fixtures"
    times = {"alone": [], "followed by the dashboard": []}
    for r in range(rounds):
        for case in times:
            db = work / f"training-{r}-{case[:5]}.db"
            started = time.perf_counter()
            train = subprocess.Popen([str(FINETUNE), "train", "--task", str(fixtures / "tasks" / "mrpc-slice.json"),
                                      "--model", str(fixtures / "tiny-bert"), "--db", str(db), "--output-dir", str(work / "runs"),
                                      "--max-steps", str(steps), "--eval-steps", "100", "--batch-size", "8", "--max-length", "40"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if case != "alone":
                while not db.exists():
                    time.sleep(0.01)
                time.sleep(0.2)
                port = free_port()
                dashboard = subprocess.Popen([str(FINETUNE), "dashboard", "--db", str(db), "--port", str(port)],
                                             stdout=subprocess.PIPE, text=True)
                dashboard.stdout.readline()
                events = LOCAL.open(f"http://127.0.0.1:{port}/runs/1/events", timeout=600)
                # What the run's live page does: an event every half second, and the curves fetched again after each.
                while train.poll() is None:
                    line = events.fp.readline()
                    if line.startswith(b"data:"):
                        with LOCAL.open(f"http://127.0.0.1:{port}/runs/1/curves", timeout=60) as page:
                            page.read()
                events.close()
                dashboard.terminate()
                dashboard.wait()
            train.wait()
            times[case].append(time.perf_counter() - started)
    return [f"| {case} | {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} |" for case, t in times.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--steps", type=int, default=2000, help="steps of the training run timed beside the dashboard")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "dashboard.md"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bertkit-dashboard-"))
    db = work / "results.db"
    made = subprocess.run([str(BENCHMARK), "--measure", "results-db", "--output", str(db)], capture_output=True, text=True, check=True)
    print(made.stdout.strip())

    port = free_port()
    dashboard = subprocess.Popen([str(FINETUNE), "dashboard", "--db", str(db), "--port", str(port)], stdout=subprocess.PIPE, text=True)
    dashboard.stdout.readline()
    driver_port = free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pages = [("runs: the first page (100 of 1,000)", "/"),
             ("runs: by best dev accuracy", "/?metric=accuracy&sort=metric"),
             ("runs: one task, by learning rate, page 2", "/?task=mrpc&sort=learning_rate&order=asc&page=2"),
             ("runs: all 1,000 on one page", "/?limit=1000"),
             ("one run (1,000 metric rows)", "/runs/500"),
             ("two runs compared", "/compare?run=1&run=5")]
    rows = []
    try:
        for _ in range(100):
            try:
                webdriver(driver_port, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        session = webdriver(driver_port, "POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server", "--window-size=1400,1000"]}}}})["sessionId"]
        for name, path in pages:
            url = f"http://127.0.0.1:{port}{path}"
            server, browser, size = [], [], 0
            for _ in range(args.loads):
                started = time.perf_counter()
                with LOCAL.open(url, timeout=60) as reply:
                    size = len(reply.read())
                server.append(time.perf_counter() - started)
            for _ in range(args.loads):
                webdriver(driver_port, "POST", f"/session/{session}/url", {"url": url})
                timing = webdriver(driver_port, "POST", f"/session/{session}/execute/sync", {
                    "script": "const n = performance.getEntriesByType('navigation')[0]; return [n.loadEventEnd, n.domContentLoadedEventEnd];",
                    "args": []})
                browser.append(timing[0] / 1000)
            rows.append(f"| {name} | {size / 1024:.0f} | {summary(server)} | {summary(browser)} |")
            print(rows[-1])
        webdriver(driver_port, "DELETE", f"/session/{session}")
    finally:
        driver.terminate()
        dashboard.terminate()
        dashboard.wait()

    writer = training_beside_the_dashboard(work, args.steps)

    table = "\n".join([
        "# finetune dashboard over 1,000 runs and 1,000,000 metric rows",
        "",
        f"CPU: {cpu_name()}, 2 cores. {made.stdout.strip()}. {args.loads} loads of each page; milliseconds (median | 90th percentile | max).",
        "Server: a client's request to the last byte of the page. Browser: headless Chromium, navigation start to the load event.",
        "",
        "| page | KiB | server p50 | p90 | max | browser p50 | p90 | max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows, "",
        "A training run writing the same results.db, alone and while the dashboard follows it as the run's live page does (an",
        f"event every 0.5 s, the curves fetched again after each): the tiny test model on the MRPC slice, {args.steps} steps, three",
        "metric rows each step (the most writes per second a run makes), 3 rounds, taking turns; whole command, seconds:",
        "",
        "| training run | median | min | max |",
        "|---|---:|---:|---:|",
        *writer, ""])
    write_table(table, Path(args.output))


if __name__ == "__main__":
    main()
