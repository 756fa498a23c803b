"""Tests for bench/: precision choice, the training clock, summaries, builders, smoke run."""

import contextlib
import io
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from bench import overhead, time_to_accuracy, write_files
from bench.clock import StopAfterSteps, TestAccuracyClock, time_to
from bench.configs import CONFIGS, BenchConfig
from bench.models import build_and_compile, keras_io_convnet
from bench.overhead import hand_built
from bench.report import headline, median_range, speedups, stall_seconds, summarize
from recipes import CNNSpec, build_cnn
from recipes.hardware import choose_precision, clear_session, cpu_flags, machine_info, model_policy
from recipes.schedules import OneCycle

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 9R45
flags\t\t: fpu avx2 avx512f avx512_bf16 sse4_2
"""


class HardwareTest(tf.test.TestCase, parameterized.TestCase):
    def test_cpu_flags_and_machine_info(self):
        self.assertEqual(cpu_flags(CPUINFO), {"fpu", "avx2", "avx512f", "avx512_bf16", "sse4_2"})
        info = machine_info(CPUINFO)
        self.assertEqual(info["cpu"], "AMD EPYC 9R45")
        self.assertEqual(info["bf16_flags"], ["avx512_bf16"])
        self.assertGreaterEqual(info["cores"], 1)

    @parameterized.parameters(
        ({"avx512_bf16"}, "mixed_bfloat16"),
        ({"amx_bf16", "avx2"}, "mixed_bfloat16"),
        ({"avx2", "avx512f"}, "float32"),
        (set(), "float32"),
    )
    def test_auto_precision(self, flags, expected):
        policy, reason = choose_precision("auto", flags)
        self.assertEqual(policy, expected)
        self.assertStartsWith(reason, "auto:")

    def test_explicit_and_bad_precision(self):
        self.assertEqual(choose_precision("float32", {"avx512_bf16"})[0], "float32")
        with self.assertRaisesRegex(ValueError, "Unknown precision 'fp8'. Valid: auto, float32"):
            choose_precision("fp8")

    def test_model_policy_is_the_first_weighted_layers_not_the_float32_output(self):
        self.addCleanup(keras.config.set_dtype_policy, "float32")
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = build_cnn(CNNSpec(filters=(4,), dense_units=()), (8, 8, 1), 3)
        self.assertEqual(model.get_layer("output").dtype_policy.name, "float32")
        self.assertEqual(model_policy(model), "mixed_bfloat16")
        keras.config.set_dtype_policy("float32")
        self.assertEqual(model_policy(keras.Sequential([keras.Input((2,))])), "float32")

    def test_clear_session_keeps_or_sets_the_dtype_policy(self):
        # Keras's own clear_session() resets the policy to float32: a loop that set bf16
        # once would silently build every later model in float32.
        keras.config.set_dtype_policy("mixed_bfloat16")
        self.addCleanup(keras.config.set_dtype_policy, "float32")
        keras.backend.clear_session(free_memory=False)
        self.assertEqual(keras.config.dtype_policy().name, "float32")
        keras.config.set_dtype_policy("mixed_bfloat16")
        self.assertEqual(clear_session(), "mixed_bfloat16")
        self.assertEqual(keras.layers.Dense(2).dtype_policy.compute_dtype, "bfloat16")
        self.assertEqual(clear_session("float32"), "float32")
        self.assertEqual(keras.layers.Dense(2).dtype_policy.name, "float32")
        self.assertEqual(clear_session("auto"), choose_precision("auto")[0])
        with self.assertRaisesRegex(ValueError, "float33"):
            clear_session("float33")


def _tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    return model


class ClockTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(160, 4)).astype("float32")
        self.y = self.x[:, :3].argmax(axis=1)  # learnable

    def test_checks_fall_on_eighths_and_epoch_ends(self):
        clock = TestAccuracyClock(self.x, self.y, steps_per_epoch=10, checks_per_epoch=8)
        _tiny_model().fit(self.x, self.y, batch_size=16, epochs=2, callbacks=[clock], verbose=0)
        steps = [p["step"] for p in clock.points]
        # round(k * 10 / 8) for k = 1..8 (Python rounds halves to even), then epoch 2
        first = sorted({max(1, round(k * 10 / 8)) for k in range(1, 9)})
        self.assertEqual(steps, first + [10 + s for s in first])
        self.assertAllClose([p["epoch"] for p in clock.points], [s / 10 for s in steps])
        seconds = [p["seconds"] for p in clock.points]
        self.assertTrue(all(b > a for a, b in zip(seconds, seconds[1:], strict=False)))
        accs = np.array([p["test_accuracy"] for p in clock.points])
        self.assertTrue(np.all((accs >= 0) & (accs <= 1)))
        self.assertGreater(accs[-1], 0.8)  # the tiny problem is learned

    def test_evaluation_and_validation_are_off_the_clock(self):
        def slow_progress(point):
            time.sleep(0.25)  # inside the check: must not count as training

        clock = TestAccuracyClock(self.x, self.y, steps_per_epoch=10, checks_per_epoch=4,
                                  on_check=slow_progress)
        begin = time.perf_counter()
        _tiny_model().fit(self.x, self.y, batch_size=16, epochs=2, callbacks=[clock],
                          validation_data=(self.x, self.y), verbose=0)
        wall = time.perf_counter() - begin
        self.assertLen(clock.points, 8)
        self.assertGreaterEqual(clock.eval_seconds, 8 * 0.25)
        self.assertGreater(clock.paused_seconds, clock.eval_seconds)  # + validation passes
        self.assertLess(clock.points[-1]["seconds"], wall - 8 * 0.25)
        # fit() also spends time before on_train_begin (data adapter, tracing set-up)
        self.assertLessEqual(clock.points[-1]["seconds"] + clock.paused_seconds, wall)

    def test_one_hot_labels(self):
        clock = TestAccuracyClock(self.x, keras.utils.to_categorical(self.y, 3), 10)
        self.assertAllEqual(clock.labels, self.y)

    def test_time_to(self):
        points = [{"seconds": 1.0, "epoch": 0.5, "test_accuracy": 0.98, "step": 5},
                  {"seconds": 2.0, "epoch": 1.0, "test_accuracy": 0.991, "step": 10},
                  {"seconds": 3.0, "epoch": 1.5, "test_accuracy": 0.989, "step": 15}]
        self.assertEqual(time_to(points, 0.99)["seconds"], 2.0)
        self.assertEqual(time_to(points, 0.98)["epoch"], 0.5)
        self.assertIsNone(time_to(points, 0.993))
        with self.assertRaisesRegex(ValueError, r"^target must be in \(0, 1\], got 99\.$"):
            time_to(points, 99)

    def test_bad_clock_arguments(self):
        with self.assertRaisesRegex(ValueError, r"^steps_per_epoch must be >= 1, got 0\.$"):
            TestAccuracyClock(self.x, self.y, steps_per_epoch=0)
        with self.assertRaisesRegex(ValueError, r"^checks_per_epoch must be an integer >= 1, "
                                                r"got nan\.$"):
            TestAccuracyClock(self.x, self.y, steps_per_epoch=10, checks_per_epoch=float("nan"))
        with self.assertRaisesRegex(ValueError, r"^steps must be >= 1, got 0"):
            StopAfterSteps(0)

    def test_stop_after_steps_trains_a_fraction_of_an_epoch(self):
        clock = TestAccuracyClock(self.x, self.y, steps_per_epoch=10, checks_per_epoch=4)
        history = _tiny_model().fit(self.x, self.y, batch_size=16, epochs=2, verbose=0,
                                    callbacks=[clock, StopAfterSteps(13)])
        self.assertEqual([p["step"] for p in clock.points], [2, 5, 8, 10, 12, 13])
        self.assertAllClose(clock.points[-1]["epoch"], 1.3)
        self.assertLen(history.history["loss"], 2)


def _seed(seed, t990, t993, ips=1000.0, acc=0.99):
    def point(t):
        return None if t is None else {"seconds": t, "epoch": t / 10, "test_accuracy": 0.995}

    return {"seed": seed, "time_to": {"0.990": point(t990), "0.993": point(t993)},
            "images_per_second": ips, "final_test_accuracy": acc, "train_seconds": 100.0,
            "points": [{"seconds": 1.0, "test_accuracy": acc}]}


class ReportTest(tf.test.TestCase):
    def test_median_range_counts_misses_as_infinite(self):
        self.assertEqual(median_range([3.0, 1.0, 2.0]),
                         {"median": 2.0, "min": 1.0, "max": 3.0, "reached": 3, "n": 3})
        one_miss = median_range([3.0, None, 1.0])
        self.assertEqual((one_miss["median"], one_miss["min"], one_miss["max"]), (3.0, 1.0, None))
        self.assertIsNone(median_range([None, None, 1.0])["median"])
        self.assertEqual(median_range([None])["reached"], 0)

    def test_stall_seconds_is_the_excess_of_outlying_intervals(self):
        gaps = [2.0, 1.0, 1.0, 1.0, 9.0, 1.0, 1.0, 4.5]  # first interval (tracing) is exempt
        points = [{"seconds": t} for t in np.cumsum(gaps)]
        self.assertAllClose(stall_seconds(points), (9.0 - 1.0) + (4.5 - 1.0))
        self.assertEqual(stall_seconds(points[:2]), 0.0)
        self.assertEqual(stall_seconds([{"seconds": t} for t in (1.0, 2.0, 3.0, 4.0)]), 0.0)

    def test_summary_and_headline_ratio(self):
        configs = [
            {"name": "keras_io", "process_seconds": 400.0,
             "seeds": [_seed(0, 80.0, None), _seed(1, 70.0, None), _seed(2, 90.0, None)]},
            {"name": "recipe_fast", "process_seconds": 60.0,
             "seeds": [_seed(0, 8.0, None), _seed(1, 7.0, 20.0), _seed(2, 10.0, None)]},
        ]
        summary = summarize(configs)
        self.assertEqual(summary["keras_io"]["seconds_to_0.990"]["median"], 80.0)
        self.assertEqual(summary["recipe_fast"]["seconds_to_0.990"]["min"], 7.0)
        self.assertIsNone(summary["recipe_fast"]["seconds_to_0.993"]["median"])
        self.assertEqual(summary["recipe_fast"]["seconds_to_0.993"]["reached"], 1)
        results = {"summary": summary, "targets": [0.99, 0.993], "quick": False}
        self.assertEqual(headline(results), "recipe reaches 99.0% 10.0x sooner than the keras.io "
                         "convnet as published (8.0 s vs 80.0 s of training, median of 3 seeds)")
        summary["keras_io_pipeline"] = summarize([{
            "name": "keras_io_pipeline", "process_seconds": 300.0,
            "seeds": [_seed(0, 60.0, None), _seed(1, 56.0, None), _seed(2, 50.0, None)]}]
        )["keras_io_pipeline"]
        self.assertEqual(speedups(summary, 0.99), {"speedup_vs_published": 10.0,
                                                   "speedup_like_for_like": 7.0})
        self.assertEqual(headline(results), "recipe reaches 99.0% 10.0x sooner than the keras.io "
                         "convnet as published (8.0 s vs 80.0 s of training, median of 3 seeds)"
                         "; 7.0x sooner than the same convnet fed by the recipes' input pipeline "
                         "(56.0 s)")
        summary["keras_io"]["seconds_to_0.990"]["median"] = None
        self.assertStartsWith(headline(results), "recipe reaches 99.0% the keras.io convnet as "
                              "published did not reach 99.0% (median over seeds); 7.0x sooner")
        self.assertEqual(speedups(summary, 0.99), {"speedup_vs_published": None,
                                                   "speedup_like_for_like": 7.0})
        summary["recipe_fast"]["seconds_to_0.990"]["median"] = None
        self.assertStartsWith(headline(results), "the recipe did not reach 99.0%")
        self.assertEqual(speedups(summary, 0.99), {"speedup_vs_published": None,
                                                   "speedup_like_for_like": None})
        self.assertEqual(speedups({}, 0.99)["speedup_like_for_like"], None)
        self.assertStartsWith(headline({**results, "summary": {"keras_io": {}}}),
                              "headline needs recipe_fast and keras_io")


class WriteFilesTest(tf.test.TestCase):
    def test_text_as_it_is_the_rest_as_json_in_a_new_folder(self):
        out = Path(self.get_temp_dir()) / "new" / "bench"
        self.assertEqual(write_files(out, {"a.md": "# A\n", "a.json": {"x": [1, 2.5]}}), out)
        self.assertEqual((out / "a.md").read_text(), "# A\n")
        self.assertEqual((out / "a.json").read_text(), '{\n  "x": [\n    1,\n    2.5\n  ]\n}\n')


class ConfigsTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)

    def test_keras_io_convnet_is_the_published_one(self):
        model = keras_io_convnet()
        self.assertEqual(model.count_params(), 34_826)  # as printed on keras.io
        self.assertEqual([type(layer).__name__ for layer in model.layers],
                         ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten",
                          "Dropout", "Dense"])
        self.assertEqual(model.layers[5].rate, 0.5)

    def test_recipes_compile_with_a_1cycle_schedule(self):
        model = build_and_compile(CONFIGS["recipe_fast"], steps_per_epoch=10)
        config = model.optimizer.get_config()
        schedule = keras.optimizers.schedules.deserialize(config["learning_rate"])
        self.assertEqual(type(schedule).__name__, "OneCycle")
        self.assertEqual(schedule.total_steps, 10)  # one epoch of 10 steps
        self.assertAllClose(float(schedule(schedule.half_steps)), 0.3)
        self.assertTrue(config["nesterov"])
        self.assertEqual(config["momentum"], 0.9)
        self.assertEqual(schedule.shape, "cosine")
        names = [layer.name for layer in model.layers]
        self.assertEqual([n for n in names if "bn" in n], ["bn_0"])  # BN in the dense layer

    def test_unknown_model_and_input(self):
        with self.assertRaisesRegex(ValueError, "Unknown model 'vgg'.*Valid: keras_io, recipe"):
            build_and_compile(BenchConfig("x", "x", model="vgg"), 10)
        with self.assertRaisesRegex(ValueError, r"^Unknown input 'csv'\. Valid: numpy, pipeline\."):
            BenchConfig("x", "x", input="csv")
        with self.assertRaisesRegex(ValueError, r"^Configuration 'x': a recipe needs a spec"):
            BenchConfig("x", "x")
        with self.assertRaisesRegex(ValueError, r"^learning_rate must be a finite number > 0, "
                                                r"got nan\.$"):
            BenchConfig("x", "x", model="keras_io", learning_rate=float("nan"))
        with self.assertRaisesRegex(ValueError, r"^Unknown precision 'fp8'\. Valid: auto, "):
            BenchConfig("x", "x", model="keras_io", precision="fp8")

    def test_a_tiny_1cycle_run_gets_the_shortest_cycle(self):
        model = build_and_compile(CONFIGS["recipe_fast"], steps_per_epoch=1)  # 1 step
        config = model.optimizer.get_config()
        schedule = keras.optimizers.schedules.deserialize(config["learning_rate"])
        self.assertEqual(schedule.total_steps, OneCycle.MIN_STEPS)

    def test_baseline_is_raced_on_both_inputs(self):
        self.assertEqual(CONFIGS["keras_io"].input, "numpy")  # as published: fit(x, y)
        self.assertEqual(CONFIGS["keras_io_pipeline"].input, "pipeline")
        same = ("model", "epochs", "batch_size", "precision", "optimizer")
        self.assertEqual([getattr(CONFIGS["keras_io"], f) for f in same],
                         [getattr(CONFIGS["keras_io_pipeline"], f) for f in same])
        self.assertTrue(all(c.input == "pipeline" for n, c in CONFIGS.items()
                            if n.startswith("recipe")))

    def test_run_seed_on_the_pipeline_for_a_fraction_of_an_epoch(self):
        rng = np.random.default_rng(0)
        data = {k: rng.random((n, 28, 28, 1), dtype=np.float32) for k, n in
                (("x_train", 200), ("x_val", 50), ("x_test", 60))}
        data.update({k: rng.integers(0, 10, n) for k, n in
                     (("y_train", 200), ("y_val", 50), ("y_test", 60))})
        config = BenchConfig("t", "t", model="keras_io", epochs=1.5, batch_size=128)
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            record = time_to_accuracy.run_seed(config, data, seed=0, epochs=1.5,
                                               log=lambda m: None)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        # clear_session() resets the policy; run_seed must keep the one it was given
        self.assertEqual(record["compute_dtype"], "bfloat16")
        self.assertEqual(record["steps_per_epoch"], 2)
        self.assertEqual([p["step"] for p in record["points"]], [1, 2, 3])  # round(1.5 x 2)
        self.assertAllClose(record["points"][-1]["epoch"], 1.5)
        self.assertLen(record["val_accuracy"], 2)
        self.assertAllClose(record["images_per_second"], 3 * 128 / record["train_seconds"])

    def test_hand_built_twin_matches_the_builder(self):
        spec = CONFIGS["recipe_fast"].spec
        hand, recipe = hand_built(spec), build_cnn(spec, (28, 28, 1), 10)
        self.assertEqual(hand.count_params(), recipe.count_params())
        kinds = [type(layer).__name__ for layer in hand.layers]
        self.assertEqual(kinds, [type(layer).__name__ for layer in recipe.layers])
        x = np.random.default_rng(0).random((2, 28, 28, 1), dtype="float32")
        recipe.set_weights(hand.get_weights())
        self.assertAllClose(recipe.predict(x, verbose=0), hand.predict(x, verbose=0), atol=1e-5)

    def test_hand_built_rejects_other_specs(self):
        with self.assertRaisesRegex(ValueError, "hand_built supports one ReLU conv per block"):
            hand_built(CNNSpec(convs_per_block=2))


class CLITest(tf.test.TestCase):
    def test_bad_seeds_and_configs(self):
        for argv, msg in ((["--seeds", "a,b"], "seeds must be like 0,1,2, got 'a,b'"),
                          (["--configs", "resnet"], "invalid choice: 'resnet'")):
            with self.assertRaises(SystemExit) as exit_, self.captureWritesToStream(
                    sys.stderr) as err:
                time_to_accuracy.main(argv)
            self.assertEqual(exit_.exception.code, 2)
            self.assertIn(msg, err.contents())

    def test_config_checks_and_default_seeds(self):
        Config = time_to_accuracy.Config
        self.assertEqual(Config().configs, tuple(CONFIGS))
        self.assertEqual((Config().seed_list, Config(quick=True).seed_list), ((0, 1, 2), (0,)))
        self.assertEqual(Config(seeds=(3, 4), quick=True).seed_list, (3, 4))
        self.assertEqual(time_to_accuracy.parse_seeds("3, 4,"), (3, 4))
        with self.assertRaisesRegex(ValueError, r"^Unknown configuration 'resnet'\. Valid: "
                                                r"keras_io, keras_io_pipeline, "):
            Config(configs=("resnet",))
        with self.assertRaisesRegex(ValueError, r"^seeds must be >= 0, got -1\.$"):
            Config(seeds=(-1,))
        with self.assertRaisesRegex(ValueError, "--worker and --result go together"):
            Config(worker="keras_io")
        with self.assertRaisesRegex(ValueError, r"^rounds must be >= 1, got 0\.$"):
            overhead.Config(rounds=0)


@pytest.mark.slow
class QuickRunTest(tf.test.TestCase):
    def test_quick_benchmark_writes_its_outputs(self):
        out = Path(self.get_temp_dir()) / "bench"
        proc = subprocess.run(
            [sys.executable, "-m", "bench.time_to_accuracy", "--quick", "--out-dir", str(out),
             "--configs", "keras_io", "keras_io_pipeline", "recipe_fast"],
            capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        results = json.loads((out / "results.json").read_text())
        config = json.loads((out / "config.json").read_text())  # the CLI's config, resolved
        self.assertEqual(config, {"configs": ["keras_io", "keras_io_pipeline", "recipe_fast"],
                                  "seeds": [0], "quick": True, "precision": None,
                                  "out_dir": str(out), "worker": None, "result": None})
        self.assertEqual([c["name"] for c in results["configs"]],
                         ["keras_io", "keras_io_pipeline", "recipe_fast"])
        self.assertEqual([c["input"] for c in results["configs"]],
                         ["numpy", "pipeline", "pipeline"])
        for config in results["configs"]:
            (seed,) = config["seeds"]
            self.assertLen(seed["points"], 8)  # 1 epoch, checked every 1/8 epoch
            self.assertAllClose(seed["points"][-1]["epoch"], 1.0)
            accs = [p["test_accuracy"] for p in seed["points"]]
            self.assertTrue(all(0.0 <= a <= 1.0 for a in accs))
            self.assertGreater(accs[-1], 0.3)  # learned something on 2,700 images
            self.assertTrue(math.isfinite(seed["images_per_second"]))
            self.assertGreater(config["process_seconds"], seed["train_seconds"])
        self.assertIn(results["configs"][2]["precision"], ("float32", "mixed_bfloat16"))
        self.assertGreater(results["overhead"]["ratio"], 0.3)
        self.assertLess(results["overhead"]["ratio"], 3.0)
        report = (out / "report.md").read_text()
        self.assertIn("| `keras_io` | numpy | float32 |", report)
        self.assertIn("| `keras_io_pipeline` | pipeline | float32 |", report)
        self.assertIn("quick mode", report)
        self.assertTrue((out / "time_to_accuracy.png").stat().st_size > 10_000)
        self.assertIn("did not reach 99.0%", proc.stdout.strip().splitlines()[-1])
        # Quick runs reach no target, so the top-level ratios are there and empty.
        self.assertEqual((results["speedup_vs_published"], results["speedup_like_for_like"]),
                         (None, None))
        self.assertIn("speed_flags", results["machine"])
        self.assertIn("SIMD flags: ", report)


@pytest.mark.slow
class FishInputBenchTest(tf.test.TestCase):
    def test_quick_run_on_tiny_folders(self):
        from PIL import Image

        from bench import fish_input

        tmp = Path(self.get_temp_dir())
        rng = np.random.default_rng(0)
        for split, n in (("train", 12), ("val", 3)):
            for name in ("a", "b"):
                (tmp / split / name).mkdir(parents=True)
                for i in range(n):
                    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
                        tmp / split / name / f"{i}.jpg")
        config = fish_input.Config(train_dir=str(tmp / "train"), val_dir=str(tmp / "val"),
                                   quick=True, batch_size=4, out_dir=str(tmp / "out"),
                                   augmentations=("none", "flip", "recipe"))
        results = fish_input.run(config)
        first, cached = results["first_run"], results["cached_run"]
        self.assertEqual((first["from_cache"], cached["from_cache"]), (False, True))
        self.assertEqual(first["photos"], 30)
        self.assertGreater(first["decoded_per_s"], 0)
        for run in (first, cached):
            self.assertLess(run["tensorflow_s"], run["loaded_s"])
            self.assertLess(run["loaded_s"], run["built_s"])
            self.assertLess(run["built_s"], run["first_step_s"])
        self.assertEqual(sorted(results["augmentation"]), ["flip", "none", "recipe"])
        self.assertAllClose(results["augmentation"]["none"]["relative_to_none"], 1.0)
        self.assertLen(results["augmentation"]["flip"]["rounds"], 2)
        self.assertIn("| first run | 30 |", (tmp / "out" / "fish_input.md").read_text())
        self.assertIn("cpu", results["machine"])


@pytest.mark.slow
class StepsPerExecutionBenchTest(tf.test.TestCase):
    def test_quick_run_times_both_and_finds_the_same_weights(self):
        from bench import steps_per_execution as spe

        out = self.get_temp_dir()
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            result = spe.run(spe.Config(quick=True, out_dir=out))
        (row,) = result["rows"]
        self.assertEqual(row["depth"], 2)
        self.assertTrue(row["same_weights"])  # 64 steps per call train the same weights
        self.assertGreater(row["seconds_1"], 0)
        # The speedup is the ratio of the saved seconds, rounded to 2 decimals.
        self.assertAllClose(row["speedup"], row["seconds_1"] / row["seconds_fast"], atol=0.0051)
        self.assertEqual(result["fast_steps"], 64)
        saved = json.loads((Path(out) / "steps_per_execution.json").read_text())
        self.assertEqual(saved["rows"], result["rows"])
        self.assertIn("2 hidden layers:", printed.getvalue())

    def test_bad_depths_exit_2(self):
        from bench import steps_per_execution as spe

        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as ctx:
            spe.main(["--depths", "0"])
        self.assertEqual(ctx.exception.code, 2)
        self.assertIn("error: depths must be integers >= 1, got (0,).", err.getvalue())



@pytest.mark.slow
class PrecisionBenchTest(tf.test.TestCase):
    def test_quick_run_times_both_policies_and_builds_what_it_says(self):
        from bench import precision
        from recipes.runs import intra_op_threads

        out = self.get_temp_dir()
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            result = precision.run(precision.Config(quick=True, out_dir=out))
        self.assertEqual([r["family"] for r in result["families"]], ["mlp_20x100", "cnn_16_32"])
        for row in result["families"]:
            self.assertEqual((row["built_float32"], row["built_bf16"]),
                             ("float32", "mixed_bfloat16"))
            self.assertAllClose(row["speedup"], row["seconds_float32"] / row["seconds_bf16"],
                                atol=0.0051)
        self.assertEqual(result["recipe_rows"], [])
        # TensorFlow already runs here: the bench records its thread count, never resets it
        self.assertEqual(result["intra_op_threads"], intra_op_threads())
        saved = json.loads((Path(out) / "precision.json").read_text())
        self.assertEqual(saved["families"], result["families"])
        table = (Path(out) / "precision.md").read_text()
        self.assertIn("| `cnn_16_32` | recipe-cnn (16-32 filters, dense 64, batch 64) |", table)
        self.assertIn(result["machine"]["cpu"], table)
        self.assertIn("cnn_16_32: float32", printed.getvalue())
        self.assertEqual(keras.config.dtype_policy().name, "float32")

    def test_bad_recipe_and_images_exit_2(self):
        from bench import precision

        for argv, message in ((["--recipes", "gd"], "invalid choice: 'gd'"),
                              (["--images", "10"], "images must be >= 256, got 10.")):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as ctx:
                precision.main(argv)
            self.assertEqual(ctx.exception.code, 2)
            self.assertIn(message, err.getvalue())

