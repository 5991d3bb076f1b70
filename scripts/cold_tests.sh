#!/usr/bin/env bash
# README command 2's test run (`python -m pytest`) from a cold start, timed.
#
# As scripts/cold_start.sh: Inductor's cache, its precompiled headers (under TMPDIR) and
# Triton's caches point into a new temporary folder, and the checkout's __pycache__ folders
# are removed, so the run compiles everything a fresh clone would. Prints pytest's summary
# and the wall time. Extra arguments go to pytest (e.g. -m "slow or not slow").
#
# Usage: scripts/cold_tests.sh [pytest arguments]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$( [ -x "$here/.venv/bin/python" ] && echo "$here/.venv/bin/python" || echo python)}"
work="$(mktemp -d "${TMPDIR:-/tmp}/gan-accel-cold-tests.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export TORCHINDUCTOR_CACHE_DIR="$work/inductor"
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
export TRITON_CACHE_DIR="$work/triton/cache"
export TRITON_HOME="$work/triton"
find "$here" -path "$here/.git" -prune -o -name __pycache__ -type d -prune -exec rm -rf {} + \
    2>/dev/null || true
cd "$here"
echo "cold test run; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
code=0
"$python" -m pytest -q "$@" || code=$?
end=$(date +%s.%N)
echo "wall: $(python -c "print(f'{$end - $start:.1f}')") s; exit code $code; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$code"
