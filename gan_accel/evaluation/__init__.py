"""How good is a generator, measured in a reference classifier's feature space.

* :mod:`.classifier` - the small CNN whose features the metrics use, and its training;
* :mod:`.metrics` - FID, KID, class coverage, label / code accuracy, the linear probe;
* :mod:`.pipeline` - real data, references, and the evaluation of a generator or a variant.
"""

from .pipeline import (
    CLASSIFIER_DATASETS,
    RealData,
    Reference,
    SampleFn,
    TrainingEvaluator,
    build_reference,
    classifier_key,
    classifier_path,
    describe_reference,
    discriminator_metrics,
    evaluate_generator,
    evaluate_variant,
    format_table,
    generator_sampler,
    load_real_data,
    load_reference_classifier,
    predict_code,
    train_reference_classifier,
)

__all__ = [
    "CLASSIFIER_DATASETS", "RealData", "Reference", "SampleFn", "TrainingEvaluator",
    "build_reference", "classifier_key", "classifier_path", "describe_reference",
    "discriminator_metrics", "evaluate_generator", "evaluate_variant", "format_table",
    "generator_sampler", "load_real_data", "load_reference_classifier", "predict_code",
    "train_reference_classifier",
]
