"""How good is a generator, measured in a evaluation classifier's feature space.

* :mod:`.classifier` - the small CNN whose features the metrics use, and its training;
* :mod:`.metrics` - FID, KID, class coverage, label / code accuracy, the linear probe;
* :mod:`.pipeline` - real data, its features, and the evaluation of a generator or a variant.
"""

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
    format_table,
    generator_sampler,
    load_eval_classifier,
    load_real_data,
    predict_code,
    train_eval_classifier,
)

__all__ = [
    "CLASSIFIER_DATASETS", "RealData", "RealFeatures", "SampleFn", "TrainingEvaluator",
    "build_real_features", "classifier_key", "classifier_path", "describe_real_features",
    "discriminator_metrics", "evaluate_generator", "evaluate_variant", "format_table",
    "generator_sampler", "load_real_data", "load_eval_classifier", "predict_code",
    "train_eval_classifier",
]
