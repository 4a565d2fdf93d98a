"""Turns bench/run's raw lines ("scenario target value unit") into the results table."""
import collections
import datetime
import platform
import statistics
import subprocess
import sys

raw, command = sys.argv[1], sys.argv[2]
values = collections.defaultdict(list)
units = {}
for line in open(raw):
    parts = line.split()
    if len(parts) < 4:
        continue
    scenario, target, value, unit = parts[:4]
    units[scenario] = unit
    try:
        values[(scenario, target)].append(float(value))
    except ValueError:
        values[(scenario, target)].append(None)  # "none": not detected


def median(scenario, target):
    v = [x for x in values.get((scenario, target), []) if x is not None]
    if not v:
        return None if (scenario, target) in values else "n/a"
    return statistics.median(v)


def fmt(v):
    if v is None:
        return "not detected"
    if isinstance(v, str):
        return v
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def ratio(a, b):
    if isinstance(a, float) and isinstance(b, float) and b:
        return f"{a / b:.2f}"
    return "-"


lower_better = {"latency_p50", "latency_p99", "idle_bytes_per_conn", "amqp_ready_ms", "frozen_marked_down_ms"}
order = ["throughput1", "throughput4", "connrate", "latency_p50", "latency_p99", "amqp_confirms",
         "amqp_small_writes", "idle_bytes_per_conn", "amqp_ready_ms", "frozen_marked_down_ms"]
cpu = ""
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except StopIteration:
    pass
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print("# warren benchmarks\n")
print(f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}")
print(f"- machine: {nproc} cores ({cpu}), Linux {platform.release()}")
print(f"- command: `{command}`")
print("- pinning: proxies on CPU 0 (one thread each), load tool and backends on CPU 1; medians of the rounds\n")
print("| scenario | unit | direct | HAProxy | warren | warren amqp mode | warren/HAProxy | warren/direct | amqp/tcp mode |")
print("|---|---|---|---|---|---|---|---|---|")
for s in order:
    if not any(k[0] == s for k in values):
        continue
    d, h, w, a = (median(s, t) for t in ("direct", "haproxy", "warren", "warren-amqp"))
    note = " (lower is better)" if s in lower_better else ""
    print(f"| {s}{note} | {units.get(s, '')} | {fmt(d)} | {fmt(h)} | {fmt(w)} | {fmt(a)} | {ratio(w, h)} | {ratio(w, d)} | {ratio(a, w)} |")
print("\nScenarios: throughputN = N streams of 128 KiB writes to a sink; connrate = connect, 16 B each way, close,")
print("16 workers; latency = 64 B ping-pong on one connection; amqp_confirms = pipelined publishing with")
print("publisher confirms to a real RabbitMQ node; amqp_small_writes = one write per message, no confirms;")
print("idle_bytes_per_conn = proxy RSS growth per idle proxied connection; amqp_ready_ms = kill -9 of a node to")
print("the first complete AMQP handshake through the proxy; frozen_marked_down_ms = SIGSTOP of a node to the")
print("proxy logging it DOWN (HAProxy: TCP check; warren: option amqp-check), 20 s at most.")
