"""``python -m gan_accel.sample``: image grids or bulk shards from a trained generator.

Plain grids (``--out FILE.png``) come from a checkpoint, an exported ONNX generator or an
AOTInductor ``.pt2`` package. ``--out DIR`` streams ``--n`` images (millions if need be)
into shards in DIR (:mod:`gan_accel.export.bulk`: deterministic in the seed whatever the
shard size, resumable, flat memory), with a progress bar and the images/s reached::

    python -m gan_accel.sample --onnx g-int8.onnx --n 1000000 --out samples/   # .npz shards

With a checkpoint, four applications each write one PNG:

* ``--class-grid``: cGAN / InfoGAN, 10x10, row k = class k (or categorical code k).
* ``--interpolate K``: latent interpolation strips, one row per pair of sample indices.
* ``--arithmetic EXPR``: latent vector arithmetic on mean latents of chosen samples.
* ``--sweep [K]``: InfoGAN, each continuous code swept from -1 to 1 for every category.

*Sample index* ``i`` everywhere means image ``i`` of the plain grid written with the same
``--checkpoint``, ``--seed``, ``--n`` and ``--label``: look at that grid, pick images, then
interpolate between them or do arithmetic on them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import latent_apps
from ..errors import OneLineParser, UserError, run_cli

if TYPE_CHECKING:  # torch loads inside the functions: bulk sampling from ONNX never needs it
    import torch

ARITHMETIC_HELP = (
    "latent vector arithmetic: EXPR is terms joined by + and -, each term a comma-separated "
    "list of sample indices standing for the mean of their latents, e.g. '1,2,3 - 4,5 + 6' = "
    "mean(z1,z2,z3) - mean(z4,z5) + mean(z6) (the 'smiling woman - woman + man' recipe). "
    "Rows of the PNG: each term's samples followed by the image of its mean latent; the last "
    "row: the result, then the result with small noise added")


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="gan_accel.sample",
        description="Write a PNG grid of samples, or one of the latent-space applications.",
        epilog="Sample index i in --pairs / --arithmetic means image i of the plain grid "
               "written with the same --checkpoint, --seed, --n and --label (row-major).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="RUN_DIR", help="run dir or checkpoint .json")
    src.add_argument("--onnx", metavar="FILE", help="exported generator (.onnx)")
    src.add_argument("--pt2", metavar="FILE", help="AOTInductor package (.pt2)")
    p.add_argument("--out", default="samples.png",
                   help="output PNG grid (default: samples.png), or a folder: bulk shards")
    p.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    p.add_argument("--nrow", type=int, default=0, help="images per row (0: square-ish)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--label", type=int, default=None,
                   help="class to generate (conditional models; infogan: categorical code)")
    p.add_argument("--best", action="store_true", help="use the run's best checkpoint")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="sample the EMA generator (default: when the run kept one) or, with "
                        "--no-ema, the trained G itself")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    bulk = p.add_argument_group("bulk sampling (--out DIR)")
    bulk.add_argument("--shard-size", type=int, default=None, metavar="N",
                      help=f"images per shard (default: {BULK_DEFAULTS['shard_size']:,})")
    bulk.add_argument("--shard-format", choices=("npz", "png"), default=None,
                      help="npz: uint8 images + labels/codes per shard file (default); png: "
                           "a folder of PNG files per shard")
    bulk.add_argument("--batch", type=int, default=None, metavar="B",
                      help=f"images per generator call (default: {BULK_DEFAULTS['batch']})")
    bulk.add_argument("--threads", type=int, default=None, metavar="N",
                      help="CPU threads of the engine (default: the CPUs this process may "
                           "use)")
    bulk.add_argument("--no-progress", action="store_true", help="no progress bar")
    apps = p.add_argument_group("applications (need --checkpoint; each writes --out)")
    one = apps.add_mutually_exclusive_group()
    one.add_argument("--class-grid", action="store_true",
                     help="cgan / infogan: 10x10 grid, row k = class k (infogan: categorical "
                          "code k), column j = the latent of sample j")
    one.add_argument("--interpolate", type=int, metavar="K",
                     help="latent interpolation: one row per --pairs pair, K images from the "
                          "first sample to the second (ends included)")
    one.add_argument("--arithmetic", metavar="EXPR", help=ARITHMETIC_HELP)
    one.add_argument("--sweep", type=int, nargs="?", const=10, metavar="K",
                     help="infogan: for each continuous code a 10-row block (row = categorical "
                          "code, noise of sample row) sweeping that code over K values from -1 "
                          "to 1, the other continuous codes at 0 (default K: 10)")
    apps.add_argument("--pairs", default=None, metavar="I:J,...",
                      help="--interpolate endpoints as sample indices, e.g. '0:5,3:9' "
                           "(default: 0:1,2:3,...,14:15 limited to --n)")
    apps.add_argument("--path", choices=[p.value for p in latent_apps.InterpolationPath],
                      default=latent_apps.InterpolationPath.SLERP.value,
                      help="--interpolate path of the noise z: spherical (slerp) or straight "
                           "(default: slerp); InfoGAN codes always move linearly")
    return p


BULK_DEFAULTS = {"shard_size": 10_000, "shard_format": "npz", "batch": 4096,
                 "threads": None, "no_progress": False}
GRID_MAX = 4096  # images one PNG grid may hold


def is_bulk(path: Path) -> bool:
    """``--out`` names a folder (bulk shards) rather than a .png grid."""
    return path.is_dir() or (path.suffix == "" and not path.is_file())


def check_output(path: Path) -> None:
    if path.suffix.lower() != ".png":
        raise UserError(f"--out {path} must end in .png (one grid) or name a folder without "
                        "an extension (bulk shards)")
    if not path.parent.exists() or not path.parent.is_dir():
        raise UserError(f"folder {path.parent} does not exist; create it first")


def _fixed_kw(spec, label: int | None, n: int, flag: str = "--label") -> dict:
    """``label=`` / ``cat=`` keywords fixing every sample's class (empty without --label)."""
    import torch

    if label is None:
        return {}
    _check_class(spec, label, flag)
    return spec.class_kwargs(torch.full((n,), label, dtype=torch.long))


def _check_class(spec, label: int, flag: str = "--label") -> None:
    try:
        spec.check_class(label, flag)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def sample_pool(spec, n: int, seed: int, label: int | None) -> dict[str, torch.Tensor]:
    """The latents of the plain grid: ``spec.sample(n)`` from ``seed`` (on the CPU)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return spec.sample(n, "cpu", gen, **_fixed_kw(spec, label, n))


def sample_checkpoint(args) -> tuple[torch.Tensor, str]:
    variant = _load(args)
    latent = sample_pool(variant.latent, args.n, args.seed, args.label)
    return _generate(variant, latent, args.device), variant.output_range


def _load(args):
    from ..checkpoints import load_trained

    variant, _ = load_trained(args.checkpoint, "best" if args.best else "last", args.ema,
                              args.device)
    return variant


def _generate(variant, latent: dict, device) -> torch.Tensor:
    """G on a latent of torch tensors or numpy arrays (what :mod:`gan_accel.latent_apps`
    returns)."""
    import torch

    with torch.no_grad():
        return variant.G(**{k: torch.as_tensor(v).to(device) for k, v in latent.items()}).cpu()


def _numpy(latent: dict[str, torch.Tensor]) -> dict:
    return {k: v.numpy() for k, v in latent.items()}


def _blank(output_range: str, image_shape: tuple[int, ...], n: int = 1) -> torch.Tensor:
    """``n`` mid-grey tiles (no image) of ``image_shape`` ``(C, H, W)`` in the generator's
    range (grey in every channel: RGB grids of a colour model stay RGB)."""
    import torch

    return torch.full((n, *image_shape), 0.0 if output_range == "symmetric" else 0.5)


# ----------------------------------------------------------------------------- applications
# The latents come from gan_accel.latent_apps; here: flags in, the pool drawn, G run, tiles.


def class_grid(variant, args) -> tuple[torch.Tensor, int, str]:
    """10 x 10: row k = class / categorical code k, column j = the latent of sample j."""
    spec = variant.latent
    if not spec.num_labels:
        raise UserError(f"--class-grid needs a cgan or infogan model; {variant.name} has no "
                        "classes or categorical code")
    if args.label is not None:
        raise UserError("--class-grid shows every class; drop --label")
    pool = sample_pool(spec, max(args.n, latent_apps.GRID_COLUMNS), args.seed, None)
    latent = latent_apps.class_grid(spec, _numpy(pool))
    return (_generate(variant, latent, args.device), latent_apps.GRID_COLUMNS,
            f"{spec.num_labels}x{latent_apps.GRID_COLUMNS} class grid")


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """:func:`gan_accel.latent_apps.slerp` on torch tensors."""
    import torch

    return torch.from_numpy(latent_apps.slerp(a.numpy(), b.numpy(), t.numpy()))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """:func:`gan_accel.latent_apps.lerp` on torch tensors."""
    import torch

    return torch.from_numpy(latent_apps.lerp(a.numpy(), b.numpy(), t.numpy()))


def parse_pairs(text: str | None, n: int) -> list[tuple[int, int]]:
    """``--pairs "0:1,2:3"`` -> ``[(0, 1), (2, 3)]``; default: up to 8 consecutive pairs."""
    if text is None:
        if n < 2:
            raise UserError("--interpolate needs --n >= 2 (two samples per pair)")
        return latent_apps.default_pairs(n)
    return latent_apps.parse_pairs(text, n, "--pairs")


def parse_arithmetic(expr: str, n: int) -> list[tuple[float, list[int]]]:
    """``--arithmetic "1,2,3 - 4,5 + 6"`` -> ``[(+1, [1, 2, 3]), (-1, [4, 5]), (+1, [6])]``."""
    return latent_apps.parse_arithmetic(expr, n, "--arithmetic")


def interpolation(variant, args) -> tuple[torch.Tensor, int, str]:
    """One row per pair: ``args.interpolate`` steps from sample i to sample j."""
    k = latent_apps.check_steps(args.interpolate, "--interpolate")
    pairs = parse_pairs(args.pairs, args.n)
    pool = sample_pool(variant.latent, args.n, args.seed, args.label)
    latent = latent_apps.interpolation(_numpy(pool), pairs, k, args.path)
    return (_generate(variant, latent, args.device), k,
            f"{len(pairs)} {args.path} interpolation rows of {k}")


def arithmetic(variant, args) -> tuple[torch.Tensor, int, str]:
    """Rows: each term's samples then G(mean latent); last row: the result and noisy copies
    (see :func:`gan_accel.latent_apps.arithmetic`)."""
    import torch

    terms = parse_arithmetic(args.arithmetic, args.n)
    spec, out_range = variant.latent, variant.output_range
    pool = _numpy(sample_pool(spec, args.n, args.seed, args.label))
    width = max(len(idx) for _, idx in terms) + 2  # members, a grey gap, the mean
    tiles = []
    for _, idx in terms:
        members = _generate(variant, latent_apps.pick(pool, idx), args.device)
        tiles += [members, _blank(out_range, members.shape[1:], width - 1 - len(idx)),
                  _generate(variant, latent_apps.mean_latent(pool, idx), args.device)]
    gen = torch.Generator().manual_seed(args.seed + 1)
    noise = 0.25 * spec.sample_z(width - 1, "cpu", gen)  # [W-1, z_dim]
    final = latent_apps.arithmetic(pool, terms, noise.numpy())
    tiles.append(_generate(variant, final, args.device))
    formula = " ".join(f"{'-' if s < 0 else '+'} mean({','.join(map(str, i))})"
                       for s, i in terms).lstrip("+ ")
    return torch.cat(tiles), width, f"latent arithmetic {formula}"


def code_sweep(variant, args) -> tuple[torch.Tensor, int, str]:
    """InfoGAN: per continuous code, rows = categorical codes, columns = code from -1 to 1."""
    spec = variant.latent
    if not (spec.cat_dim and spec.cont_dim):
        raise UserError(f"--sweep needs an infogan model (categorical and continuous codes); "
                        f"{variant.name} has none")
    if args.label is not None:
        raise UserError("--sweep shows every categorical code; drop --label")
    k = latent_apps.check_steps(args.sweep, "--sweep")
    z = sample_pool(spec, max(args.n, spec.cat_dim), args.seed, None)["z"][:spec.cat_dim]
    latent = latent_apps.code_sweep(spec, z.numpy(), k)
    return (_generate(variant, latent, args.device), k,
            f"{spec.cont_dim} sweep blocks of {spec.cat_dim}x{k}")


# --------------------------------------------------------------------------- bulk


def _bulk_generator(args):
    """(served generator, model file, engine kind) for --onnx / --pt2 / --checkpoint; the
    ONNX path stays torch-free (torch alone adds ~500 MB of resident memory)."""
    from ..export.runtime import ModelFileError

    threads = args.threads
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    try:
        if args.onnx:
            from ..export.grid import onnx_providers
            from ..export.runtime import OnnxGenerator

            gen = OnnxGenerator(args.onnx, providers=onnx_providers(args.device),
                                threads=threads)
            return gen, Path(args.onnx), f"onnxruntime {gen.providers[0]} {gen.meta.dtype}"
        import torch

        if threads:
            torch.set_num_threads(threads)
        if args.pt2:
            from ..export.aoti import Pt2Generator

            gen = Pt2Generator(args.pt2)
            return gen, Path(args.pt2), f"aoti {gen.device}"
    except ModelFileError as exc:
        raise UserError(str(exc)) from None
    from ..devices import select_device
    from ..export.eager import load_eager

    gen = load_eager(args.checkpoint, args.best, args.ema, select_device(args.device))
    return gen, Path(gen.meta.source), f"eager {gen.device}"


def bulk_main(args, out: Path) -> int:
    """``--out DIR``: stream ``--n`` images into shards (see :mod:`gan_accel.export.bulk`)."""
    from ..export import bulk

    opts = {k: v if getattr(args, k) is None else getattr(args, k)
            for k, v in BULK_DEFAULTS.items()}
    if args.nrow:
        raise UserError("--nrow lays out a grid; drop it with --out DIR")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0 for bulk sampling, got {args.seed}")
    for flag in ("shard_size", "batch"):
        if opts[flag] < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1, got {opts[flag]}")
    if (args.best or args.ema is not None) and not args.checkpoint:
        raise UserError("--best / --ema apply to --checkpoint; an exported model holds the "
                        "weights chosen at export")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder for bulk shards")
    if not out.parent.is_dir():
        raise UserError(f"folder {out.parent} does not exist; create it first")
    gen, model_file, kind = _bulk_generator(args)
    if args.label is not None:
        _check_class(gen.meta.latent, args.label)
    plan = bulk.BulkPlan(n=args.n, seed=args.seed, shard_size=opts["shard_size"],
                         batch=opts["batch"], shard_format=opts["shard_format"],
                         label=args.label)
    ident = bulk.identity(plan, bulk.file_sha256(model_file), kind)
    todo = bulk.prepare_out_dir(out, plan, ident)
    done = plan.shards - len(todo)
    if not todo:
        print(f"{out} already holds all {plan.n:,} images ({plan.shards} shards); nothing to do")
        return 0
    resume = f"; resuming: {done} of {plan.shards} shards already there" if done else ""
    shape = "x".join(map(str, gen.image_shape))
    print(f"sampling {plan.n:,} {shape} images of {gen.meta.variant} into {out} ({plan.shards} "
          f"{plan.shard_format} shards of {plan.shard_size:,}, batch {plan.batch}, {kind}"
          f"{resume})", flush=True)
    model = {"file": str(model_file), "variant": gen.meta.variant, "dtype": gen.meta.dtype,
             "step": gen.meta.step, "output_range": gen.meta.output_range,
             "image_shape": list(gen.image_shape),
             "latent": gen.meta.latent.to_meta()}
    summary = bulk.write_shards(gen, out, plan, todo, ident, model=model,
                                progress=not opts["no_progress"])
    print(f"wrote {summary['generated']:,} images to {out} in {summary['seconds']:.1f} s: "
          f"{summary['images_per_s']:,.0f} images/s ({kind}, batch {plan.batch}; "
          f"{summary['engine_share']:.0%} of the time in the engine); peak RSS "
          f"{summary['peak_rss_mb']:.0f} MB")
    return 0


APPS = (("class_grid", class_grid), ("interpolate", interpolation),
        ("arithmetic", arithmetic), ("sweep", code_sweep))


def _chosen_app(args):
    for name, fn in APPS:
        value = getattr(args, name)
        if value not in (None, False):
            return name, fn
    return None, None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.n <= 0:
        raise UserError(f"--n must be >= 1, got {args.n}")
    out = Path(args.out)
    app, app_fn = _chosen_app(args)
    if is_bulk(out):
        if app is not None:
            raise UserError(f"--{app.replace('_', '-')} writes one PNG; pass --out FILE.png")
        return bulk_main(args, out)
    given = [k for k, v in BULK_DEFAULTS.items() if getattr(args, k) not in (None, v)]
    if given:
        raise UserError(f"--{given[0].replace('_', '-')} goes with bulk sampling; pass --out "
                        "DIR (a folder) instead of a .png")
    check_output(out)
    if args.n > GRID_MAX:
        raise UserError(f"--n {args.n:,} is too many for one PNG grid (at most {GRID_MAX}); "
                        "pass --out DIR to write shards")
    if app is None and (args.pairs is not None or args.path != "slerp"):
        raise UserError("--pairs / --path go with --interpolate K")
    from ..plots import save_grid

    if app is not None:
        flag = "--" + app.replace("_", "-")
        if args.onnx or args.pt2:
            raise UserError(f"{flag} needs --checkpoint; --onnx / --pt2 write plain grids")
        if args.nrow:
            raise UserError(f"{flag} lays out its own rows; drop --nrow")
        if app != "interpolate" and (args.pairs is not None or args.path != "slerp"):
            raise UserError("--pairs / --path go with --interpolate K")
        variant = _load(args)
        images, nrow, what = app_fn(variant, args)
        save_grid(images, out, variant.output_range, nrow=nrow)
        print(f"wrote {out} ({what})")
        return 0
    if args.onnx:
        from ..export.grid import sample_onnx_grid

        images, output_range = sample_onnx_grid(args)
    elif args.pt2:
        from ..export.grid import sample_pt2_grid

        images, output_range = sample_pt2_grid(args)
    else:
        images, output_range = sample_checkpoint(args)

    nrow = args.nrow or max(1, int(round(args.n ** 0.5)))
    save_grid(images, out, output_range, nrow=nrow)
    print(f"wrote {out} ({args.n} images)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
