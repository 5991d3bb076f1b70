"""The layers, top to bottom: command lines -> bench -> export -> the library -> kernels.

A lower layer never imports a higher one, the library's modules import each other without
loops, and the wheel puts one top-level name into site-packages.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import REPO

# where each layer's sources live in the repository, and its import name
FOLDERS = {"gan_accel": REPO / "gan_accel", "gan_accel.kernels": REPO / "kernels",
           "gan_accel.export": REPO / "export", "gan_accel.bench": REPO / "bench"}
CLI = "gan_accel.cli"
# ``python -m gan_accel.<verb>`` shims: command lines that live beside the library
ENTRY_POINTS = {"gan_accel.__main__", "gan_accel.train", "gan_accel.sample", "gan_accel.serve",
                "gan_accel.evaluate", "gan_accel.export.__main__", "gan_accel.bench.__main__"}
LAYERS = [CLI, "gan_accel.bench", "gan_accel.export", "gan_accel", "gan_accel.kernels"]


def _module_names() -> dict[str, Path]:
    names = {}
    for pkg, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([pkg, *parts])
            if pkg == "gan_accel" and parts and parts[0] in ("kernels", "export", "bench"):
                continue
            names[name] = path
    return names


MODULES = _module_names()


def layer_of(module: str) -> str:
    """The layer a module belongs to: the longest matching prefix in LAYERS."""
    for layer in sorted(LAYERS, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    raise AssertionError(module)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(module: str, path: Path, *, nested: bool) -> set[str]:
    """Modules ``module`` imports (absolute names; ``nested``: also inside functions)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # annotations only, never executed
            if not nested and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module
                found.add(target)
                found.update(f"{target}.{a.name}" for a in child.names)
            visit(child)

    visit(tree)
    return {m for m in found if m.split(".")[0] in ("gan_accel", "kernels", "export", "bench")}


def test_no_module_imports_a_layer_above_its_own():
    """Every import statement, lazy ones inside functions included."""
    order = {layer: i for i, layer in enumerate(LAYERS)}  # 0 = top
    offenders = []
    for module, path in MODULES.items():
        if module in ENTRY_POINTS:
            continue
        mine = order[layer_of(module)]
        for target in imports_of(module, path, nested=True):
            if target.split(".")[0] != "gan_accel":
                offenders.append(f"{module} imports the top-level name {target}")
                continue
            if target in MODULES and order[layer_of(target)] < mine:
                offenders.append(f"{module} ({layer_of(module)}) imports {target}")
    assert not offenders, "\n".join(offenders)


def test_library_modules_import_each_other_without_loops():
    """Module-level imports of the library form a DAG (lazy imports are only for speed)."""
    def ancestors(m: str) -> set[str]:
        parts = m.split(".")
        return {".".join(parts[:i]) for i in range(2, len(parts))} & set(MODULES)

    graph = {}
    for m, p in MODULES.items():
        if m in ENTRY_POINTS:
            continue
        targets = {t for t in imports_of(m, p, nested=False) if t in MODULES and t != m}
        # importing another package's module runs that package's __init__ first
        graph[m] = targets | {a for t in targets for a in ancestors(t) - ancestors(m) - {m}}
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m: str):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                raise AssertionError("import loop: " + " -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                dfs(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            dfs(m)


def test_importing_the_library_loads_no_higher_layer():
    """A fresh interpreter imports every library and kernels module: no CLI, bench or export
    module (nor a top-level kernels/export/bench) is in sys.modules afterwards."""
    library = sorted(m for m in MODULES
                     if layer_of(m) in ("gan_accel", "gan_accel.kernels") and m not in ENTRY_POINTS)
    code = ("import importlib, sys\n"
            f"for m in {library!r}:\n"
            "    importlib.import_module(m)\n"
            "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('kernels', 'export', "
            "'bench') or k.startswith(('gan_accel.cli', 'gan_accel.export', 'gan_accel.bench')))\n"
            "print(bad)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=REPO / "tests")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]", proc.stdout


def test_the_checks_above_see_a_forbidden_import(tmp_path):
    """The import scanner resolves relative and lazy imports (so the tests can fail)."""
    src = tmp_path / "mod.py"
    src.write_text("from ..cli import train\n\ndef f():\n    from ..export import runtime\n")
    assert imports_of("gan_accel.training.mod", src, nested=True) >= {
        "gan_accel.cli", "gan_accel.export.runtime"}
    assert "gan_accel.export" not in imports_of("gan_accel.training.mod", src, nested=False)


@pytest.mark.slow
def test_wheel_installs_only_gan_accel(tmp_path):
    """``pip wheel .``: one top-level package, with kernels, export, bench and the assets."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("gan_accel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"gan_accel"}, sorted(top)
    for needed in ("gan_accel/kernels/grad_penalty.py", "gan_accel/export/runtime.py",
                   "gan_accel/bench/__main__.py", "gan_accel/cli/__init__.py",
                   "gan_accel/assets/classifier-mnist-5k.safetensors",
                   "gan_accel/assets/mnist5k-images-idx3-ubyte.gz"):
        assert needed in names, needed
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "gan-accel = gan_accel.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
