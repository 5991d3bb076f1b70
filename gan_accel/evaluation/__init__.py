"""How good is a generator, measured in a named feature space.

* :mod:`.classifier` - the project's small CNN classifier and its training;
* :mod:`.data_classifier` - that classifier trained on a labelled folder's own split, cached;
* :mod:`.feature_space` - the spaces the metrics are measured in, each with its name
  (``classifier-...``, ``random-cnn-seed0``);
* :mod:`.metrics` - FID, KID, precision/recall, density/coverage, class coverage, label /
  code accuracy, the linear probe;
* :mod:`.inception` - Inception FID on request, from a local weights file;
* :mod:`.pipeline` - real data, its features and floors, and the evaluation of a generator
  or a variant.
"""

from .feature_space import SPACE_CHOICES, FeatureSpace, SpaceChoice, SpaceKind
from .inception import InceptionFID
from .pipeline import (
    CLASSIFIER_DATASETS,
    RealData,
    RealFeatures,
    SampleFn,
    TrainingEvaluator,
    build_real_features,
    classifier_key,
    classifier_path,
    describe_real_features,
    discriminator_metrics,
    evaluate_generator,
    evaluate_variant,
    feature_space_for,
    format_header,
    format_table,
    generator_sampler,
    load_eval_classifier,
    load_real_data,
    predict_code,
    real_data_for_config,
    real_data_from_images,
    train_eval_classifier,
)

__all__ = [
    "CLASSIFIER_DATASETS", "SPACE_CHOICES", "FeatureSpace", "InceptionFID", "RealData",
    "RealFeatures", "SampleFn", "SpaceChoice", "SpaceKind", "TrainingEvaluator",
    "build_real_features", "classifier_key", "classifier_path", "describe_real_features",
    "discriminator_metrics", "evaluate_generator", "evaluate_variant", "feature_space_for",
    "format_header", "format_table", "generator_sampler", "load_real_data",
    "load_eval_classifier", "predict_code", "real_data_for_config", "real_data_from_images",
    "train_eval_classifier",
]
