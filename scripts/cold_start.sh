#!/usr/bin/env bash
# README command 1 (`python -m gan_accel.train --compile`) from a cold start, timed.
#
# Every cache the command can reuse starts empty: Inductor's (TORCHINDUCTOR_CACHE_DIR), its
# precompiled headers (kept in TMPDIR/torchinductor_USER whatever the cache directory) and
# Triton's (TRITON_CACHE_DIR, TRITON_HOME) point into a new temporary folder, so nothing
# another process uses is wiped; the checkout's __pycache__ folders are removed; the run
# directory is new. Prints imports, data ready, each phase's compile, the first step's end,
# steps/s, the per-epoch grid + checkpoint cost and the total wall time.
#
# Usage: scripts/cold_start.sh [extra train flags, e.g. --epochs 2]
# Takes about as long as the command itself (248 s when last timed cold on 2 cores) for the full
# 30 epochs; much longer when the machine is shared.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$( [ -x "$here/.venv/bin/python" ] && echo "$here/.venv/bin/python" || echo python)}"
work="$(mktemp -d "${TMPDIR:-/tmp}/gan-accel-cold.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export TORCHINDUCTOR_CACHE_DIR="$work/inductor"
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
export TRITON_CACHE_DIR="$work/triton/cache"
export TRITON_HOME="$work/triton"
find "$here/gan_accel" "$here/kernels" "$here/export" "$here/bench" "$here/scripts" \
    -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
mkdir -p "$work/run"
cd "$work/run"
echo "cold start in $work/run; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" -u "$here/scripts/cold_start.py" --compile "$@"
