"""The evaluation pipeline: shipped classifiers, metrics on known cases, the evaluate CLI,
best-checkpoint selection during training, and the quality benchmark (CPU, seeded)."""

from __future__ import annotations

import json
import os

import pytest
import torch
from helpers import run_module, tiny_mnist

from gan_accel.cli import evaluate
from gan_accel.data import FASHION_MNIST_DEBIAN, find_idx_files, load_dataset
from gan_accel.errors import UserError, run_cli
from gan_accel.evaluation import (
    build_real_features,
    classifier_path,
    discriminator_metrics,
    evaluate_generator,
    feature_space_for,
    load_eval_classifier,
    load_real_data,
)
from gan_accel.evaluation.classifier import accuracy
from gan_accel.training.trainer import Trainer
from gan_accel.variants import build_variant, recipe_config

N = 300  # generated / real images per comparison in these tests
# CI installs Debian's dataset-fashion-mnist: there a missing dataset is a failure, not a skip
needs_fashion = pytest.mark.skipif(
    find_idx_files(FASHION_MNIST_DEBIAN, False) is None and not os.environ.get("CI"),
    reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def mnist5k():
    """(classifier, real data, real features at n=N) for the embedded subset."""
    real = load_real_data("mnist-5k", probe_train=300, probe_test=200, log=quiet)
    space = feature_space_for(real)
    return space.net, real, build_real_features(space, real, N, kid_subsets=20)


def pool_sampler(images_u8: torch.Tensor, labels: torch.Tensor, shift: int = 0):
    """A fake ``sample_fn`` returning real images; with ``classes``, of class ``c + shift``."""

    def sample(n, *, seed, classes=None):
        g = torch.Generator().manual_seed(seed + 1000)
        if classes is None:
            idx = torch.randint(0, len(labels), (n,), generator=g)
        else:
            idx = torch.stack([
                (labels == (c + shift) % 10).nonzero().flatten()[
                    torch.randint(0, int((labels == (c + shift) % 10).sum()), (1,),
                                  generator=g)][0]
                for c in classes.tolist()])
        return images_u8[idx].float() / 255.0  # [n, 1, 28, 28] in the unit range

    return sample


# --------------------------------------------------------------------------- classifiers


def test_shipped_mnist_classifier_accuracy_on_held_out():
    """The shipped weights classify the 1,000 images held out of their training >= 97%."""
    clf, meta = load_eval_classifier("mnist-5k")
    real = load_real_data("mnist-5k", log=quiet)
    acc = accuracy(clf, real.probe_test.images, real.probe_test.labels)
    assert len(real.probe_test) == 1000
    assert acc >= 0.97, acc
    assert abs(acc - float(meta["heldout_accuracy"])) < 1e-3  # the metadata tells the truth
    assert meta["command"].startswith("python -m gan_accel.evaluate train-classifier")
    assert classifier_path("mnist") == classifier_path("mnist-5k")  # same domain


@needs_fashion
def test_shipped_fashion_classifier_accuracy_on_the_test_split():
    """>= 91% on the whole 10,000-image Fashion-MNIST test split, and the metadata says what
    it measured (the classifier is trained on the full 60k train split)."""
    clf, meta = load_eval_classifier("fashion-mnist")
    test = load_dataset("fashion-mnist", train=False, log=quiet)
    acc = accuracy(clf, test.images, test.labels)
    assert acc >= 0.91, acc
    assert int(meta["heldout_n"]) == 10000 and int(meta["train_n"]) == 60000
    assert abs(acc - float(meta["heldout_accuracy"])) < 1e-3


def test_missing_classifier_is_a_user_error(monkeypatch, tmp_path):
    import gan_accel.evaluation.pipeline as ev

    monkeypatch.setattr(ev, "ASSETS", tmp_path)
    with pytest.raises(UserError, match="train-classifier --dataset fashion-mnist"):
        ev.load_eval_classifier("fashion-mnist")


# --------------------------------------------------------------------------- known cases


def test_real_images_score_at_the_floor(mnist5k):
    """Real images disjoint from both real halves: FID ~ floor, all classes, no collapse."""
    clf, real, ref = mnist5k
    perm = torch.randperm(len(real.pool), generator=torch.Generator().manual_seed(0))
    held = perm[2 * N:]  # build_real_features used perm[:2N] (same seed)
    res = evaluate_generator(pool_sampler(real.pool.images[held], real.pool.labels[held]),
                             "unit", real_features=ref)
    assert res["n"] == N and res["fid_floor"] > 0
    assert res["fid_ratio"] < 1.5, res["fid_ratio"]
    assert res["kid"] < 10 * max(abs(res["kid_floor"]), 1.0)  # one class: ~1,400
    assert res["classes_present"] == 10 and not res["collapsed"]
    assert res["largest_class_share"] < 0.2


def test_one_class_generator_is_flagged_collapsed(mnist5k):
    clf, real, ref = mnist5k
    threes = real.pool.labels == 3
    res = evaluate_generator(pool_sampler(real.pool.images[threes], real.pool.labels[threes]),
                             "unit", real_features=ref)
    assert res["collapsed"] is True
    assert res["classes_present"] <= 2 and res["largest_class_share"] > 0.9
    assert res["fid_ratio"] > 10, res["fid_ratio"]
    assert res["kl_to_uniform"] > 1.5
    assert res["kid"] > 100 * max(abs(res["kid_floor"]), 1.0)


def test_symmetric_range_is_mapped(mnist5k):
    """A [-1, 1] generator is converted, not rejected or mis-scored."""
    clf, real, ref = mnist5k
    base = pool_sampler(real.pool.images, real.pool.labels)

    def symmetric(n, *, seed, classes=None):
        return base(n, seed=seed, classes=classes) * 2 - 1

    unit = evaluate_generator(base, "unit", real_features=ref)
    sym = evaluate_generator(symmetric, "symmetric", real_features=ref)
    assert sym["fid"] == pytest.approx(unit["fid"], rel=1e-4)


def test_cgan_label_accuracy(mnist5k):
    clf, real, ref = mnist5k
    good = evaluate_generator(pool_sampler(real.pool.images, real.pool.labels), "unit",
                              num_classes=10, real_features=ref)
    wrong = evaluate_generator(pool_sampler(real.pool.images, real.pool.labels, shift=1),
                               "unit", num_classes=10, real_features=ref)
    assert good["label_accuracy"] > 0.95
    assert wrong["label_accuracy"] < 0.1
    assert good["classes_present"] == 10


def test_infogan_generated_code_accuracy_uses_hungarian_matching(mnist5k):
    """Codes that draw digit (code + 3) % 10: a permutation, so matched accuracy is high."""
    clf, real, ref = mnist5k
    res = evaluate_generator(pool_sampler(real.pool.images, real.pool.labels, shift=3), "unit",
                             cat_dim=10, real_features=ref)
    assert res["code_accuracy_generated"] > 0.95
    assert res["code_to_class_generated"][0] == 3 and res["code_to_class_generated"][9] == 2


def test_spread_ratio_tells_a_generator_that_ignores_its_noise(mnist5k):
    """Real digits drawn per code differ as real digits of one class do (ratio ~1); a G that
    draws one image per code whatever z scores 0."""
    clf, real, ref = mnist5k
    varied = evaluate_generator(pool_sampler(real.pool.images, real.pool.labels), "unit",
                                cat_dim=10, real_features=ref)
    one_each = pool_sampler(real.pool.images, real.pool.labels)

    def ignores_z(n, *, seed, classes=None):
        firsts = one_each(10, seed=seed, classes=torch.arange(10))  # one image per code
        return firsts[classes]

    fixed = evaluate_generator(ignores_z, "unit", cat_dim=10, real_features=ref)
    assert 0.7 < varied["spread_ratio"] < 1.3, varied["spread_ratio"]
    assert not varied["noise_ignored"] and not varied["collapsed"]
    assert fixed["spread_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert fixed["noise_ignored"] and fixed["collapsed"]
    assert fixed["code_accuracy_generated"] > 0.95  # the codes alone do not show it


def test_discriminator_metrics_infogan_q_head_and_probe(mnist5k):
    """Q head = the classifier with permuted columns: Hungarian matching recovers it; the
    probe on an untrained D's random features beats chance."""
    clf, real, _ = mnist5k
    torch.manual_seed(0)
    variant = build_variant(recipe_config("infogan")).eval()
    perm = torch.tensor([4, 7, 0, 9, 1, 3, 8, 2, 6, 5])
    variant.predict_code = lambda x: clf(x)[:, perm]  # infogan's range is 'unit'
    res = discriminator_metrics(variant, real, probe_epochs=30)
    assert res["code_accuracy"] > 0.95
    assert res["code_to_class"] == perm.tolist()
    assert res["code_accuracy_n"] == 200
    assert 0.3 < res["d_probe_accuracy"] <= 1.0
    assert res["d_feature_dim"] == 2048 and res["d_probe_train_n"] == 300


def test_n_beyond_the_real_pool_is_a_user_error(mnist5k):
    _, real, ref = mnist5k
    with pytest.raises(UserError, match="2 <= --n <= 2500"):
        build_real_features(ref.space, real, 2600)


# --------------------------------------------------------------------------- training


def tiny_cfg(tmp_path, name, **kw):
    data = tmp_path / "data"
    if not data.is_dir():
        tiny_mnist(data, n=200, seed=1)
    return recipe_config(kw.pop("model", "dcgan"), dataset="mnist", data_dir=str(data),
                              batch_size=8, out=str(tmp_path / name), progress=False,
                              log_every=1, **kw)


def test_best_checkpoint_keeps_the_lowest_fid(tmp_path):
    scores = iter([5.0, 3.0, 4.0, 6.0])
    calls = []

    def fake_evaluator(trainer):
        calls.append(trainer.pos.step)
        return {"fid": next(scores), "classes_present": 10}

    cfg = tiny_cfg(tmp_path, "best", max_steps=4, eval_every=1)
    Trainer(cfg, log=quiet, evaluator=fake_evaluator).fit()
    assert calls == [1, 2, 3, 4]
    best = json.loads((tmp_path / "best" / "best" / "best.json").read_text())
    assert best["eval"]["fid"] == 3.0
    assert best["position"]["step"] == 2
    rows = [json.loads(x) for x in (tmp_path / "best" / "metrics.jsonl").read_text().split("\n")
            if x]
    assert [r["fid"] for r in rows if r["kind"] == "eval"] == [5.0, 3.0, 4.0, 6.0]


def test_training_evaluator_in_the_loop_leaves_rng_alone(tmp_path):
    """The real evaluator: the expected keys, a best checkpoint, and no global-RNG use."""
    from gan_accel.evaluation import TrainingEvaluator

    cfg = tiny_cfg(tmp_path, "live", max_steps=2, eval_every=2, eval_samples=100, ema=0.9)
    evaluator = TrainingEvaluator(cfg)
    trainer = Trainer(cfg, log=quiet, evaluator=evaluator)
    state = torch.get_rng_state()
    result = evaluator(trainer)
    assert torch.equal(torch.get_rng_state(), state)
    assert set(result) >= {"fid", "kid", "classes_present", "largest_class_share", "fid_floor"}
    assert result["fid"] > 0 and 0 <= result["classes_present"] <= 10
    again = evaluator(trainer)
    assert again["fid"] == result["fid"]  # fixed seed, cached real features: deterministic
    trainer.fit()
    assert (tmp_path / "live" / "best" / "best.json").is_file()


def test_training_evaluator_rejects_too_many_samples(tmp_path):
    from gan_accel.evaluation import TrainingEvaluator

    cfg = recipe_config("dcgan", eval_samples=3000, eval_every=10, out=str(tmp_path))
    with pytest.raises(UserError, match="--eval-samples 3000 is out of range"):
        TrainingEvaluator(cfg)


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    cfg = recipe_config("dcgan", batch_size=8, max_steps=2, out=str(root / "run"),
                             progress=False, ema=0.0)  # a run without an EMA generator
    Trainer(cfg, log=quiet).fit()
    return root / "run"


def test_evaluate_cli_writes_table_and_json(tiny_run, tmp_path, capsys):
    out = tmp_path / "m.json"
    code = run_cli(evaluate.main, ["--checkpoint", str(tiny_run), "--n", "200",
                                   "--kid-subsets", "5", "--probe-train", "300",
                                   "--probe-test", "200", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "FID" in printed.out and "D linear probe" in printed.out
    doc = json.loads(out.read_text())
    assert doc["n"] == 200 and doc["variant"] == "dcgan" and doc["step"] == 2
    assert doc["fid"] > doc["fid_floor"] > 0
    assert doc["classifier"] == "mnist-5k" and doc["classifier_heldout_accuracy"] > 0.97
    assert 0 <= doc["d_probe_accuracy"] <= 1 and "label_accuracy" not in doc
    assert doc["command"].startswith("python -m gan_accel.evaluate --checkpoint")


def test_evaluate_cli_random_cnn_space_is_named_everywhere(tiny_run, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = run_cli(evaluate.main, ["--checkpoint", str(tiny_run), "--n", "100",
                                   "--kid-subsets", "2", "--no-probe", "--feature-space",
                                   "random-cnn", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    header = next(line for line in printed.splitlines() if line.startswith("metrics in"))
    assert "random-cnn-seed0" in header and "not Inception" in header
    doc = json.loads(out.read_text())
    assert doc["feature_space"] == "random-cnn-seed0" and doc["feature_space_kind"] == "random-cnn"
    assert "classes_present" not in doc and "classifier" not in doc
    assert doc["fid"] > doc["fid_floor"] > 0 and 0 <= doc["coverage"] <= 1


def test_evaluate_module_entry_point_one_line_error():
    proc = run_module("gan_accel.evaluate", "--checkpoint", "/nonexistent/run", timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "does not exist" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_evaluate_cli_default_out_is_run_dir(tiny_run, capsys):
    code = run_cli(evaluate.main, ["--checkpoint", str(tiny_run), "--n", "100",
                                   "--kid-subsets", "2", "--no-probe"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tiny_run / "eval.json").read_text())
    assert doc["n"] == 100 and "d_probe_accuracy" not in doc


EVAL_CASES = [
    (["--checkpoint", "/nonexistent/run"], "does not exist"),
    (["--checkpoint", "{run}", "--n", "99999"], "out of range"),
    (["--checkpoint", "{run}", "--n", "1"], "--n must be >= 2"),
    (["--checkpoint", "{run}", "--probe-train", "5"], "--probe-train >= 20"),
    (["--checkpoint", "{run}", "--out", "{tmp}/m.txt"], "must end in .json"),
    (["--checkpoint", "{run}", "--out", "{tmp}/no/dir/m.json"], "does not exist"),
    (["--checkpoint", "{run}", "--ema"], "no EMA generator"),
    (["--checkpoint", "{run}", "--best"], "no best checkpoint"),
    (["--checkpoint", "{run}", "--device", "cuda:0"], "no CUDA device"),
    (["--onnx", "{tmp}/missing.onnx"], "does not exist"),
    (["--onnx", "{tmp}/g.onnx", "--ema"], "drop them with --onnx"),
    ([], "one of the arguments --checkpoint --onnx is required"),
    (["train-classifier", "--dataset", "cifar"], "invalid choice"),
    (["train-classifier", "--dataset", "mnist-5k", "--epochs", "0"], "--epochs must be >= 1"),
    (["train-classifier", "--dataset", "mnist-5k", "--out", "{tmp}/w.pt"],
     "must end in .safetensors"),
    (["train-classifier", "--dataset", "mnist-5k", "--out", "{tmp}/no/w.safetensors"],
     "does not exist"),
]


@pytest.mark.parametrize("argv, match", EVAL_CASES, ids=[m for _, m in EVAL_CASES])
def test_evaluate_bad_input_one_line(capsys, tmp_path, tiny_run, argv, match):
    if torch.cuda.is_available() and "cuda:0" in argv:
        pytest.skip("a CUDA device exists here")
    argv = [a.format(run=tiny_run, tmp=tmp_path) for a in argv]
    code = run_cli(evaluate.main, argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert match.lower() in err.lower(), err


def test_evaluate_onnx(tiny_run, tmp_path, capsys):
    from gan_accel.cli import export as export_cli

    onnx_path = tmp_path / "g.onnx"
    assert run_cli(export_cli.main, ["--checkpoint", str(tiny_run), "--out",
                                     str(onnx_path)]) == 0
    assert run_cli(evaluate.main, ["--onnx", str(onnx_path), "--n", "100", "--kid-subsets",
                                   "2"]) == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "g.eval.json").read_text())
    assert doc["source"] == "onnx" and doc["variant"] == "dcgan" and doc["step"] == 2
    assert doc["n"] == 100 and doc["fid"] > doc["fid_floor"] > 0
    assert doc["dataset"] == "mnist-5k" and "d_probe_accuracy" not in doc
    capsys.readouterr()
    (tmp_path / "junk.onnx").write_bytes(b"not an onnx model")
    assert run_cli(evaluate.main, ["--onnx", str(tmp_path / "junk.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "junk.onnx" in err, err


# --------------------------------------------------------------------------- quality bench


def test_quality_bench_quick_writes_json_and_markdown(tmp_path):
    """The main of ``python -m gan_accel.bench quality``: train, evaluate, write the JSON and
    the table."""
    from gan_accel.bench import quality

    code = quality.main(["--quick", "--models", "dcgan", "--steps", "5", "--eval-n", "100",
                         "--out-dir", str(tmp_path)])
    assert code == 0
    (js,) = [p for p in tmp_path.iterdir() if p.name.endswith("-quality-quick.json")]
    doc = json.loads(js.read_text())
    (row,) = doc["rows"]
    assert doc["suite"] == "quality" and doc["config"]["eval_n"] == 100
    assert row["model"] == "dcgan" and row["status"] == "ok" and row["steps"] == 5
    assert row["mode"] == "eager" and row["curve"][-1]["step"] == 5  # the last step evaluated
    assert row["fid"] > row["fid_floor"] > 0
    assert row["targets"].startswith("missed")  # 5 steps cannot meet the targets
    assert 0 <= row["d_probe_accuracy"] <= 1
    table = js.with_suffix(".md").read_text()
    assert "| model |" in table and "| dcgan |" in table
    header = next(line for line in table.splitlines() if line.startswith("| model |"))
    assert "| feature space |" in header and "| precision |" in header \
        and "| coverage |" in header and f"| {row['feature_space']} |" in table


def test_quality_targets_rules():
    from gan_accel.bench.quality import targets

    ok = {"classes_present": 10, "largest_class_share": 0.12, "fid_ratio": 9.5}
    assert targets("dcgan", ok) == "met"
    assert "largest share" in targets("gan", {**ok, "largest_class_share": 0.2})
    assert "9/10 classes" in targets("gan", {**ok, "classes_present": 9})
    assert "FID" in targets("dcgan", {**ok, "fid_ratio": 10.5})  # dcgan: <= 10x the floor
    assert targets("lsgan", {**ok, "fid_ratio": 19.0}) == "met"  # the others: <= 20x
    assert "FID" in targets("wgan-gp", {**ok, "fid_ratio": 20.5})
    assert targets("began", {**ok, "fid_ratio": 39.0}) == "met"  # began: <= 40x
    assert "FID" in targets("began", {**ok, "fid_ratio": 40.5})
    assert "label acc" in targets("cgan", {"label_accuracy": 0.98, "fid_ratio": 5.0})
    assert targets("cgan", {"label_accuracy": 0.995, "fid_ratio": 5.0}) == "met"
    assert "code acc" in targets("infogan", {**ok, "code_accuracy": 0.94})
    assert targets("infogan", {**ok, "code_accuracy": 0.96}) == "met"
    ignores_z = {**ok, "code_accuracy": 0.96, "spread_ratio": 0.01, "noise_ignored": True}
    assert "G ignores z" in targets("infogan", ignores_z)
    assert targets("infogan", {**ignores_z, "spread_ratio": 0.5, "noise_ignored": False}) \
        == "met"


def test_quality_targets_for_folders_are_relative_to_the_real_shares():
    """Emoji and folders: every class present and no class above 1.5x its real share; FID /
    floor is reported, not a target."""
    from gan_accel.bench.quality import targets, time_to_quality

    ok = {"classes_present": 9, "num_classes": 9, "largest_class_share": 0.3,
          "max_share_ratio": 1.4, "max_share_ratio_class": "Flags", "fid_ratio": 80.0}
    assert targets("dcgan", ok, "emoji") == "met"  # a 30% share and FID 80x: not targets here
    assert targets("dcgan", ok, "mnist-5k").startswith("missed")
    assert "Flags share 1.60x its real share > 1.5x" in targets(
        "dcgan", {**ok, "max_share_ratio": 1.6}, "emoji")
    assert "8/9 classes" in targets("sngan", {**ok, "classes_present": 8}, "folder")
    assert targets("dcgan", {"fid_ratio": 3.0}, "folder") == "not measured"  # unlabelled
    curve = [{"step": 1, "train_seconds": 1.0, **ok, "max_share_ratio": 2.0},
             {"step": 2, "train_seconds": 2.0, **ok}]
    assert time_to_quality("dcgan", curve, "emoji")["all"] == {"step": 2, "seconds": 2.0}
    assert time_to_quality("dcgan", [{"step": 1, "train_seconds": 1.0, "fid_ratio": 2.0}],
                           "folder")["all"] is None


def test_time_to_quality_bookkeeping_on_a_stub_evaluator(tmp_path):
    """The bench trains with an evaluator called every --eval-every steps; a stub that
    scripts the metrics shows that the first step and seconds of each target are recorded."""
    from gan_accel.bench import quality

    script = [  # what the stub reports at its 1st, 2nd, ... call
        {"fid_ratio": 40.0, "classes_present": 9, "largest_class_share": 0.3},
        {"fid_ratio": 15.0, "classes_present": 10, "largest_class_share": 0.2},
        {"fid_ratio": 12.0, "classes_present": 10, "largest_class_share": 0.14},
        {"fid_ratio": 9.0, "classes_present": 10, "largest_class_share": 0.12},
        {"fid_ratio": 8.0, "classes_present": 10, "largest_class_share": 0.11},
    ]

    class Stub(quality.QualityEvaluator):
        def __init__(self, cfg):
            self.evals = []

        def __call__(self, trainer):
            result = script[len(self.evals)]
            self.evals.append({"step": trainer.pos.step,
                               "train_seconds": round(trainer.train_seconds(), 2), **result})
            return result

    plan = quality.QualityPlan(["gan"], ["eager"], [0], eval_every=2, steps=10, eval_n=100,
                               kid_subsets=5, probe_train=100, probe_test=50, probe_epochs=5,
                               overrides={"ema": 0.0})
    row, _ = quality.run_variant("gan", "eager", plan, tmp_path / "run", evaluator_factory=Stub)
    steps = [e["step"] for e in row["curve"]]
    assert steps == [2, 4, 6, 8, 10]
    seconds = [e["train_seconds"] for e in row["curve"]]
    assert seconds == sorted(seconds) and seconds[0] > 0
    ttq = row["ttq"]
    assert ttq["fid"] == {"step": 4, "seconds": seconds[1]}  # gan: FID / floor <= 20
    assert ttq["coverage"] == {"step": 6, "seconds": seconds[2]}
    assert ttq["all"] == {"step": 6, "seconds": seconds[2]}
    assert (row["ttq_all_step"], row["ttq_all_s"]) == (6, seconds[2])
    dcgan = quality.time_to_quality("dcgan", row["curve"])
    assert dcgan["fid"]["step"] == 8 and dcgan["all"]["step"] == 8  # dcgan: <= 10x


def test_quality_seed_summary_gives_mean_and_worst():
    from gan_accel.bench.quality import _seeds, seed_summaries

    rows = [{"model": "infogan", "mode": "eager", "seed": s, "status": "ok", "fid_ratio": f,
             "largest_class_share": 0.12, "code_accuracy": a, "targets": t}
            for s, f, a, t in ((0, 6.0, 0.96, "met"), (1, 8.0, 0.90, "missed: code"),
                               (2, 7.0, 0.93, "missed: code"))]
    (note,) = seed_summaries(rows + [{"model": "gan", "mode": "eager", "status": "error: x"}])
    assert "seeds [0, 1, 2]" in note and "targets met in 1/3" in note
    assert "code_accuracy mean 0.93, worst 0.9" in note  # worst accuracy is the minimum
    assert "fid_ratio mean 7, worst 8" in note  # worst FID is the maximum
    assert _seeds("0,1,2") == [0, 1, 2]
    for bad in ("", "0,0", "a", "-1"):
        with pytest.raises(UserError, match="--seeds"):
            _seeds(bad)


def test_quality_steps_are_trained_even_past_the_recipes_epochs(tmp_path):
    """--steps N trains N steps: a recipe with fewer epochs than N needs does not cut it."""
    from gan_accel.bench import quality

    class Stub(quality.QualityEvaluator):
        def __init__(self, cfg):
            self.evals = []

        def __call__(self, trainer):
            result = {"fid_ratio": 1.0, "classes_present": 10, "largest_class_share": 0.1}
            self.evals.append({"step": trainer.pos.step, "train_seconds": 0.0, **result})
            return result

    plan = quality.QualityPlan(["gan"], ["eager"], [0], eval_every=50, steps=100, eval_n=100,
                               kid_subsets=5, probe_train=100, probe_test=50, probe_epochs=5,
                               overrides={"ema": 0.0, "epochs": 1})  # 1 epoch: 78 steps
    row, _ = quality.run_variant("gan", "eager", plan, tmp_path / "run", evaluator_factory=Stub)
    assert row["steps"] == 100 and row["epochs_done"] > 1
