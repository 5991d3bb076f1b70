"""Training configuration: one typed dataclass, pure data.

Each variant states two recipes (its paper's or seed's hyperparameters, and the tuned one
measured here); :func:`gan_accel.variants.recipe_config` turns a model name and a recipe into
a :class:`TrainConfig`, and :mod:`gan_accel.cli.config_args` builds the command line from the
fields below.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field, fields

from .augment_policy import parse_policy
from .data import DATASETS, dataset_and_dir
from .errors import UserError
from .kernels._launch import IMPLS
from .latent import ZDist
from .models.arch import ARCH_CHOICES


class Recipe(str, enum.Enum):
    """Which of a variant's hyperparameter sets a run starts from."""

    TUNED = "tuned"  # the default: the paper recipe plus departures measured on our data
    PAPER = "paper"  # the paper's (or the seed README's) hyperparameters

    def __str__(self) -> str:
        return self.value


RECIPES = tuple(r.value for r in Recipe)
# a checkpoint written before the paper recipe had its name says "reference"
_LEGACY_RECIPES = {"reference": Recipe.PAPER.value}


def _opt(default, help: str, choices=None, **kw):
    return field(default=default, metadata={"help": help, "choices": choices, **kw})


@dataclass
class TrainConfig:
    """Everything a training run needs; presets override the defaults per model."""

    # what to train, on what
    model: str = _opt("dcgan", "GAN variant to train")
    recipe: str = _opt("tuned", "hyperparameters: tuned (measured on the embedded subset, with "
                       "its own epochs) or paper (the paper's / seed README's, 5 epochs unless "
                       "given)", choices=RECIPES)
    dataset: str = _opt("mnist-5k", f"dataset: {', '.join(DATASETS)} (folder: the images "
                        "in --data-dir), or an image folder's path")
    data_dir: str | None = _opt(None, "folder with MNIST-format IDX files (also DIR/MNIST/raw), "
                                "the image folder of --dataset folder (one subfolder per class "
                                "for labels, or flat), or the emoji font and emoji-test.txt")
    download: bool = _opt(False, "let torchvision download the dataset when a network exists")
    resolution: int = _opt(0, "image side in pixels: 28, 32 or 64 (0: the dataset's own: 28 "
                           "for MNIST-like data, 64 for emoji and folders)",
                           choices=(0, 28, 32, 64))
    channels: int = _opt(0, "image channels: 1 (grayscale) or 3 (RGB) (0: from the data; a "
                         "folder is 1 when every image is grayscale)", choices=(0, 1, 3))
    background: float | None = _opt(None, "gray level (0 black .. 1 white) transparent pixels "
                                    "are composited on and augmentation fills shifted-in "
                                    "pixels with (default: the dataset's own: 1 for emoji, "
                                    "0 otherwise)", min=0.0, max=1.0)
    # optimisation
    epochs: int = _opt(5, "number of passes over the data", min=1)
    max_steps: int = _opt(0, "stop after this many steps (0: run all epochs)", min=0)
    batch_size: int = _opt(64, "images per step (per process)", min=1)
    lr_g: float = _opt(2e-4, "generator learning rate", min=0.0, exclusive=True)
    lr_d: float = _opt(5e-4, "discriminator learning rate", min=0.0, exclusive=True)
    beta1: float = _opt(0.5, "Adam beta1", min=0.0, max=1.0)
    beta2: float = _opt(0.99, "Adam beta2", min=0.0, max=1.0)
    optimizer: str = _opt("adam", "optimizer for D and G", choices=("adam", "rmsprop"))
    plateau_factor: float = _opt(0.8, "ReduceLROnPlateau factor per net (1: off)",
                                 min=0.0, max=1.0)
    plateau_patience: int = _opt(5, "ReduceLROnPlateau patience in epochs", min=0)
    n_critic: int = _opt(1, "discriminator steps per generator step", min=1)
    # latent space and architecture
    latent_dim: int = _opt(0, "latent noise width (0: the architecture's; the tiny nets: "
                           "the seed's per variant)", min=0)
    latent_dist: str = _opt("normal", "latent noise distribution: N(0, 1) or U(-1, 1)",
                            choices=tuple(d.value for d in ZDist))
    arch: str = _opt("auto", "network architecture (auto: the variant's own at the "
                     "resolution: tiny at 28, its paper's at 32 and 64; see docs/architectures.md)",
                     choices=ARCH_CHOICES)
    ngf: int = _opt(0, "generator width (0: the architecture's paper width)", min=0)
    ndf: int = _opt(0, "discriminator width (0: the architecture's paper width)", min=0)
    num_classes: int = _opt(0, "classes of the labels cgan conditions on (0: the dataset's)",
                            min=0)
    spectral_norm: bool = _opt(True, "spectral norm on every D weight")
    d_batch_norm: bool = _opt(True, "BatchNorm in D")
    # losses and tricks
    real_label: float = _opt(0.9, "target for real images (one-sided label smoothing; 1: off)",
                             min=0.0, max=1.0)
    feature_matching: bool = _opt(False, "G matches mean D features of real and fake")
    minibatch_disc: bool = _opt(False, "minibatch discrimination layer in D")
    virtual_batch_norm: bool = _opt(False, "virtual batch norm in G: each sample normalised "
                                    "with a fixed reference batch's statistics and its own")
    historical_averaging: float = _opt(0.0, "weight of the historical-averaging penalty",
                                       min=0.0)
    augment: str = _opt("none", "differentiable augmentation of every image D sees: none, or a "
                        "comma-separated list of translation, cutout, color, affine")
    augment_p: float = _opt(1.0, "probability of each augmentation per image", min=0.0,
                            max=1.0)
    clip_value: float = _opt(0.01, "WGAN weight clipping bound", min=0.0, exclusive=True)
    gp_lambda: float = _opt(10.0, "WGAN-GP gradient penalty weight", min=0.0)
    info_cont_loss: str = _opt("mse", "InfoGAN continuous-code loss: 3-head MSE or 4-head "
                               "Gaussian NLL", choices=("mse", "nll"))
    info_categories: int = _opt(10, "InfoGAN: values of the categorical code", min=2)
    info_lr: float = _opt(1e-4, "InfoGAN info-loss learning rate (G + D)", min=0.0,
                          exclusive=True)
    info_cont_weight: float = _opt(0.1, "InfoGAN continuous-code loss weight", min=0.0)
    info_cat_weight: float = _opt(1.0, "InfoGAN categorical-code loss weight", min=0.0)
    info_phase: str = _opt("third", "InfoGAN: the info loss in a third phase with its own Adam "
                           "over G + D (the seed), or joint: added to the G and D losses (the "
                           "InfoGAN paper)", choices=("third", "joint"))
    info_cluster_weight: float = _opt(0.0, "InfoGAN: weight of a clustering term on real "
                                      "images: Q's code confident per image, used evenly over "
                                      "the batch, and unchanged by a small affine transform "
                                      "(0: off)", min=0.0)
    info_head: str = _opt("conv", "InfoGAN Q head: the seed's 4x4 conv heads on D's trunk, or "
                          "fc: the paper's FC(128) + BN + LeakyReLU layer before them",
                          choices=("conv", "fc"))
    info_q: str = _opt("shared", "InfoGAN Q: heads on D's trunk (the seed), or encoder: its own "
                       "network, trained with G, so Q's terms never move D",
                       choices=("shared", "encoder"))
    info_q_real_only: bool = _opt(False, "InfoGAN with --info-q encoder: Q's clustering is "
                                  "taught by real images alone (the clustering term); the "
                                  "categorical information term on fakes trains G alone, to "
                                  "follow it")
    info_cluster_confidence: float = _opt(1.0, "InfoGAN clustering term: weight of each image's "
                                          "code entropy (confident codes)", min=0.0)
    info_cluster_balance: float = _opt(1.0, "InfoGAN clustering term: weight of the batch-mean "
                                       "code entropy (every code used)", min=0.0)
    info_cluster_stroke: float = _opt(0.0, "InfoGAN clustering term: the moved copy's strokes "
                                      "also thickened or thinned, up to this share of a 3x3 "
                                      "dilation or erosion (0: off)", min=0.0, max=1.0)
    info_cluster_shear: float = _opt(0.0, "InfoGAN clustering term: the moved copy also "
                                     "slanted by a horizontal shear of up to this factor "
                                     "(0: off)", min=0.0, max=1.0)
    info_mode_seeking: float = _opt(0.0, "InfoGAN: weight of a mode-seeking term in G's loss: "
                                    "pairs with one code and different z must differ (0: off)",
                                    min=0.0)
    supervised_code: bool = _opt(False, "InfoGAN: real labels train the categorical head")
    thickness_guidance: bool = _opt(False, "InfoGAN: tie cc[0] to stroke thickness")
    began_gamma: float = _opt(0.5, "BEGAN diversity ratio gamma", min=0.0, max=1.0)
    began_lambda_k: float = _opt(1e-3, "BEGAN k_t learning rate", min=0.0)
    # speed
    compile: bool = _opt(False, "torch.compile the training step functions")
    compile_mode: str = _opt("default", "torch.compile mode",
                             choices=("default", "reduce-overhead", "max-autotune"))
    kernels: str = _opt("auto", "spectral-norm / gradient-penalty implementation",
                        choices=IMPLS)
    amp: str = _opt("none", "autocast dtype (CUDA only)", choices=("none", "bf16"))
    device: str = _opt("auto", "cpu, cuda, cuda:N or auto")
    # bookkeeping
    seed: int = _opt(0, "random seed (data order, noise, init)", min=0)
    ema: float = _opt(10.0, "half-life of the EMA generator in thousands of images (0: off); "
                      "samples, evaluation and export use the EMA generator", min=0.0)
    ema_rampup: float = _opt(0.05, "cap the EMA half-life at this share of the images seen so "
                             "far (0: no cap)", min=0.0)
    out: str = _opt("runs/dcgan", "run directory for checkpoints, samples and logs")
    checkpoint_every: int = _opt(0, "checkpoint every N steps (0: every epoch)", min=0)
    keep_last: int = _opt(3, "number of recent checkpoints kept", min=1)
    log_every: int = _opt(50, "log metrics every N steps", min=1)
    eval_every: int = _opt(0, "evaluate FID/coverage every N steps (0: off)", min=0)
    eval_samples: int = _opt(1000, "images used per evaluation", min=100)
    on_nan: str = _opt("stop", "on a non-finite loss/weight: stop, or roll back with lower lr",
                       choices=("stop", "rollback"))
    progress: bool = _opt(True, "show a progress bar")

    def validate(self) -> None:
        """Raise UserError naming the first out-of-range field."""
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            flag = "--" + f.name.replace("_", "-")
            if meta.get("choices") and value not in meta["choices"]:
                raise UserError(f"{flag} {value!r} is not one of "
                                f"{', '.join(map(str, meta['choices']))}")
            if "min" in meta and value is not None:
                lo = meta["min"]
                if value < lo or (meta.get("exclusive") and value == lo):
                    rel = ">" if meta.get("exclusive") else ">="
                    raise UserError(f"{flag} must be {rel} {lo}, got {value}")
            if "max" in meta and value is not None and value > meta["max"]:
                raise UserError(f"{flag} must be <= {meta['max']}, got {value}")
        dataset_and_dir(self.dataset, self.data_dir)  # a registered name or a folder
        try:
            parse_policy(self.augment)
        except ValueError as exc:
            raise UserError(f"--augment {self.augment!r}: {exc}") from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        if values.get("recipe") in _LEGACY_RECIPES:
            values["recipe"] = _LEGACY_RECIPES[values["recipe"]]
        return cls(**values)


def field_type(f: dataclasses.Field):
    """The Python type of a TrainConfig field (``str | None`` -> str)."""
    hint = typing.get_type_hints(TrainConfig)[f.name]
    if isinstance(hint, types.UnionType):  # "str | None" -> str
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint
