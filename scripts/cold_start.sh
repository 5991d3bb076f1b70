#!/usr/bin/env bash
# README command 1 (`python -m gan_accel.train --compile`) from a cold start, timed.
#
# Every cache the command can reuse starts empty (scripts/cold_caches.sh) and the run
# directory is new. Prints imports, data ready, each phase's compile, the first step's end,
# steps/s, the per-epoch grid + checkpoint cost and the total wall time.
#
# Usage: scripts/cold_start.sh [extra train flags, e.g. --epochs 2]
# Takes about as long as the command itself (208 s when last timed cold on 2 idle cores) for
# the full 30 epochs; much longer when the machine is shared.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/scripts/cold_caches.sh" cold
mkdir -p "$work/run"
cd "$work/run"
echo "cold start in $work/run; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" -u "$here/scripts/cold_start.py" --compile "$@"
