"""ch11.diagnose: the CLI on saved models, tiny fish folders and (slow) real MNIST."""

import contextlib
import dataclasses
import io
import json
import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from ch11 import diagnose
from ch11.diagnose import inputs
from recipes.builders import build_cnn, build_mlp
from recipes.specs import CNNSpec, MLPSpec

COLOURS = {"a_red": (200, 30, 30), "b_green": (30, 200, 30), "c_blue": (30, 30, 200)}


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = diagnose.main(argv)
        except SystemExit as e:  # argparse's own errors
            code = e.code
    return code, out.getvalue(), err.getvalue()


def fish_folder(root: Path, per_class: int = 15) -> Path:
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (16, 16, 3)), 0, 255)
            Image.fromarray(pixels.astype("uint8")).save(root / name / f"{i}.png")
    return root


def colour_model(outputs=3, dead=0):
    """Rescaling first (raw pixels), one ReLU layer whose first `dead` units cannot fire."""
    model = keras.Sequential([
        keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255, name="input_rescale"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="relu", name="hidden_0"),
        keras.layers.Dense(outputs, activation="softmax", name="output")], name="colours")
    kernel, bias = model.get_layer("hidden_0").get_weights()
    kernel = np.abs(kernel)  # inputs are positive: every other unit fires
    bias[:dead] = -1e4
    model.get_layer("hidden_0").set_weights([kernel, bias])
    return model


class DiagnoseCliTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        keras.backend.clear_session(free_memory=False)
        self.tmp = Path(self.get_temp_dir())

    def test_help_lists_every_option(self):
        code, out, _ = run_main(["--help"])
        self.assertEqual(code, 0)
        for f in dataclasses.fields(diagnose.Config):
            self.assertIn("--" + f.name.replace("_", "-"), out)
        self.assertIn("Pixel scale rule", out)

    def test_bad_options_fail_with_a_message(self):
        for argv, message in (
            ([], "--model is required: the path of a .keras model file."),
            (["--model", "m.keras", "--samples", "5"], "samples must be >= 10, got 5."),
            (["--model", "m.keras", "--probe-steps", "-1"], "probe_steps must be >= 0, got -1."),
            (["--model", "m.keras", "--data", "fish"], "--data fish needs --data-dir DIR"),
            (["--model", "m.keras", "--data", "cifar"], "invalid choice: 'cifar'"),
        ):
            code, _, err = run_main(argv)
            self.assertEqual(code, 2, argv)
            self.assertIn(message, err)

    def test_a_file_that_is_not_a_keras_model(self):
        text = self.tmp / "notes.keras"
        text.write_text("not a model")
        code, out, err = run_main(["--model", str(text), "--out-dir", str(self.tmp)])
        self.assertEqual(code, 2)
        self.assertIn(f"error: '{text}' is not a Keras model file: a .keras file is a zip "
                      "archive and this one is not.", err)
        archive = self.tmp / "archive.keras"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("hello.txt", "hi")
        code, _, err = run_main(["--model", str(archive)])
        self.assertEqual(code, 2)
        self.assertIn(f"'{archive}' is not a Keras model file (", err)
        self.assertIn("Give a file written by model.save('name.keras').", err)
        code, _, err = run_main(["--model", str(self.tmp / "missing.keras")])
        self.assertEqual(code, 2)
        self.assertIn("does not exist", err)
        for stream in (out, err):
            self.assertNotIn("Traceback", stream)
        self.assertFalse((self.tmp / "diagnose").exists())  # no run folder for bad input

    def test_data_that_do_not_fit_the_model(self):
        path = self.tmp / "colours.keras"
        colour_model().save(path)
        code, _, err = run_main(["--model", str(path), "--data", "mnist"])
        self.assertEqual(code, 2)
        self.assertIn("error: --data mnist gives 28x28 grey images, but model 'colours' takes "
                      "inputs of shape (None, 16, 16, 3).", err)
        mlp = self.tmp / "mlp.keras"
        build_mlp(MLPSpec(hidden_units=(8,)), (28, 28), 10).save(mlp)
        folder = fish_folder(self.tmp / "fish")
        code, _, err = run_main(["--model", str(mlp), "--data", "fish", "--data-dir", str(folder)])
        self.assertEqual(code, 2)
        self.assertIn("--data fish gives (H, W, 3) colour photos, but model 'mlp' takes inputs "
                      "of shape (None, 28, 28).", err)
        four = self.tmp / "four.keras"
        colour_model(outputs=4).save(four)
        code, _, err = run_main(["--model", str(four), "--data", "fish", "--data-dir",
                                 str(folder), "--out-dir", str(self.tmp)])
        self.assertEqual(code, 2)
        self.assertIn("Model 'colours' has 4 output units, but the fish data have 3 classes.", err)
        code, _, err = run_main(["--model", str(path), "--data", "fish", "--data-dir",
                                 str(self.tmp / "nowhere")])
        self.assertEqual(code, 2)
        self.assertIn("does not exist", err)
        self.assertNotIn("Traceback", err)

    def test_a_history_that_is_not_a_history_csv(self):
        path = self.tmp / "colours.keras"
        colour_model().save(path)
        folder = fish_folder(self.tmp / "fish")
        notes = self.tmp / "notes.txt"
        notes.write_text("The model trained for 5 epochs and looked fine.\n")
        no_loss = self.tmp / "metrics.csv"
        pd.DataFrame({"accuracy": [0.5, 0.6], "val_accuracy": [0.5, 0.55]}).to_csv(no_loss)
        words = self.tmp / "words.csv"
        words.write_text("epoch,loss\n1,low\n2,lower\n")
        header = self.tmp / "header.csv"
        header.write_text("epoch,loss,val_loss\n")
        for history, message in (
            (notes, f"error: '{notes}' is not a history CSV: it has no 'loss' column (columns: "
                    "The model trained for 5 epochs and looked fine.). Give the CSV of a "
                    "Keras History"),
            (no_loss, "it has no 'loss' column (columns: Unnamed: 0, accuracy, val_accuracy)"),
            (words, f"'{words}' is not a history CSV: column(s) loss hold text, not numbers."),
            (header, f"History file '{header}' holds no epoch (a header and no rows)."),
            (self.tmp / "missing.csv",
             f"History file '{self.tmp / 'missing.csv'}' does not exist."),
        ):
            code, out, err = run_main(["--model", str(path), "--data", "fish", "--data-dir",
                                       str(folder), "--history", str(history), "--out-dir",
                                       str(self.tmp / "runs")])
            self.assertEqual(code, 2, history)
            self.assertIn(message, err)
            self.assertNotIn("Traceback", err)
        self.assertFalse((self.tmp / "runs").exists())  # no run folder for bad input
        # A real history (as Keras's CSVLogger writes it) is read as it is.
        good = self.tmp / "history.csv"
        good.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.2,0.4,1.3\n"
                        "1,0.7,0.8,0.6,nan\n")
        frame = inputs.load_history(good)
        self.assertEqual(list(frame.columns), ["epoch", "accuracy", "loss", "val_accuracy",
                                               "val_loss"])
        self.assertAllClose(frame["loss"], [1.2, 0.8])
        self.assertTrue(np.isnan(frame["val_loss"].iloc[1]))

    def test_pixel_scale_rule(self):
        self.assertTrue(inputs._raw_pixels(colour_model()))
        self.assertTrue(inputs._raw_pixels(build_mlp(MLPSpec(input_norm="rescale"), (28, 28),
                                                       10)))
        self.assertFalse(inputs._raw_pixels(build_mlp(MLPSpec(), (28, 28), 10)))
        self.assertFalse(inputs._raw_pixels(build_cnn(CNNSpec(), (28, 28), 10)))
        late = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2),
                                 keras.layers.Rescaling(2.0)])
        self.assertFalse(inputs._raw_pixels(late))

    def test_fish_run_finds_dead_units_and_writes_the_report(self):
        path = self.tmp / "dead.keras"
        colour_model(dead=6).save(path)
        folder = fish_folder(self.tmp / "fish")
        code, out, err = run_main(["--model", str(path), "--data", "fish", "--data-dir",
                                   str(folder), "--out-dir", str(self.tmp / "runs"),
                                   "--probe-steps", "3"])
        self.assertEqual(code, 1, err)  # findings
        self.assertIn("[WARNING] dead: Dead units: 60% of the 10 units of hidden_0 (relu) output "
                      "0 on all 30 examples", out)
        self.assertIn("    dead_fraction: {hidden_0: 0.6}", out)
        self.assertIn("  remedy: Use leaky ReLU, ELU or SELU", out)
        run_dir = next((self.tmp / "runs" / "diagnose").iterdir())
        for name in ("config.json", "results.json", "report.md", "findings.json", "classes.csv",
                     "gradients.csv", "activations.csv", "weights.csv", "probe.csv",
                     "gradient_flow.png", "activation_histograms.png", "weight_histograms.png",
                     "confusion_matrix.png", "roc_curves.png", "saliency.png", "probe.png"):
            self.assertTrue((run_dir / name).is_file(), name)
        findings = json.loads((run_dir / "findings.json").read_text())
        dead = [f for f in findings if f["kind"] == "dead"][0]
        self.assertAllClose(dead["evidence"]["dead_fraction"]["hidden_0"], 0.6)
        results = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(results["metrics"]["findings"], len(findings))
        self.assertEqual(results["precision"], {"the model examined": {
            "policy": "float32", "why": "as saved in its .keras file"}})
        classes = pd.read_csv(run_dir / "classes.csv")
        self.assertEqual(list(classes["class"]), list(COLOURS))
        self.assertEqual(int(classes["support"].sum()), 15)  # 3 validation + 2 test per class
        report = (run_dir / "report.md").read_text()
        self.assertIn("pixels raw 0-255 (the model starts with Rescaling)", report)
        self.assertIn("## dead (warning)", report)
        self.assertIn("- dead_fraction: {hidden_0: 0.6}", report)
        self.assertIn("![Saliency maps (SmoothGrad) of validation images](saliency.png)", report)
        probe = pd.read_csv(run_dir / "probe.csv")
        self.assertEqual(list(probe["step"]), [0, 1, 2, 3])


@pytest.mark.slow
class DiagnoseMnistTest(tf.test.TestCase):
    def test_healthy_cnn_has_no_findings(self):
        from recipes.data import load_mnist

        keras.utils.set_random_seed(0)
        tmp = Path(self.get_temp_dir())
        (x_train, y_train), (x_test, y_test) = load_mnist()
        model = build_cnn(CNNSpec(filters=(16, 32), dense_units=(64,)), (28, 28), 10)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x_train[:3000] / 255.0, y_train[:3000], epochs=1, verbose=0,
                            validation_data=(x_test[:1000] / 255.0, y_test[:1000]))
        model.save(tmp / "cnn.keras")
        pd.DataFrame(history.history).to_csv(tmp / "history.csv", index=False)
        code, out, err = run_main(["--model", str(tmp / "cnn.keras"), "--data", "mnist",
                                   "--samples", "600", "--probe-steps", "5", "--history",
                                   str(tmp / "history.csv"), "--out-dir", str(tmp / "runs")])
        self.assertEqual(code, 0, out + err)
        self.assertIn("No findings", out)
        run_dir = next((tmp / "runs" / "diagnose").iterdir())
        self.assertEqual(json.loads((run_dir / "findings.json").read_text()), [])
        results = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(results["metrics"]["findings"], 0)
        self.assertGreater(results["metrics"]["val_accuracy"], 0.8)
        self.assertLessEqual(results["metrics"]["val_accuracy"], 1.0)
        classes = pd.read_csv(run_dir / "classes.csv")
        self.assertLen(classes, 10)
        self.assertEqual(int(classes["support"].sum()), 600)
        self.assertTrue(np.all(classes["auc"].between(0.9, 1.0)))
        report = (run_dir / "report.md").read_text()
        self.assertIn("600 training and 600 validation examples, pixels scaled to [0, 1]", report)
        self.assertIn("No findings", report)
