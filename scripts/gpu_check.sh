#!/usr/bin/env bash
# The prepared GPU check, one command on a fresh CUDA machine without a package registry:
#
#   bash scripts/gpu_check.sh DIR [options of `python -m gan_accel.bench gpu`]
#   bash scripts/gpu_check.sh /tmp/gpu-check --bundle /somewhere/gpu-check.tar.gz
#
# When gan_accel is not importable (a bare checkout) it installs this checkout in place,
# offline and without dependencies (torch, triton, onnx, ... must already be there), or, if
# pip cannot build it, maps the package onto the checkout with a .pth finder; nothing is
# fetched. Then it runs `python -m gan_accel.bench gpu --out DIR` (bench/gpu_check.py): about
# six minutes, results in DIR as they come. PYTHON picks the interpreter (default: python3).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: bash scripts/gpu_check.sh DIR [python -m gan_accel.bench gpu options]" >&2
    exit 2
fi
out="$1"
shift
py="${PYTHON:-python3}"
importable() { "$py" -c "import gan_accel.kernels, gan_accel.bench" 2>/dev/null; }
if ! importable; then
    echo "gan_accel is not importable: installing this checkout in place (offline, no deps)"
    "$py" -m pip install --quiet --no-index --no-deps --no-build-isolation -e . 2>&1 | tail -3
fi
if ! importable; then
    # pip could not build it (no setuptools/wheel?): map gan_accel.kernels / .export / .bench
    # to this checkout's folders as the wheel does, with a finder loaded by a .pth file
    site="$("$py" -c 'import site; print(site.getsitepackages()[0])')"
    [ -w "$site" ] || site="$("$py" -c 'import site; print(site.getusersitepackages())')"
    mkdir -p "$site" || exit 1
    cat > "$site/_gan_accel_checkout.py" <<PY
"""gan_accel.kernels / .export / .bench from the checkout $PWD (scripts/gpu_check.sh)."""
import importlib.util
import sys

ROOT = "$PWD"
PARTS = {"gan_accel.kernels": "kernels", "gan_accel.export": "export", "gan_accel.bench": "bench"}


class CheckoutFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in PARTS:
            return None
        folder = ROOT + "/" + PARTS[name]
        return importlib.util.spec_from_file_location(
            name, folder + "/__init__.py", submodule_search_locations=[folder])


sys.meta_path.append(CheckoutFinder)
if ROOT not in sys.path:
    sys.path.append(ROOT)
PY
    echo "import _gan_accel_checkout" > "$site/_gan_accel_checkout.pth"
    importable || { echo "error: gan_accel does not import from $PWD" >&2; exit 1; }
    echo "gan_accel imported from $PWD through $site/_gan_accel_checkout.pth"
fi
exec "$py" -m gan_accel.bench gpu --out "$out" "$@"
