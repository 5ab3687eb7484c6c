#!/usr/bin/env bash
# Compile cost of ctnn inference against dlib's, one translation unit each:
#   benchmarks/compile_cost.cpp   ResNet-18 and ResNet-50 x three heads, CPU backend
#   benchmarks/dlib_resnet18.cpp  one dlib ResNet-18 (needs Debian's libdlib-dev)
# Each is compiled --runs times (interleaved) with
#   g++ -std=c++20 -O2 -march=native -fopenmp -c
# under /usr/bin/time -v; the table gives the medians of wall time, CPU time
# (user + sys: the figure a busy machine disturbs least) and the compiler's
# peak resident memory.
#
#   benchmarks/compile_cost.sh [--runs N] [--cxx g++] [--check]
#
# --check also links and runs both programs once, to show that each TU really
# instantiates a working forward pass.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
runs=3
cxx=g++
check=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --cxx) cxx=$2; shift 2 ;;
    --check) check=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "compile_cost.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "compile_cost.sh: --runs needs a positive number, got '$runs'" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "compile_cost.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

flags=(-std=c++20 -O2 -march=native -fopenmp)
ctnn_cmd=("$cxx" "${flags[@]}" -I"$root/include" -I/usr/include/eigen3 -c "$here/compile_cost.cpp")
dlib_cmd=("$cxx" "${flags[@]}" -c "$here/dlib_resnet18.cpp")
names=(ctnn)
if [[ -f /usr/include/dlib/dnn.h ]]; then
  names+=(dlib)
else
  echo "compile_cost.sh: dlib headers not found (apt-get install libdlib-dev); timing ctnn alone" >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One timed compile; appends "wall_s cpu_s rss_kb" to $tmp/<name>.
measure() {
  local name=$1; shift
  local log="$tmp/$name.time"
  if ! /usr/bin/time -v -o "$log" "$@" -o "$tmp/$name.o" 2>"$tmp/$name.err"; then
    echo "compile_cost.sh: compiling the $name TU failed:" >&2
    head -40 "$tmp/$name.err" >&2
    exit 1
  fi
  awk -F': ' '
    /User time/ {u = $2} /System time/ {s = $2} /Maximum resident set size/ {m = $2}
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = 0; for (i = 1; i <= n; ++i) w = w * 60 + p[i] }
    END { printf "%.2f %.2f %d\n", w, u + s, m }' "$log" >>"$tmp/$name"
}

median() {  # median of column $1 of file $2
  sort -g -k"$1","$1" "$2" | awk -v c="$1" '{ v[NR] = $c } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= runs; ++r)); do
  for name in "${names[@]}"; do
    cmd_var="${name}_cmd[@]"
    measure "$name" "${!cmd_var}"
    echo "  run $r $name: $(tail -1 "$tmp/$name") (wall s, cpu s, peak KB)" >&2
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "| TU | wall s (median) | CPU s (median) | peak RSS MB (median) | runs |"
echo "|---|---|---|---|---|"
for name in "${names[@]}"; do
  w=$(median 1 "$tmp/$name"); c=$(median 2 "$tmp/$name"); m=$(median 3 "$tmp/$name")
  awk -v n="$name" -v w="$w" -v c="$c" -v m="$m" -v r="$runs" 'BEGIN { printf "| %s | %.1f | %.1f | %.0f | %d |\n", n, w, c, m / 1024, r }'
  declare "wall_$name=$w" "cpu_$name=$c" "rss_$name=$m"
done
if [[ ${#names[@]} -eq 2 ]]; then
  awk -v w1="$wall_ctnn" -v w2="$wall_dlib" -v c1="$cpu_ctnn" -v c2="$cpu_dlib" -v m1="$rss_ctnn" -v m2="$rss_dlib" \
    'BEGIN { printf "\nctnn/dlib: wall %.2f, CPU %.2f, peak memory %.2f\n", w1 / w2, c1 / c2, m1 / m2 }'
fi
echo
echo "$($cxx --version | head -1); flags: ${flags[*]} -c; load average before $load_before, after $load_after"
echo "ctnn: ${ctnn_cmd[*]}"
[[ ${#names[@]} -eq 2 ]] && echo "dlib: ${dlib_cmd[*]}"

if [[ $check -eq 1 ]]; then
  echo
  "$cxx" "${flags[@]}" "$tmp/ctnn.o" -o "$tmp/ctnn_run" && "$tmp/ctnn_run"
  if [[ ${#names[@]} -eq 2 ]]; then
    # shellcheck disable=SC2046  # pkg-config prints several words on purpose
    "$cxx" "${flags[@]}" "$tmp/dlib.o" -o "$tmp/dlib_run" $(pkg-config --libs dlib-1) && "$tmp/dlib_run"
  fi
fi
