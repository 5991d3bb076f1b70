"""What an exported generator carries in its ONNX ``metadata_props`` (no torch needed).

Every value is a plain string, so any ONNX viewer shows it. ``ModelMeta`` is the parsed form:
enough to draw the generator's inputs and read its pixels without the training checkpoint.
``image_shape`` (``"3x64x64"``) is the ``[C, H, W]`` of one image: 1 (grey) or 3 (RGB)
channels. Exports written before it existed lack it; their runtimes read the shape from the
graph's output (every such export is 1x28x28).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..latent import LatentSpec
from ..ranges import OutputRange

FORMAT = "gan-accel-onnx/1"
PT2_FORMAT = "gan-accel-pt2/1"  # the same keys, in an AOTInductor package's metadata
OUTPUT_NAME = "image"
IMAGE_CHANNELS = (1, 3)  # grey or RGB: what PNG grids, shards and the web page draw


def format_image_shape(shape: tuple[int, int, int]) -> str:
    """``(3, 64, 64)`` -> ``"3x64x64"``."""
    return "x".join(str(int(s)) for s in shape)


def parse_image_shape(text: str) -> tuple[int, int, int]:
    """``"3x64x64"`` -> ``(3, 64, 64)``; ValueError for anything else."""
    parts = text.split("x")
    if len(parts) != 3:
        raise ValueError(f"image_shape {text!r} is not CxHxW")
    c, h, w = (int(p) for p in parts)
    return (c, h, w)


@dataclass(frozen=True)
class ModelMeta:
    """The facts a runtime needs: variant, latent spec, pixel range, provenance."""

    variant: str
    z_dim: int
    z_dist: str = "normal"
    num_classes: int = 0  # > 0: a ``label`` int64 [B] input
    cat_dim: int = 0  # codes = one-hot(cat_dim) ++ U(-1, 1)^cont_dim
    cont_dim: int = 0
    output_range: str = "unit"
    step: int | None = None  # training steps behind the weights (None: untrained/unknown)
    dtype: str = "float32"  # the weights' and activations' dtype inside the graph
    io_dtype: str = "float32"  # the dtype of the float inputs and of ``image``
    opset: int = 0
    exporter: str = "dynamo"
    source: str = ""  # the checkpoint the weights came from, if any
    ema: bool = False
    versions: dict = field(default_factory=dict)  # gan_accel, torch, onnx
    quantization: dict = field(default_factory=dict)  # int8 exports: calibration, gate, ops
    image_shape: tuple[int, int, int] | None = None  # [C, H, W]; None: an older export

    @property
    def latent(self) -> LatentSpec:
        """The generator's input layout (ValueError for impossible sizes). Built from the
        fields directly: ``asdict`` deep-copies and cost ~30 us per served call."""
        return LatentSpec(self.z_dim, self.z_dist, self.num_classes, self.cat_dim,
                          self.cont_dim)

    @property
    def input_names(self) -> list[str]:
        return self.latent.input_names

    @property
    def code_dim(self) -> int:
        return self.cat_dim + self.cont_dim

    def to_props(self, fmt: str = FORMAT) -> dict[str, str]:
        """Flat ``{key: string}`` for ``ModelProto.metadata_props`` (or a .pt2's metadata)."""
        d = asdict(self)
        props = {"format": fmt}
        for key, value in d.items():
            if key == "versions":
                props.update({f"version.{k}": str(v) for k, v in value.items()})
            elif key == "quantization":
                props.update({f"quant.{k}": str(v) for k, v in value.items()})
            elif key == "image_shape":
                props[key] = "" if value is None else format_image_shape(value)
            elif value is None:
                props[key] = ""
            else:
                props[key] = str(value).lower() if isinstance(value, bool) else str(value)
        props["input_names"] = ",".join(self.input_names)
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], where: str = "model",
                   fmt: str = FORMAT) -> ModelMeta:
        """Parse :meth:`to_props` output; ValueError naming ``where`` if it is not ours."""
        if props.get("format") != fmt:
            raise ValueError(f"{where} has no gan-accel metadata (format {fmt!r}); export it "
                             "with `python -m gan_accel.export`")
        try:
            meta = cls(
                variant=props["variant"], z_dim=int(props["z_dim"]), z_dist=props["z_dist"],
                num_classes=int(props["num_classes"]), cat_dim=int(props["cat_dim"]),
                cont_dim=int(props["cont_dim"]), output_range=props["output_range"],
                step=int(props["step"]) if props.get("step") else None,
                dtype=props["dtype"], io_dtype=props.get("io_dtype", "float32"),
                opset=int(props.get("opset", 0)), exporter=props.get("exporter", ""),
                source=props.get("source", ""), ema=props.get("ema") == "true",
                versions={k[len("version."):]: v for k, v in props.items()
                          if k.startswith("version.")},
                quantization={k[len("quant."):]: v for k, v in props.items()
                              if k.startswith("quant.")},
                image_shape=(parse_image_shape(props["image_shape"])
                             if props.get("image_shape") else None))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{where} has broken gan-accel metadata ({exc!r}); "
                             "re-export it") from None
        meta.check(where)
        return meta

    def check(self, where: str = "model") -> None:
        try:
            LatentSpec.from_meta(asdict(self))
        except ValueError as exc:
            raise ValueError(f"{where}: its metadata has an impossible latent ({exc})") from None
        try:
            OutputRange(self.output_range)
        except ValueError:
            raise ValueError(f"{where}: unknown output range {self.output_range!r}") from None
        if self.image_shape is not None:
            check_image_shape(self.image_shape, where)


def check_image_shape(shape, where: str = "model") -> tuple[int, int, int]:
    """``shape`` as a ``(C, H, W)`` tuple of ints; ValueError naming ``where`` unless C is 1
    or 3 and H, W are positive."""
    shape = tuple(shape)
    if (len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape)
            or shape[0] not in IMAGE_CHANNELS):
        raise ValueError(f"{where}: image shape {list(shape)} is not [C, H, W] with C in "
                         f"{IMAGE_CHANNELS}; re-export it")
    return shape
