#!/usr/bin/env bash
# README command 2's test run (`python -m pytest`) from a cold start, timed.
#
# Every cache the tests can reuse starts empty (scripts/cold_caches.sh), so the run compiles
# everything a fresh clone would. Prints pytest's summary
# and the wall time. Extra arguments go to pytest (e.g. -m "slow or not slow").
#
# Usage: scripts/cold_tests.sh [pytest arguments]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/scripts/cold_caches.sh" cold-tests
cd "$here"
echo "cold test run; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
code=0
"$python" -m pytest -q "$@" || code=$?
end=$(date +%s.%N)
echo "wall: $("$python" -c "print(f'{$end - $start:.1f}')") s; exit code $code; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$code"
