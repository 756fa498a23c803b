"""ch11._evidence, the --seeds config plumbing and the run's commit: numbers and words."""

import dataclasses
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from ch11 import _experiment as ex
from ch11._config import SeededConfig, headline_seeds, seeds_option, seeds_why
from ch11._evidence import (
    BookFigure,
    Evidence,
    compare,
    effect,
    is_effect,
    seed_summary,
    seeds_note,
    spread,
    summary_markdown,
)
from recipes.runs import git_commit, machine_info


def _summary() -> pd.DataFrame:
    table = pd.DataFrame({
        "variant": ["none"] * 3 + ["wide"] * 3 + ["far"] * 3 + ["single"],
        "acc": [0.70, 0.72, 0.74, 0.71, 0.76, 0.69, 0.90, 0.91, 0.92, 0.95],
    })
    return seed_summary(table, "variant", ["acc"])


class SeedSummaryTest(tf.test.TestCase):
    def test_mean_sample_std_min_max_per_variant_in_order(self):
        s = _summary()
        self.assertEqual(list(s["variant"]), ["none", "wide", "far", "single"])
        self.assertEqual(list(s["seeds"]), [3, 3, 3, 1])
        row = s.set_index("variant").loc["none"]
        self.assertAllClose([row["acc_mean"], row["acc_std"], row["acc_min"], row["acc_max"]],
                            [0.72, np.std([0.70, 0.72, 0.74], ddof=1), 0.70, 0.74])
        self.assertTrue(np.isnan(s.set_index("variant").loc["single", "acc_std"]))

    def test_non_finite_values_are_left_out_and_all_nan_stays_nan(self):
        table = pd.DataFrame({"v": ["a", "a", "b"], "x": [1.0, np.nan, np.inf]})
        s = seed_summary(table, "v", ["x"]).set_index("v")
        self.assertEqual(s.loc["a", "seeds"], 2)
        self.assertAllClose(s.loc["a", "x_mean"], 1.0)
        self.assertTrue(np.isnan(s.loc["a", "x_std"]))
        self.assertTrue(np.isnan(s.loc["b", "x_mean"]))
        self.assertEqual(spread(seed_summary(table, "v", ["x"]), "b", "x"), "nan")


class EffectTest(tf.test.TestCase):
    def test_an_effect_must_exceed_the_spread_of_both(self):
        s = _summary()
        self.assertTrue(is_effect(s, "far", "acc", "none"))
        self.assertFalse(is_effect(s, "wide", "acc", "none"))
        self.assertIsNone(is_effect(s, "single", "acc", "none"))
        self.assertEqual(effect(s, "far", "acc"), "+0.190 (an effect)")
        self.assertEqual(effect(s, "wide", "acc"), "+0.000 (within noise)")
        self.assertEqual(effect(s, "single", "acc", digits=2),
                         "+0.23 (one seed: no spread to compare with)")
        self.assertEqual(effect(s, "none", "acc", "far"), "-0.190 (an effect)")

    def test_a_nan_mean_is_undefined_and_an_unknown_variant_is_named(self):
        table = pd.DataFrame({"v": ["a", "a", "b", "b"], "x": [np.nan, np.nan, 1.0, 2.0]})
        s = seed_summary(table, "v", ["x"])
        self.assertStartsWith(effect(s, "a", "x", "b"), "undefined")
        self.assertIsNone(is_effect(s, "a", "x", "b"))
        with self.assertRaisesRegex(KeyError, r"No variant 'c' in the summary's 'v' column "
                                              r"\(a, b\)"):
            effect(s, "c", "x", "b")

    def test_words(self):
        s = _summary()
        self.assertEqual(spread(s, "none", "acc"), "0.720 ± 0.020")
        self.assertEqual(spread(s, "single", "acc"), "0.950 (one seed)")
        self.assertEqual(compare(s, "far", "acc", "none", names=("A", "B")),
                         "A 0.910 ± 0.010 vs B 0.720 ± 0.020: +0.190 (an effect)")
        md = summary_markdown(s, ["acc"])
        self.assertIn("| variant | seeds | acc |", md)
        self.assertIn("| none | 3 | 0.72 ± 0.02 [0.7, 0.74] |", md)
        self.assertIn("| single | 1 | 0.95 |", md)

    def test_seeds_note(self):
        self.assertEqual(seeds_note([42, 43, 44]), "3 seeds (42, 43, 44)")
        self.assertEqual(seeds_note([42, 43], "it is slow"),
                         "2 seeds (42, 43; fewer because it is slow)")
        self.assertEqual(seeds_note([42], "it is slow"), "one seed (42; fewer because it is slow)")
        self.assertEqual(seeds_note([1, 2, 3], "ignored with three"), "3 seeds (1, 2, 3)")


class EvidenceTest(tf.test.TestCase):
    def test_json_and_sections_carry_the_spread_and_the_book(self):
        s = _summary()
        book = BookFigure("a claim", "0.80 vs 0.71", setting="5 epochs")
        ev = Evidence("the headline", (1, 2, 3), s, ("acc",), book, "agrees: yes.",
                      seed_table=pd.DataFrame({"variant": ["a"], "acc": [0.5], "seed": [1]}))
        data = ev.to_json()
        self.assertEqual(data["seeds"], [1, 2, 3])
        self.assertEqual(data["seeds_note"], "3 seeds (1, 2, 3)")
        self.assertEqual(data["book"]["figure"], "0.80 vs 0.71")
        self.assertEqual(data["book"]["dataset"], "Fashion-MNIST")
        sections = dict(ev.sections())
        self.assertIn("the headline", sections["Spread over seeds"])
        self.assertIn("exceeds the spread", sections["Spread over seeds"])
        self.assertIn("| a | 0.5 | 1 |", sections["Spread over seeds"])
        book_text = sections["The book beside us"]
        self.assertIn("The book's figure (Fashion-MNIST): 0.80 vs 0.71 (5 epochs).", book_text)
        self.assertIn("Ours vs the book: agrees: yes.", book_text)
        self.assertEqual(BookFigure("c", None).text, "the book gives no figure")


@dataclasses.dataclass(frozen=True)
class _Two(SeededConfig):
    seeds: tuple[int, ...] | None = seeds_option(2, "it is slow")

    def __post_init__(self) -> None:
        self._check_seeds()


class SeedsConfigTest(tf.test.TestCase):
    def test_default_quick_and_explicit_seeds(self):
        self.assertEqual(headline_seeds(SeededConfig()), (42, 43, 44))
        self.assertEqual(headline_seeds(SeededConfig(seed=7, quick=True)), (7,))
        self.assertEqual(headline_seeds(SeededConfig(seed=7, quick=True, seeds=(7, 8))), (7, 8))
        self.assertEqual(headline_seeds(SeededConfig(seeds=(0, 5))), (0, 5))
        self.assertEqual(headline_seeds(_Two()), (42, 43))
        self.assertEqual(headline_seeds(_Two(quick=True)), (42,))
        self.assertEqual(seeds_why(_Two()), "it is slow")
        self.assertEqual(seeds_why(_Two(seeds=(1,))), "")
        self.assertEqual(seeds_why(SeededConfig()), "")

    def test_bad_seeds_fail_with_a_message(self):
        for seeds, message in (((), "seeds must list at least one seed"),
                               ((3, 3), "seeds must not repeat a seed, got \\(3, 3\\)"),
                               ((1, -2), "seeds must be >= 0, got -2")):
            with self.assertRaisesRegex(ValueError, message):
                _Two(seeds=seeds)

    def test_over_seeds_keeps_the_full_run_and_reruns_the_others(self):
        calls = []

        def rerun(seed):
            calls.append(seed)
            return [{"v": "a", "x": seed / 10}]

        table = ex.over_seeds((42, 5), 42, [{"v": "a", "x": 1.0}], rerun)
        self.assertEqual(calls, [5])
        self.assertEqual(table.to_dict("records"),
                         [{"v": "a", "x": 1.0, "seed": 42}, {"v": "a", "x": 0.5, "seed": 5}])
        table = ex.over_seeds((1, 2), 42, [{"v": "a", "x": 1.0}], rerun)
        self.assertEqual(list(table["seed"]), [1, 2])


class RunProvenanceTest(tf.test.TestCase):
    def test_git_commit_inside_and_outside_a_checkout(self):
        self.assertEqual(git_commit(self.get_temp_dir()), "unknown")
        repo = Path(__file__).resolve().parents[1]
        try:
            head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                                  text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            self.skipTest("no git checkout here")
        self.assertRegex(git_commit(repo), f"^{head}(-dirty)?$")

    def test_machine_info(self):
        info = machine_info()
        self.assertEqual(set(info), {"host", "cpu", "cpus", "load_1min"})
        self.assertGreaterEqual(info["cpus"], 1)
        self.assertTrue(re.search(r"\S", info["cpu"]))
