#!/usr/bin/env python3
"""ctnn against ONNX Runtime and PyTorch on the same network, batch and thread count.

    python benchmarks/peers.py [--ctnn-bench build/benchmarks/ctnn-bench]
        [--config resnet18:1 --config resnet18:8 --config resnet50:1]
        [--threads 2] [--rounds 7] [--runs 10] [--warmup 3]
        [--peers ctnn,ort,torch] [--json results.json] [--wait-idle 90]

Peers, all FP32 on the CPU, at 224x224 (``--size``), random weights:
  ctnn   ``ctnn-bench --json`` (the CPU backend), one process per round.
  ort    torchvision's model exported to ONNX (opset 17), ONNX Runtime with
         intra_op_num_threads=T, inter_op_num_threads=1, sequential execution,
         graph optimisation ORT_ENABLE_ALL.
  torch  torchvision's model traced, frozen and optimize_for_inference'd
         (TorchScript), torch.set_num_threads(T). Eager mode is not a fair peer.

Each Python peer lives in its own worker process, built once per configuration
and then idle on a pipe between rounds, so that no library's spinning thread
pool runs beside another's measurement. Rounds interleave the peers
(ctnn, ort, torch, ctnn, ort, torch, ...) so that a change of machine load hits
all of them alike. A round is ``--warmup`` untimed passes and ``--runs`` timed
ones; a peer's figure is the median of its per-round medians. The ratios are
ctnn's median over the peer's (below 1 means ctnn is faster). On a shared
machine, ``--wait-idle PCT`` holds each round until the machine is that idle.

Needs torch + torchvision (any version from 1.13; Debian's 1.13 runs some convs
on reference BLAS and is no fair speed baseline), onnx and onnxruntime for the
ort peer. Missing pieces drop that peer with a message instead of failing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("resnet18", "resnet34", "resnet50")
PEERS = ("ctnn", "ort", "torch")
# Pause between two peers' rounds so that the previous library's worker
# threads have stopped spinning before the next one is timed.
SETTLE_S = 0.2


# --------------------------------------------------------------------------
# Worker side: one Python peer, one model and batch, driven over stdin.
# --------------------------------------------------------------------------

def _worker_session(peer: str, model: str, batch: int, size: int, threads: int, onnx_path: str):
    """Builds the peer and returns a function that runs one forward pass."""
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np

    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)

    if peer == "ort":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        version = f"onnxruntime {ort.__version__}"
        return (lambda: sess.run(None, {name: x})), version

    import torch
    import torchvision

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first parallel work
        pass
    net = getattr(torchvision.models, model)(weights=None) if _has_weights_kw() else getattr(
        torchvision.models, model)(pretrained=False)
    net.eval()
    xt = torch.from_numpy(x)
    with torch.no_grad():
        traced = torch.jit.trace(net, xt)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    def run():
        with torch.no_grad():
            return frozen(xt)

    version = f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads"
    return run, version


def _has_weights_kw() -> bool:
    import torchvision

    major, minor = (int(p) for p in torchvision.__version__.split(".")[:2])
    return (major, minor) >= (0, 13)


def worker_main(args) -> int:
    run, version = _worker_session(args.worker, args.model, args.batch, args.size, args.threads, args.onnx)
    print(json.dumps({"ready": True, "version": version}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] != "run":
            break
        runs, warmup = int(words[1]), int(words[2])
        for _ in range(warmup):
            run()
        ms = []
        for _ in range(runs):
            t0 = time.perf_counter()
            run()
            ms.append((time.perf_counter() - t0) * 1e3)
        print(json.dumps({"ms": ms}), flush=True)
    return 0


# --------------------------------------------------------------------------
# Coordinator side.
# --------------------------------------------------------------------------

class Worker:
    """A peer in a child process of this script."""

    def __init__(self, peer, model, batch, size, threads, onnx_path, env):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", peer, "--model", model, "--batch", str(batch),
               "--size", str(size), "--threads", str(threads), "--onnx", onnx_path or ""]
        self.peer = peer
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        hello = self._read()
        self.version = hello["version"]

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.peer} worker exited (status {self.proc.wait()}); see its messages above")
        return json.loads(line)

    def round(self, runs, warmup):
        self.proc.stdin.write(f"run {runs} {warmup}\n")
        self.proc.stdin.flush()
        return statistics.median(self._read()["ms"])

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def ctnn_round(exe, model, batch, size, threads, runs, warmup, env):
    cmd = [exe, "--model", model, "--batch", str(batch), "--size", str(size), "--threads", str(threads),
           "--runs", str(runs), "--warmup", str(warmup), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    rows = [json.loads(l) for l in out.splitlines() if l.strip().startswith("{")]
    if not rows:
        raise RuntimeError(f"no JSON line from {' '.join(cmd)}:\n{out}")
    return rows[-1]


def export_onnx(model, size, path):
    """torchvision model -> ONNX opset 17 with a dynamic batch axis."""
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    import torchvision

    net = getattr(torchvision.models, model)(weights=None) if _has_weights_kw() else getattr(
        torchvision.models, model)(pretrained=False)
    net.eval()
    x = torch.randn(1, 3, size, size)
    kwargs = dict(opset_version=17, input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    try:  # torch >= 2.9 defaults to the torch.export exporter, which needs onnxscript
        torch.onnx.export(net, (x,), path, dynamo=False, **kwargs)
    except TypeError:  # older torch: no `dynamo` argument, TorchScript exporter only
        torch.onnx.export(net, (x,), path, **kwargs)


def available_peers(wanted, ctnn_exe):
    ok, why = [], {}
    for p in wanted:
        try:
            if p == "ctnn":
                if not (ctnn_exe and os.access(ctnn_exe, os.X_OK)):
                    raise RuntimeError(f"{ctnn_exe} not found; build it with "
                                       "`cmake --build BUILD --target ctnn-bench`")
            elif p == "ort":
                import onnx  # noqa: F401  (the exporter needs it)
                import onnxruntime  # noqa: F401
                import torchvision  # noqa: F401
            elif p == "torch":
                import torch  # noqa: F401
                import torchvision  # noqa: F401
            ok.append(p)
        except Exception as e:  # ImportError or the message above
            why[p] = str(e)
    return ok, why


def machine_line():
    model = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def load_avg():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


def idle_percent(seconds):
    """Share of CPU time the whole machine spent idle over `seconds` (Linux), or None."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v[:8]), v[3] + v[4]  # user..steal; idle + iowait
    try:
        t1, i1 = sample()
        time.sleep(seconds)
        t2, i2 = sample()
    except (OSError, ValueError):
        return None
    return 100.0 * (i2 - i1) / max(1, t2 - t1)


def wait_for_idle(threshold, limit_s):
    """Blocks until the machine is at least `threshold`% idle (our workers are
    quiet while this runs); returns the seconds waited. Gives up after limit_s."""
    if threshold <= 0:
        return 0.0
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        idle = idle_percent(0.5)
        if idle is None or idle >= threshold:
            break
    return time.monotonic() - start


def fmt_ms(v):
    return "—" if v is None else f"{v:.2f}"


def fmt_ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ctnn-bench", default="build/benchmarks/ctnn-bench")
    ap.add_argument("--config", action="append", metavar="MODEL:BATCH",
                    help="repeatable; default resnet18:1, resnet18:8, resnet50:1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=10, help="timed passes per round")
    ap.add_argument("--warmup", type=int, default=3, help="untimed passes per round")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="PCT",
                    help="before each peer's round, wait until the machine is PCT%% idle "
                         "(for shared machines; Linux only; 0 = never wait)")
    ap.add_argument("--wait-limit", type=float, default=900, metavar="S",
                    help="longest single wait for --wait-idle, in seconds")
    # Internal: worker mode.
    ap.add_argument("--worker", choices=("ort", "torch"), help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)

    configs = []
    for c in args.config or ["resnet18:1", "resnet18:8", "resnet50:1"]:
        model, _, batch = c.partition(":")
        if model not in MODELS or not batch.isdigit() or int(batch) < 1:
            ap.error(f"bad --config {c!r}: expected MODEL:BATCH with MODEL one of {', '.join(MODELS)}")
        configs.append((model, int(batch)))
    wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    if any(p not in PEERS for p in wanted):
        ap.error(f"--peers takes a comma list of {', '.join(PEERS)}")
    if min(args.threads, args.rounds, args.runs, args.size) < 1 or args.warmup < 0:
        ap.error("threads, rounds, runs and size must be positive, warmup not negative")

    exe = shutil.which(args.ctnn_bench) or (args.ctnn_bench if os.path.exists(args.ctnn_bench) else None)
    peers, why = available_peers(wanted, exe)
    for p, w in why.items():
        print(f"peers.py: skipping {p}: {w}", file=sys.stderr)
    if not peers:
        print("peers.py: no peer can run", file=sys.stderr)
        return 1

    # Every library sees the same thread count; OpenMP-based ones read this.
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    results = {"machine": machine_line(), "python": platform.python_version(), "threads": args.threads,
               "size": args.size, "rounds": args.rounds, "runs": args.runs, "warmup": args.warmup,
               "date": time.strftime("%Y-%m-%d %H:%M %Z"), "load_before": load_avg(), "versions": {}, "rows": []}
    print(f"# {results['machine']}; {args.threads} threads; {args.rounds} rounds x {args.runs} runs "
          f"(+{args.warmup} warm-up); load average before: {results['load_before']}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="ctnn-peers-") as tmp:
        for model, batch in configs:
            onnx_path = None
            if "ort" in peers:
                onnx_path = os.path.join(tmp, f"{model}.onnx")
                if not os.path.exists(onnx_path):
                    export_onnx(model, args.size, onnx_path)
            workers = {}
            try:
                for p in peers:
                    if p != "ctnn":
                        workers[p] = Worker(p, model, batch, args.size, args.threads, onnx_path, env)
                        results["versions"][p] = workers[p].version
                medians = {p: [] for p in peers}
                waited = 0.0
                for r in range(args.rounds):
                    for p in peers:
                        time.sleep(SETTLE_S)
                        waited += wait_for_idle(args.wait_idle, args.wait_limit)
                        if p == "ctnn":
                            row = ctnn_round(exe, model, batch, args.size, args.threads, args.runs, args.warmup, env)
                            results["versions"]["ctnn"] = row.get("backend", "ctnn")
                            medians[p].append(row["median_ms"])
                        else:
                            medians[p].append(workers[p].round(args.runs, args.warmup))
                    print(f"  {model} batch {batch} round {r + 1}: " +
                          ", ".join(f"{p} {medians[p][-1]:.2f} ms" for p in peers) +
                          f" (load {load_avg()}, {waited:.0f} s spent waiting for idle so far)", file=sys.stderr)
            finally:
                for w in workers.values():
                    w.close()
            row = {"model": model, "batch": batch, "waited_for_idle_s": round(waited, 1),
                   **{f"{p}_ms": statistics.median(medians[p]) for p in peers},
                   **{f"{p}_round_medians": medians[p] for p in peers}}
            results["rows"].append(row)
    results["load_after"] = load_avg()

    cols = [p for p in PEERS if p in peers]
    head = ["model", "batch", "threads"] + [f"{p} ms" for p in cols]
    if "ctnn" in cols:
        head += [f"ctnn/{p}" for p in cols if p != "ctnn"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in results["rows"]:
        cells = [row["model"], str(row["batch"]), str(args.threads)]
        cells += [fmt_ms(row.get(f"{p}_ms")) for p in cols]
        if "ctnn" in cols:
            cells += [fmt_ratio(row.get("ctnn_ms"), row.get(f"{p}_ms")) for p in cols if p != "ctnn"]
        print("| " + " | ".join(cells) + " |")
    print()
    print(f"Medians of {args.rounds} interleaved rounds, each the median of {args.runs} passes after "
          f"{args.warmup} warm-up; {args.size}x{args.size}, FP32. Machine: {results['machine']}. "
          f"Load average before {results['load_before']}, after {results['load_after']}." +
          (f" Each round started once the machine was {args.wait_idle:g}% idle." if args.wait_idle > 0 else ""))
    for p in cols:
        print(f"- {p}: {results['versions'].get(p, '?')}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
