# Sourced by scripts/cold_start.sh and scripts/cold_tests.sh: every cache a run can reuse
# starts empty. Inductor's cache (TORCHINDUCTOR_CACHE_DIR), its precompiled headers (kept in
# TMPDIR/torchinductor_USER whatever the cache directory) and Triton's caches (TRITON_CACHE_DIR,
# TRITON_HOME) point into a new temporary folder, so nothing another process uses is wiped;
# the checkout's __pycache__ folders are removed.
# Needs $here (the checkout) and one argument (a name for the folder); sets $python and $work
# (removed on exit).
python="${PYTHON:-$( [ -x "$here/.venv/bin/python" ] && echo "$here/.venv/bin/python" || echo python)}"
# mktemp replaces the trailing X characters with a unique suffix
work="$(mktemp -d "${TMPDIR:-/tmp}/gan-accel-$1.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export TORCHINDUCTOR_CACHE_DIR="$work/inductor"
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
export TRITON_CACHE_DIR="$work/triton/cache"
export TRITON_HOME="$work/triton"
find "$here" -path "$here/.git" -prune -o -name __pycache__ -type d -prune -exec rm -rf {} + \
    2>/dev/null || true
