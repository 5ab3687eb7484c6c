#!/usr/bin/env bash
# GPU check for the CUDA backend, for one NVIDIA H100/H200 machine that has
# CUDA (nvcc), CMake and PyTorch 2.x with cuDNN but no package registry.
#
#   1. checks the driver and the GPU (nvidia-smi), nvcc, cmake, torch;
#   2. configures with the header dependencies carried in <repo>/.deps
#      (scripts/gather-deps.sh makes it on a machine that has them) and builds
#      only ctnn-cuda-tests and ctnn-cuda-bench (sm_90, -j16);
#   3. runs ctnn-cuda-tests: parity with the CPU reference backend on every
#      architecture and head, with PyTorch's fixtures, graphs, errors;
#   4. benchmarks ResNet-18 and ResNet-50 at batch 1 and 64: ctnn (FP32,
#      TF32) against PyTorch on the same GPU (eager FP32, eager TF32 +
#      channels_last + cuDNN, CUDA graphs, and torch.compile where it works);
#      and a ResNet-50 training step at batch 64 (ctnn FP32 and BF16; PyTorch eager
#      FP32, TF32 channels_last and AMP BF16);
#   5. writes one table, results.md, to $OUT (or build-gpu/out).
#
#   (3b. runs ctnn-infer --backend cuda, the command-line tool's nvcc-compiled
#        menu, against PyTorch's output on a small fixture;)
#
# Environment: OUT (results folder), JOBS (default 16), BUILD_DIR (default
# build-gpu), PHASES (default "build test infer bench torch"; e.g.
# PHASES="test bench" reruns on a warm machine without rebuilding),
# CTNN_TORCH_COMPILE (1: try torch.compile on ResNet-18, 2: on both models,
# 0: skip; default 1), TORCH_COMPILE_TIMEOUT (seconds, default 150).
# Expected wall time on an H100 with 16 cores: about 6-8 minutes (build ~1.5,
# tests ~1.5, benchmarks ~1.5, torch.compile up to 2.5). Give the command a
# limit of about 590 s.
# Files in $OUT: gpu-check.log, tests.log, bench-ctnn.csv, bench-torch.csv, results.md.
# Exit status: 0 when everything ran and the tests passed, 1 otherwise.
set -euo pipefail
# shellcheck disable=SC2317  # functions are called through timed()

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:-$repo/build-gpu/out}
build=${BUILD_DIR:-$repo/build-gpu}
jobs=${JOBS:-16}
phases=" ${PHASES:-build test infer bench torch} "
mkdir -p "$out"

declare -a timings=()
status=0
failures=()

note() { printf '\n=== %s ===\n' "$*"; }
fail() {
  echo "gpu-check: $*" >&2
  failures+=("$*")
  status=1
}
timed() {  # timed <label> <command...>: runs, records seconds, keeps going on failure
  local label=$1
  shift
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  timings+=("$(printf '%-34s %4ds  %s' "$label" $((SECONDS - t0)) "$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")")")
  return $rc
}
want() { [[ $phases == *" $1 "* ]]; }

check_machine() {
  note "GPU and driver"
  if ! command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi not found: this machine has no NVIDIA driver" >&2
    return 2
  fi
  if ! nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.sm,clocks.max.sm \
      --format=csv; then
    echo "nvidia-smi failed: no usable GPU" >&2
    return 2
  fi
  note "tools"
  nvcc_bin=$(command -v nvcc || true)
  [[ -z $nvcc_bin && -x /usr/local/cuda/bin/nvcc ]] && nvcc_bin=/usr/local/cuda/bin/nvcc
  if [[ -z $nvcc_bin ]]; then
    echo "nvcc not found (PATH or /usr/local/cuda/bin)" >&2
    return 2
  fi
  "$nvcc_bin" --version | tail -2
  cmake --version | head -1
  command -v ninja >/dev/null && echo "ninja $(ninja --version)" || true
  g++ --version | head -1 || true
  python3 - <<'PY' || echo "python3/torch: not usable (the PyTorch comparison will be skipped)"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
      "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NOT AVAILABLE")
PY
}

configure_and_build() {
  note "configure ($build)"
  local deps=$repo/.deps triplet
  triplet=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
  local -a args=(-S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCTNN_CUDA=ON
                 -DCMAKE_CUDA_COMPILER="$nvcc_bin" -DCMAKE_CUDA_ARCHITECTURES=90
                 -DCTNN_BUILD_TESTS=ON -DCTNN_BUILD_EXAMPLES=OFF -DCTNN_BUILD_BENCHMARKS=OFF
                 -DCTNN_INSTALL=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
  command -v ninja >/dev/null && args+=(-G Ninja)
  if [[ -d $deps ]]; then
    echo "header dependencies from $deps"
    args+=(-DCMAKE_PREFIX_PATH="$deps" -Ddoctest_DIR="$deps/lib/cmake/doctest"
           -DEigen3_DIR="$deps/share/eigen3/cmake")
    local xs
    xs=$(ls -d "$deps"/lib/*/cmake/xsimd 2>/dev/null | head -1 || true)
    [[ -n $xs ]] && args+=(-Dxsimd_DIR="$xs")
    # tests/idx asks for zlib at configure time; nothing built here links it.
    if [[ ! -e /usr/include/zlib.h && -e $deps/include/zlib.h ]]; then
      local libz
      libz=$(ls /usr/lib/"$triplet"/libz.so* /lib/"$triplet"/libz.so* /usr/lib64/libz.so* 2>/dev/null | head -1 || true)
      args+=(-DZLIB_INCLUDE_DIR="$deps/include" -DZLIB_LIBRARY="${libz:-$deps/include/zlib.h}")
    fi
  elif [[ ! -e /usr/include/doctest/doctest.h ]]; then
    echo "no $deps and no system doctest: run scripts/gather-deps.sh where the headers exist and carry .deps" >&2
    return 2
  fi
  cmake "${args[@]}" >"$build.configure.log" 2>&1 || {
    tail -40 "$build.configure.log"
    echo "cmake configure failed (full log: $build.configure.log)" >&2
    return 1
  }
  grep -E "ctnn: CUDA|CUDA compiler identification" "$build.configure.log" || true
  if [[ ! -d $build/CMakeFiles/ctnn-cuda-tests.dir ]]; then
    echo "the build has no target ctnn-cuda-tests: is include(ctnnCuda) in the root CMakeLists.txt?" >&2
    return 1
  fi
  local -a targets=(ctnn-cuda-tests ctnn-cuda-bench)
  if find "$build" -maxdepth 3 -type d -name 'ctnn-infer.dir' | grep -q .; then
    targets+=(ctnn-infer)  # its CUDA menu is an nvcc-compiled TU
  fi
  note "build (${targets[*]}; -j$jobs)"
  local keep_going=-k
  [[ -f $build/build.ninja ]] && keep_going="-k 0"
  # Keep going: a broken ctnn-infer must not cost the tests and benchmarks.
  # shellcheck disable=SC2086
  cmake --build "$build" --target "${targets[@]}" -j "$jobs" -- $keep_going || true
  local t missing=0
  for t in ctnn-cuda-tests ctnn-cuda-bench; do
    [[ -x $build/$t ]] || { echo "$t was not built" >&2; missing=1; }
  done
  return $missing
}

run_tests() {
  note "ctnn-cuda-tests"
  local rc=0
  "$build/ctnn-cuda-tests" --duration=true 2>&1 | tee "$out/tests.log" || rc=${PIPESTATUS[0]}
  if [[ $rc == 77 ]]; then
    echo "ctnn-cuda-tests skipped: it found no GPU although nvidia-smi did" >&2
    return 1
  fi
  return "$rc"
}

run_ctnn_bench() {
  note "ctnn-cuda-bench"
  "$build/ctnn-cuda-bench" --csv "$out/bench-ctnn.csv"
}

write_torch_bench() {
  cat >"$build/torch_bench.py" <<'PY'
# PyTorch baselines on the same GPU: torchvision ResNet-18/50, 1000 classes,
# 224x224, batch 1 and 64, input resident on the device unless noted.
import csv, os, sys, time
import torch, torchvision

part = sys.argv[1]          # "eager" or "compile"
path = sys.argv[2]          # csv to append to
models = sys.argv[3].split(",") if len(sys.argv) > 3 else ["resnet18", "resnet50"]
dev = torch.device("cuda")
torch.backends.cudnn.benchmark = True

def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on

def timeit(fn, batch):
    iters, warm = (200, 20) if batch == 1 else (20, 5)
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return ts[len(ts) // 2], ts[0]

def record(model, batch, mode, inp, med, mn):
    # Appended at once, so rows measured before a timeout or a crash survive.
    with open(path, "a", newline="") as f:
        csv.writer(f).writerow(["pytorch", model, batch, mode, inp, f"{med:.4f}", f"{mn:.4f}",
                                f"{1000.0 * batch / med:.1f}"])
    print(f"torch {model:9s} batch {batch:<3d} {mode:28s} {inp:12s} median {med:8.3f} ms  min {mn:8.3f} ms", flush=True)

def graphed(model, x):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = model(x)
    return g, y

if part == "train":  # one SGD step of the whole network, 224x224, batch 64
    import torch.nn.functional as F
    for name in models:
        m = getattr(torchvision.models, name)(weights=None).train().to(dev)
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
        batch = 64
        x = torch.randn(batch, 3, 224, 224, device=dev)
        y = torch.randint(0, 1000, (batch,), device=dev)
        def step(inp, amp):
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(m(inp), y)
            loss.backward()
            opt.step()
        set_tf32(False)
        record(name, batch, "train eager fp32", "device", *timeit(lambda: step(x, False), batch))
        set_tf32(True)
        m = m.to(memory_format=torch.channels_last)
        xc = x.to(memory_format=torch.channels_last)
        record(name, batch, "train eager tf32 channels_last", "device", *timeit(lambda: step(xc, False), batch))
        record(name, batch, "train amp bf16 channels_last", "device", *timeit(lambda: step(xc, True), batch))
        del m, opt
        torch.cuda.empty_cache()
    sys.exit(0)

with torch.inference_mode():
    for name in models:
        base = getattr(torchvision.models, name)(weights=None).eval().to(dev)
        for batch in (1, 64):
            xh = torch.randn(batch, 3, 224, 224).pin_memory()
            if part == "eager":
                set_tf32(False)
                x = xh.to(dev)
                record(name, batch, "eager fp32", "device", *timeit(lambda: base(x), batch))
                record(name, batch, "eager fp32", "pinned host",
                       *timeit(lambda: base(xh.to(dev, non_blocking=True)).cpu(), batch))
                try:
                    g32, _ = graphed(base, x)
                    record(name, batch, "cuda graph fp32", "device", *timeit(g32.replay, batch))
                    del g32
                except Exception as e:  # graphs are a bonus, not a requirement
                    print(f"torch {name} batch {batch}: CUDA graph capture failed: {e}", flush=True)
                set_tf32(True)
                cl = base.to(memory_format=torch.channels_last)  # converts the module in place
                xc = x.to(memory_format=torch.channels_last)
                record(name, batch, "eager tf32 channels_last", "device", *timeit(lambda: cl(xc), batch))
                record(name, batch, "eager tf32 channels_last", "pinned host",
                       *timeit(lambda: cl(xh.to(dev, non_blocking=True).to(memory_format=torch.channels_last)).cpu(),
                               batch))
                def amp_bf16():
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        return cl(xc)
                record(name, batch, "eager amp bf16 channels_last", "device", *timeit(amp_bf16, batch))
                try:
                    g, _ = graphed(cl, xc)
                    record(name, batch, "cuda graph tf32 channels_last", "device", *timeit(g.replay, batch))
                    del g
                except Exception as e:
                    print(f"torch {name} batch {batch}: CUDA graph capture failed: {e}", flush=True)
                base = base.to(memory_format=torch.contiguous_format)
            else:
                set_tf32(True)
                cl = base.to(memory_format=torch.channels_last)
                xc = xh.to(dev).to(memory_format=torch.channels_last)
                t0 = time.perf_counter()
                fn = torch.compile(cl, mode="reduce-overhead")
                fn(xc); fn(xc); fn(xc)
                print(f"torch.compile {name} batch {batch}: compiled in {time.perf_counter() - t0:.0f} s", flush=True)
                record(name, batch, "torch.compile tf32 (reduce-overhead)", "device", *timeit(lambda: fn(xc), batch))
        del base
        torch.cuda.empty_cache()
PY
}

run_torch_bench() {
  note "PyTorch baselines"
  write_torch_bench
  local csvf=$out/bench-torch.csv
  echo "impl,model,batch,mode,input,median_ms,min_ms,images_per_s" >"$csvf"
  python3 "$build/torch_bench.py" eager "$csvf" || return 1
  python3 "$build/torch_bench.py" train "$csvf" resnet50 || echo "torch training baseline failed; its rows are left out"
  local which=${CTNN_TORCH_COMPILE:-1}
  if [[ $which != 0 ]]; then
    local models=resnet18
    [[ $which == 2 ]] && models=resnet18,resnet50
    note "torch.compile ($models; optional, at most ${TORCH_COMPILE_TIMEOUT:-150} s)"
    timeout "${TORCH_COMPILE_TIMEOUT:-150}" python3 "$build/torch_bench.py" compile "$csvf" "$models" ||
      echo "torch.compile: did not finish (timeout or error); its rows are left out"
  fi
}

run_infer() {
  note "ctnn-infer --backend cuda"
  local exe
  exe=$(find "$build" -maxdepth 3 -type f -name ctnn-infer -perm -u+x | head -1)
  if [[ -z $exe ]]; then
    echo "ctnn-infer was not built (no tools/ in this build, or its build failed above)" >&2
    return 1
  fi
  local data=$repo/tests/data/infer
  "$exe" --arch resnet20 --weights "$data/resnet20_fc10.safetensors" --input "$data/input_3x3x29x35.npy" \
    --backend cuda --output "$build/infer_cuda.npy" --verbose || return 1
  python3 - "$build/infer_cuda.npy" "$data/expected_fc10.npy" <<'PY'
import sys
import numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
rel = float(np.abs(got - want).max() / np.abs(want).max())
print(f"ctnn-infer --backend cuda vs PyTorch (resnet20, fc10): max relative error {rel:.2e}")
sys.exit(0 if rel <= 1e-4 else 1)
PY
}

write_table() {
  note "results"
  python3 - "$out" <<'PY'
import csv, os, sys
out = sys.argv[1]
rows = []
for name in ("bench-ctnn.csv", "bench-torch.csv"):
    p = os.path.join(out, name)
    if os.path.exists(p):
        with open(p) as f:
            rows += list(csv.DictReader(f))
if not rows:
    print("no benchmark results"); sys.exit(0)
gpu = os.popen("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader").read().strip()
lines = [f"# ctnn CUDA backend vs PyTorch ({gpu})", "",
         "Median over repeated runs; ResNet-18/50, 1000 classes, 224x224. `device`: input already on the GPU,",
         "`pinned host`: host-to-host (copy in, run, copy out). ctnn replays a CUDA graph after the first runs.", "",
         "| model | batch | impl | mode | input | median ms | min ms | images/s |",
         "|---|---:|---|---|---|---:|---:|---:|"]
key = lambda r: (r["model"], int(r["batch"]), r["impl"] != "ctnn", r["mode"], r["input"])
for r in sorted(rows, key=key):
    lines.append(f"| {r['model']} | {r['batch']} | {r['impl']} | {r['mode']} | {r['input']} | "
                 f"{float(r['median_ms']):.3f} | {float(r['min_ms']):.3f} | {float(r['images_per_s']):.0f} |")

def best(impl, model, batch, pred=lambda r: True):
    c = [r for r in rows if r["impl"] == impl and r["model"] == model and int(r["batch"]) == batch
         and r["input"] == "device" and pred(r)]
    return min(c, key=lambda r: float(r["median_ms"])) if c else None

lines += ["", "## Targets", ""]
for model in ("resnet18", "resnet50"):
    c1 = best("ctnn", model, 1)
    e1 = best("pytorch", model, 1, lambda r: r["mode"].startswith("eager"))
    if c1 and e1:
        ok = float(c1["median_ms"]) < float(e1["median_ms"])
        lines.append(f"- {model} batch 1: ctnn {c1['mode']} {float(c1['median_ms']):.3f} ms vs PyTorch best eager "
                     f"({e1['mode']}) {float(e1['median_ms']):.3f} ms: "
                     f"{'lower latency (target met)' if ok else 'NOT lower'}" + ("" if model == "resnet18" else " (informational)"))
    c64 = best("ctnn", model, 64, lambda r: r["mode"] == "tf32")
    t64 = best("pytorch", model, 64)
    if c64 and t64:
        ratio = float(c64["median_ms"]) / float(t64["median_ms"])
        lines.append(f"- {model} batch 64: ctnn tf32 {float(c64['median_ms']):.3f} ms vs PyTorch best ({t64['mode']}) "
                     f"{float(t64['median_ms']):.3f} ms: {ratio:.2f}x " +
                     ("(within 2x: target met)" if ratio <= 2 else "(NOT within 2x)") +
                     ("" if model == "resnet18" else " (informational)"))
    for batch in (1, 64):
        cb = best("ctnn", model, batch, lambda r: r["mode"] == "bf16")
        ct = best("ctnn", model, batch, lambda r: r["mode"] == "tf32")
        pb = best("pytorch", model, batch, lambda r: "bf16" in r["mode"])
        if cb and ct:
            lines.append(f"- {model} batch {batch}: ctnn bf16 {float(cb['median_ms']):.3f} ms, "
                         f"{float(ct['median_ms']) / float(cb['median_ms']):.2f}x ctnn tf32's throughput"
                         + (f"; PyTorch AMP bf16 {float(pb['median_ms']):.3f} ms" if pb else "")
                         + (" (target for batch 256: >= 2x tf32; informational here)" if batch == 64 else ""))
def pick(impl, model, mode):
    c = [r for r in rows if r["impl"] == impl and r["model"] == model and r["mode"] == mode]
    return min(c, key=lambda r: float(r["median_ms"])) if c else None
cb, pa = pick("ctnn", "resnet50", "train bf16"), pick("pytorch", "resnet50", "train amp bf16 channels_last")
if cb and pa:
    lines.append(f"- resnet50 training batch {cb['batch']}: ctnn bf16 {float(cb['images_per_s']):.0f} images/s vs "
                 f"PyTorch AMP bf16 channels_last {float(pa['images_per_s']):.0f} images/s: "
                 f"{float(cb['images_per_s']) / float(pa['images_per_s']):.2f}x (target >= 1x at batch 256)")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "results.md"), "w").write(text)
print(text)
PY
}

main() {
  local start=$SECONDS ready=1
  echo "gpu-check: repo $repo, build $build, results $out, phases:$phases"
  nvcc_bin=""
  timed "GPU, driver and tools" check_machine || { fail "no usable GPU or toolchain"; ready=0; }
  if ((ready)) && want build; then
    timed "configure + build (nvcc, -j$jobs)" configure_and_build || { fail "build failed"; ready=0; }
  fi
  if ((ready)) && want test; then
    timed "ctnn-cuda-tests" run_tests || fail "ctnn-cuda-tests failed (see tests.log)"
  fi
  # Benchmarks run even when a test failed: one pass of this script should
  # bring back everything there is to learn.
  if ((ready)) && want infer; then
    timed "ctnn-infer --backend cuda" run_infer || fail "ctnn-infer --backend cuda failed"
  fi
  if ((ready)) && want bench; then
    timed "ctnn-cuda-bench" run_ctnn_bench || fail "ctnn-cuda-bench failed"
  fi
  if ((ready)) && want torch; then
    timed "PyTorch baselines" run_torch_bench || fail "PyTorch benchmark failed"
  fi
  if ((ready)) && { want bench || want torch; }; then
    timed "results table" write_table || fail "could not write the results table"
  fi
  note "phase timings (total $((SECONDS - start)) s)"
  printf '%s\n' "${timings[@]}"
  if ((${#failures[@]})); then
    note "FAILED"
    printf ' - %s\n' "${failures[@]}"
  else
    note "all phases passed"
  fi
  return "$status"
}

main "$@" 2>&1 | tee "$out/gpu-check.log"
exit "${PIPESTATUS[0]}"
