"""Tables and plots drawn from saved result JSON: ``python -m gan_accel.bench report FILE...``.

One file: redraw its markdown table and PNG. Two or more files of the same suite: a side-by-
side comparison (e.g. CPU vs GPU, or two dates) of each row's metric, with the ratio against
the first file, as ``compare-<suite>-<stems>.md`` / ``.png``.
"""

from __future__ import annotations

from pathlib import Path

from gan_accel.errors import UserError

from .document import SUITES_META, fmt, load_document

# (header, row key) per suite; unknown suites (e.g. quality) get every key of their rows
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "inference": [("model", "model"), ("backend", "backend"), ("batch", "batch"),
                  ("p20 ms", "p20_ms"), ("p50 ms", "p50_ms"), ("p80 ms", "p80_ms"),
                  ("images/s", "images_per_s"), ("speedup vs eager", "speedup"),
                  ("compile s", "compile_s"), ("export s", "export_s"),
                  ("min MB", "min_mb"), ("GB/s", "achieved_gbps"),
                  ("BW-bound ms", "bw_bound_ms"), ("BW fraction", "bw_fraction"),
                  ("launch-bound ms", "launch_bound_ms"), ("bulk / engine", "vs_engine_row"),
                  ("status", "status")],
    "train": [("model", "model"), ("mode", "mode"), ("batch", "batch"), ("phases", "phases"),
              ("p20 ms/step", "p20_ms"), ("p50 ms/step", "p50_ms"), ("p80 ms/step", "p80_ms"),
              ("images/s", "images_per_s"), ("speedup vs eager", "speedup"),
              ("compile s", "compile_s"), ("peak mem MB", "peak_mem_mb"),
              ("step mem MB", "step_mem_mb"), ("status", "status")],
    "kernels": [("op", "op"), ("shape", "shape"), ("pass", "pass"), ("impl", "impl"),
                ("p20 µs", "p20_us"), ("µs/call (p50)", "us_per_call"), ("p80 µs", "p80_us"),
                ("speedup vs baseline", "speedup"), ("GPU µs (graph replay)", "gpu_p50_us"),
                ("GPU speedup", "gpu_speedup"), ("CUDA kernels", "cuda_kernels"),
                ("GB/s", "gbps"), ("BW fraction", "bw_fraction"), ("status", "status")],
    "profile": [("kind", "kind"), ("name", "name"), ("calls", "calls"),
                ("self ms", "self_ms"), ("total ms", "total_ms")],
    "serve": [("engine", "engine"), ("mode", "mode"), ("batch", "batch"),
              ("concurrency", "concurrency"), ("images / request", "images_per_request"),
              ("requests", "requests"), ("answered", "answered"), ("errors", "errors"),
              ("status codes", "codes"), ("requests/s", "requests_per_s"),
              ("images/s", "images_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
              ("status", "status")],
    "quality": [("model", "model"), ("mode", "mode"), ("seed", "seed"), ("steps", "steps"),
                ("feature space", "feature_space"), ("FID", "fid"),
                ("FID / floor", "fid_ratio"), ("KID", "kid"), ("precision", "precision"),
                ("recall", "recall"), ("density", "density"), ("coverage", "coverage"),
                ("classes", "classes_present"), ("largest share", "largest_class_share"),
                ("largest share / real share", "max_share_ratio"),
                ("its real-vs-real floor", "max_share_ratio_floor"),
                ("label acc", "label_accuracy"),
                ("code acc", "code_accuracy"), ("spread", "spread_ratio"),
                ("D probe", "d_probe_accuracy"),
                ("train s", "train_s"), ("compile s", "compile_s"),
                ("all targets at s", "ttq_all_s"), ("at step", "ttq_all_step"),
                ("targets", "targets"), ("status", "status")],
}


def _derived(row: dict) -> dict:
    row = dict(row)
    if row.get("min_bytes") is not None:
        row["min_mb"] = round(row["min_bytes"] / 1e6, 3)
    for q in ("p20", "p80"):
        if row.get(f"{q}_ms") is not None:
            row[f"{q}_us"] = round(row[f"{q}_ms"] * 1e3, 3)
    return row


def columns_for(doc: dict) -> list[tuple[str, str]]:
    if doc["suite"] in COLUMNS:
        return COLUMNS[doc["suite"]]
    keys: list[str] = []
    for r in doc.get("rows", []):
        keys += [k for k in r if k not in keys and k != "suite"]
    return [(k, k) for k in keys]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def env_summary(doc: dict) -> str:
    e = doc["env"]
    load = f"{e.get('loadavg_start')} -> {e.get('loadavg_end')}"
    return (f"- device: {e['device_name']} ({e['device']}); {e['cpu_cores']} CPU cores, "
            f"{e['threads']} threads\n"
            f"- torch {e['torch']}, triton {e['triton']}, onnxruntime {e['onnxruntime']}, "
            f"python {e['python']} (torch CUDA build {e.get('cuda')})\n"
            f"- commit {e.get('git_commit')}; {e['timestamp']}; load average {load}\n"
            f"- peak memory bandwidth: {fmt(e.get('peak_bandwidth_gbps'))} GB/s\n")


def render_markdown(doc: dict) -> str:
    """The markdown report of one result document."""
    cols = columns_for(doc)
    used = [(h, k) for h, k in cols
            if any(_derived(r).get(k) is not None for r in doc["rows"]) or k == "speedup"]
    body = [[fmt(_derived(r).get(k)) for _, k in used] for r in doc["rows"]]
    quick = " (--quick)" if doc.get("quick") else ""
    parts = [f"# bench: {doc['suite']}{quick}\n", env_summary(doc),
             "\nconfig: `" + ", ".join(f"{k}={v}" for k, v in doc["config"].items()) + "`\n"]
    if doc.get("notes"):
        parts.append("\n" + "\n".join(f"- {n}" for n in doc["notes"]) + "\n")
    parts.append("\n" + _table([h for h, _ in used], body))
    return "".join(parts)


# -- comparisons ---------------------------------------------------------------------------
def _key(doc: dict, row: dict) -> tuple:
    return tuple(row.get(k) for k in SUITES_META.get(doc["suite"], {"key": ("name",)})["key"])


def _label(doc: dict) -> str:
    e = doc["env"]
    return f"{e['device_slug']} {e['threads']}t {e['timestamp'][:16].replace('T', ' ')}"


def _labels(docs: list[dict]) -> list[str]:
    """One distinct label per document (run index appended where two would read the same)."""
    labels = [_label(d) for d in docs]
    return [f"{lab} #{i + 1}" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)]


def compare_markdown(docs: list[dict]) -> str:
    """Side-by-side table of the suite's metric over ``docs`` (same suite), ratio vs the first."""
    suite = docs[0]["suite"]
    meta = SUITES_META.get(suite)
    if meta is None:
        raise UserError(f"bench report: no comparison defined for suite {suite!r}")
    metric = meta["metric"]
    labels = _labels(docs)
    keys: list[tuple] = []
    by_doc = []
    for d in docs:
        table = {}
        for r in d["rows"]:
            k = _key(d, r)
            table[k] = r.get(metric)
            if k not in keys:
                keys.append(k)
        by_doc.append(table)
    better = "higher" if meta["higher_is_better"] else "lower"
    headers = list(meta["key"]) + [f"{metric} [{lab}]" for lab in labels]
    headers += [f"ratio {lab} / {labels[0]}" for lab in labels[1:]]
    body = []
    for k in keys:
        vals = [t.get(k) for t in by_doc]
        ratios = [fmt(v / vals[0]) if v and vals[0] else "N/A" for v in vals[1:]]
        body.append([fmt(x) for x in k] + [fmt(v) for v in vals] + ratios)
    head = [f"# bench comparison: {suite} ({metric}, {better} is better)\n"]
    for lab, d in zip(labels, docs, strict=True):
        head.append(f"\n## {lab}: {Path(d['_path']).name}\n" + env_summary(d))
    return "".join(head) + "\n" + _table(headers, body)


# -- plots ---------------------------------------------------------------------------------
def render_plot(docs: list[dict], path: Path) -> Path | None:
    """Draw the suite's PNG (one doc) or a comparison (several); None if nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suite = docs[0]["suite"]
    drawer = {"inference": _plot_inference, "train": _plot_bars,
              "kernels": _plot_kernels, "quality": _plot_quality,
              "serve": _plot_serve}.get(suite)
    if drawer is None:
        return None
    fig = drawer(plt, docs)
    if fig is None:
        return None
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _ok(rows: list[dict], metric: str) -> list[dict]:
    return [r for r in rows if r.get(metric)]


def _plot_inference(plt, docs):
    fig, ax = plt.subplots(figsize=(8, 5.5))
    styles = ["-", "--", ":", "-."]
    drawn = False
    labels = _labels(docs)
    for i, d in enumerate(docs):
        rows = _ok(d["rows"], "images_per_s")
        for backend in dict.fromkeys(r["backend"] for r in rows):
            pts = sorted((r["batch"], r["images_per_s"]) for r in rows if r["backend"] == backend)
            label = backend if len(docs) == 1 else f"{backend} [{labels[i]}]"
            ax.plot(*zip(*pts, strict=True), styles[i % 4], marker="o", ms=3, label=label)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("images / s")
    model = docs[0]["config"].get("model", "")
    ax.set_title(f"{model} generator inference: " + " vs ".join(labels), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _plot_serve(plt, docs):
    """Serve: single-image requests/s and p99 against concurrency, a line per engine and
    batching mode."""
    fig, (rps, p99) = plt.subplots(1, 2, figsize=(10, 4.5))
    labels = _labels(docs)
    drawn = False
    for d, lab in zip(docs, labels, strict=True):
        rows = [r for r in d["rows"] if r.get("images_per_request") == 1
                and r.get("mode") in ("batching", "no batching") and r.get("requests_per_s")]
        for key in dict.fromkeys((r["engine"], r["mode"]) for r in rows):
            pts = sorted((r["concurrency"], r["requests_per_s"], r["p99_ms"]) for r in rows
                         if (r["engine"], r["mode"]) == key)
            name = f"{key[0]} {key[1]}" + ("" if len(docs) == 1 else f" [{lab}]")
            xs = [p[0] for p in pts]
            rps.plot(xs, [p[1] for p in pts], marker="o", label=name)
            p99.plot(xs, [p[2] for p in pts], marker="o", label=name)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    for ax, what in ((rps, "requests / s"), (p99, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    rps.legend(fontsize=8)
    fig.suptitle("gan-accel serve, single-image PNG requests: " + " vs ".join(labels),
                 fontsize=10)
    return fig


def _plot_bars(plt, docs):
    """Train: images/s per variant, one bar per mode (and per run when comparing)."""
    series: dict[str, dict[str, float]] = {}
    models: list[str] = []
    labels = _labels(docs)
    for d, lab in zip(docs, labels, strict=True):
        for r in _ok(d["rows"], "images_per_s"):
            name = r["mode"] if len(docs) == 1 else f"{r['mode']} [{lab}]"
            series.setdefault(name, {})[r["model"]] = r["images_per_s"]
            if r["model"] not in models:
                models.append(r["model"])
    if not series:
        return None
    return _bars(plt, models, series, "images / s (one training step, all phases)",
                 "training step throughput: " + " vs ".join(labels), log=True)


def _plot_kernels(plt, docs):
    """Kernels: speedup vs the baseline per shape and pass, one bar per implementation."""
    series: dict[str, dict[str, float]] = {}
    groups: list[str] = []
    labels = _labels(docs)
    for d, lab in zip(docs, labels, strict=True):
        for r in _ok(d["rows"], "speedup"):
            if r["impl"] == r.get("baseline"):
                continue
            op = {"spectral_norm": "SN", "gp_norm": "GP", "seed_D_sn": "seed D SN",
                  "dispatch": "dispatch"}.get(r["op"], r["op"])
            group = f"{op} {r['shape']} {r['pass']}"
            name = r["impl"] if len(docs) == 1 else f"{r['impl']} [{lab}]"
            series.setdefault(name, {})[group] = r["speedup"]
            if group not in groups:
                groups.append(group)
    if not series:
        return None
    fig = _bars(plt, groups, series, "speedup vs PyTorch baseline (x)",
                "kernels: " + " vs ".join(labels), log=False)
    fig.axes[0].axhline(1.0, color="k", lw=0.8)
    return fig


def _plot_quality(plt, docs):
    """Time to quality: FID / floor against training seconds, a line per variant and mode."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    labels = _labels(docs)
    drawn = False
    colors: dict[str, object] = {}
    for i, d in enumerate(docs):
        for r in d["rows"]:
            pts = [(e["train_seconds"], e["fid_ratio"]) for e in r.get("curve") or []
                   if e.get("fid_ratio") is not None]
            if not pts:
                continue
            color = colors.setdefault(r["model"], f"C{len(colors) % 10}")
            style = "-" if r.get("mode", "eager") == "eager" else "--"
            label = f"{r['model']} {r.get('mode', '')}".strip()
            if len({row.get("seed") for row in d["rows"]}) > 1:
                label += f" seed {r['seed']}"
            if len(docs) > 1:
                label += f" [{labels[i]}]"
            ax.plot(*zip(*pts, strict=True), style, color=color, marker="o", ms=2.5, lw=1.2,
                    label=label)
            if r.get("ttq_all_s") is not None:
                ax.axvline(r["ttq_all_s"], color=color, lw=0.6, ls=":")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    for y, text in ((10, "dcgan target"), (20, "other variants' target")):
        ax.axhline(y, color="k", lw=0.7, ls="-.")
        ax.text(ax.get_xlim()[0], y * 1.04, text, fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("training seconds (evaluation excluded)")
    ax.set_ylabel("FID / real-data floor")
    dataset = docs[0]["config"].get("dataset", "")
    ax.set_title(f"time to quality on {dataset}: " + " vs ".join(labels) +
                 " (dotted: all targets met)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return fig


def _bars(plt, groups: list[str], series: dict[str, dict[str, float]], ylabel: str,
          title: str, log: bool):
    import numpy as np

    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(7, 0.55 * len(groups) * max(1, len(series) / 2)), 5))
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        ys = [vals.get(g, 0) for g in groups]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, ys, width, label=name)
    ax.set_xticks(x, groups, rotation=45, ha="right", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# -- CLI -----------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    from gan_accel.errors import OneLineParser

    parser = OneLineParser(prog="python -m gan_accel.bench report",
                           description="Redraw tables/plots from saved bench JSON; two or "
                                       "more files of one suite are compared side by side.")
    parser.add_argument("files", nargs="+", type=Path, help="result .json files")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where to write (default: beside the first file)")
    args = parser.parse_args(argv)
    docs = [load_document(p) for p in args.files]
    out = args.out_dir or args.files[0].parent
    out.mkdir(parents=True, exist_ok=True)
    if len(docs) == 1:
        stem = args.files[0].stem
        md = out / f"{stem}.md"
        md.write_text(render_markdown(docs[0]))
        png = render_plot(docs, out / f"{stem}.png")
        print(render_markdown(docs[0]))
        print("wrote", md, png or "(no plot for this suite)")
        return 0
    suites = {d["suite"] for d in docs}
    if len(suites) > 1:
        raise UserError(f"bench report: cannot compare different suites {sorted(suites)}; "
                         "pass files of one suite")
    stem = "compare-" + "-vs-".join(p.stem for p in args.files)
    md = out / f"{stem}.md"
    text = compare_markdown(docs)
    md.write_text(text)
    png = render_plot(docs, out / f"{stem}.png")
    print(text)
    print("wrote", md, png or "(no plot for this suite)")
    return 0
