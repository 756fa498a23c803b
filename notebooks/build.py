"""Write and run `notebooks/chapter11.ipynb`, the chapter in order on the recipes.

The cells live here, as plain strings in the order the notebook shows them, so a change
to the notebook is a readable diff of this file; the `.ipynb` is generated from them and
committed without outputs (a test checks that it matches this file).

    python notebooks/build.py                 # rewrite chapter11.ipynb from CELLS
    python notebooks/build.py --check         # exit 1 if chapter11.ipynb is not CELLS
    python notebooks/build.py --run [--quick] [--output PATH] [--runs DIR]

``--run`` executes the notebook top to bottom in a real Jupyter kernel started with this
Python (its kernelspec is written to a temporary folder, so the kernel is always the
interpreter running this script, whatever kernels are installed) and saves the executed
copy with its outputs (default ``notebooks/chapter11.executed.ipynb``, ignored by git).
``--quick`` sets ``CH11_QUICK=1``: every section on a small slice for a few seconds.
A cell that raises stops the run with the cell's error (exit code 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent
ROOT = NOTEBOOKS.parent
NOTEBOOK = NOTEBOOKS / "chapter11.ipynb"
EXECUTED = NOTEBOOKS / "chapter11.executed.ipynb"


def md(text: str) -> tuple[str, str]:
    """A markdown cell."""
    return "markdown", text.strip("\n")


def code(text: str) -> tuple[str, str]:
    """A code cell."""
    return "code", text.strip("\n")


CELLS = [
    md("""
# Chapter 11: Training Deep Neural Networks, on the recipes

Géron's *Hands-On Machine Learning* (3rd ed.), chapter 11, section by section, on the real
MNIST: every model is built by the `recipes` package (specs, builders, factories), trained
here, and shown with `recipes.plots`. The chapter's full experiments, with their reports,
are `python -m ch11.<name>` (see the README).

**Where to run it**

- In a checkout (after `make install`): `jupyter notebook notebooks/chapter11.ipynb`, or
  `make notebook` to execute it all and save `notebooks/chapter11.executed.ipynb`.
- In **Colab**: open this file from GitHub, and in the next cell set `REPO_URL` to the
  repository's address (the URL you would `git clone`, e.g.
  `https://github.com/OWNER/ch11-recipes`); the cell installs the package from it with
  `pip install git+REPO_URL` when `recipes` is not importable.

**Quick mode**: `QUICK = True` (or the environment variable `CH11_QUICK=1`) shrinks every
section to a small slice and one epoch: the whole notebook runs in about a minute, and
the numbers only show that it works. Full mode takes about 10 minutes on 2 idle CPU cores
(up to 20 on a busy machine).
"""),
    code("""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO_URL = os.environ.get("CH11_REPO_URL", "")  # Colab: "https://github.com/OWNER/ch11-recipes"

# In a checkout (this notebook in notebooks/), use the checkout's code.
ROOT = next((p for p in (Path.cwd(), Path.cwd().parent)
             if (p / "recipes" / "__init__.py").is_file()), Path.cwd())
if (ROOT / "recipes").is_dir() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if importlib.util.find_spec("recipes") is None:
    if not REPO_URL:
        raise RuntimeError("The recipes package is not installed: set REPO_URL above "
                           "(Colab) or run `make install` in a checkout.")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"git+{REPO_URL}"],
                   check=True)
"""),
    code("""
QUICK = os.environ.get("CH11_QUICK", "").lower() not in ("", "0", "false", "no")
RUNS = Path(os.environ.get("CH11_RUNS") or ROOT / "runs") / "notebook"  # TensorBoard logs, searches
FISH_DIR = Path(os.environ.get("CH11_FISH_DIR") or ROOT.parent / "shared" / "data")


def epochs(n: int) -> int:
    \"\"\"`n` epochs, or 1 in quick mode.\"\"\"
    return 1 if QUICK else n


DEEP = 8 if QUICK else 20  # hidden layers of the "deep" networks


print(f"QUICK = {QUICK}; logs in {RUNS}")
"""),
    code("""
%matplotlib inline
import recipes  # first: it quiets TensorFlow's start-up lines

import keras
import numpy as np
import pandas as pd
from IPython.display import Image, display
from recipes import (EpochTimer, GradientMonitor, MLPSpec, build_mlp, build_selu_mlp,
                     confusion_matrix, examine, find_learning_rate, fine_tune, gradient_norms,
                     layer_outputs, layer_statistics, make_optimizer, make_schedule, mc_predict,
                     positive_ranks, recommended_initializer, reuse_layers)
from recipes.callbacks import tensorboard_callbacks
from recipes.plots import (activation_histograms, confusion_heatmap, gradient_flow, image_rows,
                           layer_profile, learning_curves, lr_finder_plot, schedule_curves)
"""),
    md("""
## The data: the full MNIST

`recipes.load_mnist()` returns the 60,000/10,000 images exactly as Keras's loader does,
from Keras's cache, the project's cache, a download, or offline (see the README). As in
the book, the last 5,000 training images are the validation set.
"""),
    code("""
(x_full, y_full), (x_test, y_test) = recipes.load_mnist()
n_train, n_valid = (1_000, 500) if QUICK else (55_000, 5_000)
x_train, y_train = x_full[:n_train] / np.float32(255), y_full[:n_train].astype("int64")
x_valid, y_valid = x_full[-n_valid:] / np.float32(255), y_full[-n_valid:].astype("int64")
x_test, y_test = x_test / np.float32(255), y_test.astype("int64")
print(f"train {x_train.shape}, validation {x_valid.shape}, test {x_test.shape}")
"""),
    md("""
Every model below is trained by this helper: re-seeded (so compared models start equal,
the book's way), compiled with `recipes.make_optimizer`, fitted with the validation set,
and logged to TensorBoard (`recipes.callbacks.tensorboard_callbacks`: the epoch's loss,
accuracy and learning rate, each layer's gradient norm and dead units) under
`runs/notebook/tb/<name>`.
"""),
    code("""
def train(name, build, optimizer="sgd", learning_rate=None, *, n_epochs=2, data=None,
          batch_size=32, callbacks=(), **optimizer_kwargs):
    \"\"\"Seed, build, compile and fit one model; return (model, history).\"\"\"
    x, y = (x_train, y_train) if data is None else data
    recipes.clear_session()  # Keras's, without its gc.collect() (0.2-1 s each) or policy reset
    keras.utils.set_random_seed(42)
    model = build()
    model.compile(optimizer=make_optimizer(optimizer, learning_rate=learning_rate,
                                           **optimizer_kwargs),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    board = tensorboard_callbacks(RUNS / "tb" / name, (x[:256], y[:256]))
    history = model.fit(x, y, epochs=epochs(n_epochs), batch_size=batch_size,
                        validation_data=(x_valid, y_valid), verbose=2,
                        callbacks=[EpochTimer(), *callbacks, *board])
    return model, history


def summary(histories):
    \"\"\"Last epoch's accuracy and validation accuracy of each model.\"\"\"
    return pd.DataFrame({name: {"epochs": len(h.history["loss"]),
                                "accuracy": h.history["accuracy"][-1],
                                "val_accuracy": h.history["val_accuracy"][-1]}
                         for name, h in histories.items()}).T
"""),
    md("""
## 1. The vanishing/exploding gradients problems

The gradient of each hidden layer's weights on one batch, at initialization. The
sigmoid's derivative is at most 1/4, so with small (Glorot) weights the gradient shrinks
by that factor or more at every layer on its way back to the input: the first layers
barely learn. Large N(0, 1) weights (the practice before 2010) offset the shrinking but
saturate the units (second figure: outputs stuck near 0 and 1, figure 11-1 of the book).
Tanh with Glorot initialization and ReLU with He initialization keep every layer's
gradient within a small factor ("Glorot and He Initialization").
"""),
    code("""
depth = 10 if QUICK else 30
nets = {"sigmoid + N(0, 1)": ("sigmoid", "random_normal"),
        "sigmoid + Glorot": ("sigmoid", "glorot_uniform"),
        "tanh + Glorot": ("tanh", "glorot_uniform"),
        "ReLU + He": ("relu", "he_normal")}
keras.utils.set_random_seed(42)
models = {name: build_mlp(MLPSpec.deep(depth, 100, activation=a, initializer=i), (28, 28), 10)
          for name, (a, i) in nets.items()}
grads = {name: gradient_norms(m, x_train[:256], y_train[:256], layers=r"hidden_\\d+")
         for name, m in models.items()}
gradient_flow(grads, title=f"Gradient norm per hidden layer at initialization ({depth} layers)");
"""),
    code("""
activation_histograms(layer_outputs(models["sigmoid + N(0, 1)"], x_train[:500]), max_layers=8,
                      title="sigmoid + N(0, 1): the outputs pile up at 0 and 1 (saturation)");
"""),
    md("""
## 2. Initialization

The same deep ReLU network with LeCun, Glorot and He initialization (He is the book's
choice for ReLU; `recommended_initializer` is the chapter's table 11-1).
"""),
    code("""
print({a: recommended_initializer(a) for a in ("sigmoid", "tanh", "relu", "selu")})
histories = {}
for init in ("lecun_normal", "glorot_uniform", "he_normal"):
    spec = MLPSpec.deep(DEEP, 100, activation="relu", initializer=init)
    _, histories[init] = train(f"init_{init}", lambda s=spec: build_mlp(s, (28, 28), 10), "sgd",
                               0.01)
learning_curves(histories, title=f"Deep ReLU net ({DEEP} x 100), SGD 0.01");
summary(histories)
"""),
    md("""
## 3. Better activation functions, and dying ReLUs

Leaky ReLU, ELU, SELU, GELU and Swish against ReLU on a 10-layer network; then the
dying ReLU problem: with a too-large learning rate (Adam at 0.01), many ReLU units output
0 for every input and stop learning, while leaky ReLU's units cannot die.
`GradientMonitor` records each activation layer's dead fraction every epoch.
"""),
    code("""
activations = ["relu", "elu"] + ([] if QUICK else ["leaky_relu", "selu", "gelu", "swish"])
histories = {}
for activation in activations:
    spec = MLPSpec.deep(10, 100, activation=activation)  # initializer "auto": the chapter's table
    _, histories[activation] = train(f"activation_{activation}",
                                     lambda s=spec: build_mlp(s, (28, 28), 10), "sgd", 0.01)
learning_curves(histories, title="10 x 100, SGD 0.01");
summary(histories).sort_values("val_accuracy", ascending=False)
"""),
    code("""
dead = []
for activation in ("relu", "leaky_relu"):
    monitor = GradientMonitor(x_train[:1000], y_train[:1000])  # dead/<layer> in the history
    spec = MLPSpec.deep(10, 100, activation=activation)
    _, history = train(f"dying_{activation}", lambda s=spec: build_mlp(s, (28, 28), 10), "adam",
                       0.01, callbacks=[monitor])
    last = {k: v[-1] for k, v in history.history.items() if k.startswith("dead/act_")}
    dead.append(pd.DataFrame({"variant": activation, "depth": range(len(last)),
                              "dead_fraction": list(last.values())}))
layer_profile(pd.concat(dead), "dead_fraction", log=False,
              title="Adam at 0.01: the fraction of dead units in each layer");
"""),
    md("""
## 4. SELU: self-normalizing networks

With standardized inputs, LeCun normal initialization and a plain stack of dense layers,
SELU keeps each layer's outputs at mean 0 and standard deviation 1 (Klambauer et al.):
`build_selu_mlp` builds exactly that, adapting a `Normalization` layer on the training set.
"""),
    code("""
depth = 20 if QUICK else 50
keras.utils.set_random_seed(42)
selu_net = build_selu_mlp(depth, 100, (28, 28), 10, x_train=x_train)
relu_net = build_mlp(MLPSpec.deep(depth, 100, activation="relu", initializer="lecun_normal",
                                  input_norm="normalization"), (28, 28), 10, adapt_data=x_train)
stats = pd.concat([layer_statistics(selu_net, x_valid[:500]).assign(variant="SELU + LeCun"),
                   layer_statistics(relu_net, x_valid[:500]).assign(variant="ReLU + LeCun")])
layer_profile(stats, "std", title=f"Std of each layer's output at initialization ({depth} layers)");
"""),
    code("""
histories = {}
relu_he = MLPSpec.deep(depth, 100, activation="relu")  # He initialization ("auto")
for name, net in (("selu", lambda: build_selu_mlp(depth, 100, (28, 28), 10, x_train=x_train)),
                  ("relu_he", lambda: build_mlp(relu_he, (28, 28), 10))):
    _, histories[name] = train(f"selu_{name}", net, "sgd", 0.01, n_epochs=1)
summary(histories)
"""),
    md("""
## 5. Batch normalization

BN before each activation lets the same MLP train at a learning rate where it otherwise
struggles, and converge in fewer epochs.
"""),
    code("""
histories = {}
for placement in ("none", "before"):
    spec = MLPSpec(hidden_units=(300, 100), batch_norm=placement)
    _, histories[f"BN {placement}"] = train(f"bn_{placement}",
                                            lambda s=spec: build_mlp(s, (28, 28), 10), "sgd", 0.05,
                                            n_epochs=3)
learning_curves(histories, title="MLP 300-100, SGD 0.05");
summary(histories)
"""),
    md("""
## 6. Gradient clipping

A deep ReLU MLP with momentum at a learning rate that is too high: without clipping
the loss explodes (`TerminateOnNaN` stops it); `clipnorm` clips each weight's gradient,
`global_clipnorm` the whole gradient vector, keeping its direction.
"""),
    code("""
histories = {}
for clip in ("none", "clipnorm", "global_clipnorm"):
    kwargs = {} if clip == "none" else {clip: 1.0}
    _, histories[clip] = train(f"clipping_{clip}",
                               lambda: build_mlp(MLPSpec.deep(DEEP, 100), (28, 28), 10),
                               "momentum", 0.05, n_epochs=2,
                               callbacks=[keras.callbacks.TerminateOnNaN()], **kwargs)
summary(histories)
"""),
    md("""
## 7. Reusing pretrained layers

Model A learns digits 0-7 on the full training set; task B, 8 vs 9, has only 200
training images. Model B reuses A's hidden layers (`reuse_layers` clones them: training B
leaves A unchanged), trains its new head with them frozen, then fine-tunes everything at
a lower rate (`fine_tune`), and is compared with the same network trained from scratch.
"""),
    code("""
is_a = y_train < 8
recipes.clear_session()
keras.utils.set_random_seed(42)
model_a = build_mlp(MLPSpec(hidden_units=(100, 100, 100)), (28, 28), 8, name="model_A")
model_a.compile(optimizer=make_optimizer("sgd", learning_rate=0.05),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model_a.fit(x_train[is_a], y_train[is_a], epochs=epochs(3), verbose=2)

def task_b(x, y, n=None):
    keep = y >= 8
    return x[keep][:n], (y[keep][:n] == 9).astype("float32")

(xb, yb), (xb_val, yb_val), (xb_test, yb_test) = (task_b(x_train, y_train, 200),
                                                  task_b(x_valid, y_valid), task_b(x_test, y_test))
print(f"task B: {len(xb)} training images")
"""),
    code("""
results = {}
keras.utils.set_random_seed(42)
scratch = build_mlp(MLPSpec(hidden_units=(100, 100, 100)), (28, 28), 1, name="B_scratch")
scratch.compile(optimizer=make_optimizer("sgd", learning_rate=0.05), loss="binary_crossentropy",
                metrics=["accuracy"])
h_scratch = scratch.fit(xb, yb, validation_data=(xb_val, yb_val), epochs=epochs(20), verbose=0)
results["from scratch"] = scratch.evaluate(xb_test, yb_test, verbose=0)[1]

keras.utils.set_random_seed(42)
base = [layer.name for layer in model_a.layers  # every layer of A below its output layer
        if not isinstance(layer, keras.layers.InputLayer)].index("output")
model_b = reuse_layers(model_a, base, new_head=1, name="B_on_A")
phases = fine_tune(model_b, (xb, yb), (xb_val, yb_val), base_layers=base, optimizer="sgd",
                   learning_rate=0.05, frozen_epochs=epochs(4), fine_tune_epochs=epochs(16),
                   loss="binary_crossentropy", verbose=0)
results["reusing A (frozen, then fine-tuned)"] = model_b.evaluate(xb_test, yb_test, verbose=0)[1]
learning_curves({"from scratch": h_scratch, "B on A, frozen": phases["phase1"],
                 "B on A, fine-tuned": phases["phase2"]}, title="Task B: 8 vs 9 from 200 images");
pd.Series(results, name="test accuracy")
"""),
    md("""
## 8. Faster optimizers

Momentum, Nesterov, RMSProp, Adam and Nadam against plain SGD, each at the book's
default learning rate (`recipes.names.DEFAULT_LEARNING_RATES`). The right panel of the
second figure puts the validation loss against wall-clock seconds.
"""),
    code("""
optimizers = ["sgd", "adam"] + ([] if QUICK else ["momentum", "nesterov", "rmsprop", "nadam"])
histories = {}
for name in optimizers:
    _, histories[name] = train(f"optimizer_{name}",
                               lambda: build_mlp(MLPSpec(hidden_units=(300, 100)), (28, 28), 10),
                               name, n_epochs=3)
learning_curves(histories, metrics=("loss", "accuracy"), title="MLP 300-100")
learning_curves(histories, metrics=("loss",), x="time", title="The same, against seconds");
summary(histories).sort_values("val_accuracy", ascending=False)
"""),
    md("""
## 9. Learning rate scheduling: the range test and 1cycle

The schedules `make_schedule` builds, then the learning-rate range test: train for up to
one epoch while the rate grows exponentially, and take a tenth of the rate where the loss
is lowest (`find_learning_rate` restores the model afterwards). Then SGD with Nesterov
momentum at that rate, constant or as 1cycle (Smith), which rises to it and comes back
down within the training run.
"""),
    code("""
steps_per_epoch = int(np.ceil(len(x_train) / 32))
total = epochs(3) * steps_per_epoch
run = dict(learning_rate=0.1, steps_per_epoch=steps_per_epoch, epochs=epochs(3))
schedule_curves({
    "power": make_schedule("power", s=total // 10, **run),
    "exponential": make_schedule("exponential", s=total // 2, **run),
    "piecewise": make_schedule("piecewise", boundaries=[total // 3, 2 * total // 3],
                               values=[0.1, 0.05, 0.01], **run),
    "1cycle": make_schedule("1cycle", **run),
    "cosine": make_schedule("cosine", **run),
}, steps=total, title="Learning rate per step over the training run");
"""),
    code("""
recipes.clear_session()
keras.utils.set_random_seed(42)
probe = build_mlp(MLPSpec(hidden_units=(300, 100)), (28, 28), 10)
probe.compile(optimizer=make_optimizer("nesterov"), loss="sparse_categorical_crossentropy")
found = find_learning_rate(probe, (x_train, y_train), min_lr=1e-4, max_lr=10.0,
                           steps=min(300, steps_per_epoch))
print(f"lowest loss at {found.min_loss_lr:.3g}; suggested rate {found.suggestion:.3g}")
lr_finder_plot(found.table, found.suggestion);
"""),
    code("""
histories = {}
for name, rate in (("constant", found.suggestion),  # both at the range test's rate
                   ("1cycle", make_schedule("1cycle", learning_rate=found.suggestion,
                                            steps_per_epoch=steps_per_epoch, epochs=epochs(3)))):
    _, histories[name] = train(f"schedule_{name}",
                               lambda: build_mlp(MLPSpec(hidden_units=(300, 100)), (28, 28), 10),
                               "nesterov", rate, n_epochs=3)
learning_curves(histories, title="Constant rate vs 1cycle");
summary(histories)
"""),
    md("""
## 10. Avoiding overfitting: l2, dropout, and MC dropout

On a 5,000-image subset a 300-100 MLP overfits: the training accuracy runs away from the
validation accuracy. An l2 penalty and dropout narrow the gap. Monte Carlo dropout keeps
dropout on at inference (`MCDropout` layers, `dropout_kind="mc"`) and averages many
predictions: their spread says how unsure the model is, larger on its mistakes.
"""),
    code("""
subset = (x_train[:1000], y_train[:1000]) if QUICK else (x_train[:5000], y_train[:5000])
specs = {"none": MLPSpec(hidden_units=(300, 100)),
         "l2": MLPSpec(hidden_units=(300, 100), l2=1e-4),
         "dropout": MLPSpec(hidden_units=(300, 100), dropout_rate=0.3),
         "mc_dropout": MLPSpec(hidden_units=(300, 100), dropout_rate=0.3, dropout_kind="mc")}
histories, models = {}, {}
for name, spec in specs.items():
    models[name], histories[name] = train(f"regularization_{name}",
                                          lambda s=spec: build_mlp(s, (28, 28), 10), "nadam",
                                          n_epochs=20, data=subset)
learning_curves({k: histories[k] for k in ("none", "l2", "dropout")}, metrics=("accuracy",),
                title="Train (dashed) vs validation (solid)");
gap = summary(histories)
gap.assign(gap=gap["accuracy"] - gap["val_accuracy"])
"""),
    code("""
mean, std = mc_predict(models["mc_dropout"], x_test[:2000], samples=10 if QUICK else 50)
right = mean.argmax(1) == y_test[:2000]
spread = std[np.arange(len(std)), mean.argmax(1)]  # std of the predicted class's probability
pd.DataFrame({"predictions": [right.sum(), (~right).sum()],
              "mean confidence": [mean.max(1)[right].mean(), mean.max(1)[~right].mean()],
              "mean spread (std)": [spread[right].mean(), spread[~right].mean()]},
             index=["right", "wrong"])
"""),
    md("""
## 11. The training doctor

`recipes.examine` (and `recipes.diagnose`, its findings only) measures a trained model on
a few batches (gradients, activations, weights, per-class scores, the train-validation
gap) and says what is wrong, with the numbers and the chapter's remedy. Here, the
1990s network of section 1 after one epoch.
"""),
    code("""
sick, history = train("doctor_sick", lambda: build_mlp(
    MLPSpec.deep(10, 100, activation="sigmoid", initializer="random_normal"), (28, 28), 10),
    "sgd", 0.01, n_epochs=1)
exam = examine(sick, x_train[:2000], y_train[:2000], x_valid, y_valid, history=history)
for finding in exam.findings:
    print(finding, end="\\n\\n")
gradient_flow(exam.gradients, title="The sick network's gradients");
"""),
    md("""
## 12. A small Keras Tuner search

`tuning.search.run` is `python -m tuning.search` from Python: a random search of the MLP
space (depth, width, activation, initializer, batch norm, dropout, l2, optimizer, learning
rate, schedule, batch size) through the same builders, then the best hyperparameters
retrained on train + validation and tested. Each trial's TensorBoard logs, with its
hyperparameters, go under `tb/` in the project folder (TensorBoard's HParams tab).
"""),
    code("""
from tuning.config import SearchConfig
from tuning.search import run as search

searched = search(SearchConfig(model="mlp", quick=QUICK, subset=None if QUICK else 12_000,
                               max_trials=2 if QUICK else 8, max_epochs=None if QUICK else 3,
                               directory=str(RUNS / "tuning"), project_name="notebook_mlp",
                               overwrite=True, top_k=3))
print(searched["test"])
searched["table"].head()
"""),
    code("""
display(Image(searched["project_dir"] / "hyperparameters_vs_objective.png"))
"""),
    md("""
## 13. Fish photographs

The course's fish photos (`../shared/data/fish-train` and `fish-val` beside the
checkout, or `CH11_FISH_DIR`), when present: the from-scratch CNN recipe of
`ch11.fish` (He initialization, BN, a stride-2 stem, global average pooling, dropout,
augmentation in the model, 1cycle at the LR range test's rate, early stopping) through
`ch11._fish.train_cnn`. In quick mode only the validation folder is used, at 32x32.
`python -m ch11.fish` is the full experiment with its report.
"""),
    code("""
if (FISH_DIR / "fish-train").is_dir() and (FISH_DIR / "fish-val").is_dir():
    from ch11 import _fish
    from recipes.data.fish import load_fish_splits

    if QUICK:
        fish = load_fish_splits(FISH_DIR / "fish-val", image_size=32, validation_split=0.2,
                                test_split=0.5)
    else:
        fish = load_fish_splits(FISH_DIR / "fish-train", FISH_DIR / "fish-val", image_size=64)
    print(fish.summary())
    policy = _fish.set_precision("auto")  # bfloat16 where the CPU computes it natively
    cnn = _fish.train_cnn(_fish.recipe_spec(quick=QUICK), fish, epochs=epochs(10), patience=3,
                          batch_size=16 if QUICK else 64, log_dir=RUNS / "tb" / "fish_cnn")
    _fish.evaluate(cnn, fish)
    keras.mixed_precision.set_global_policy("float32")
    print(f"{policy}: test accuracy {cnn.accuracy['test']:.3f}, macro AUC {cnn.macro_auc:.3f}")
    confusion_heatmap(confusion_matrix(fish.y["test"], cnn.probs["test"], fish.class_names));
else:
    print(f"No fish photos in {FISH_DIR}: section skipped.")
"""),
    md("""
Where the rare class's AUC goes: `positive_ranks` lists each "animal fish bass" test photo
with its score and the number of other test photos the model scores higher for bass (the
AUC is one minus those counts over all pairs, so one photo ranked far down costs more than
several ranked a little low); `image_rows` shows them above the photos it confuses with
bass.
"""),
    code("""
if (FISH_DIR / "fish-train").is_dir() and (FISH_DIR / "fish-val").is_dir():
    bass = fish.class_names.index("animal fish bass")
    y_fish, score = fish.y["test"], cnn.probs["test"][:, bass]
    ranks = positive_ranks(y_fish, cnn.probs["test"], bass, fish.class_names)
    others = np.flatnonzero(y_fish != bass)[np.argsort(-score[y_fish != bass])[:8]]
    print(f"bass AUC {ranks.attrs['auc']:.3f} over {ranks.attrs['negatives']} other photos")
    above = ranks["negatives_above"]
    image_rows({"bass test photos: score, other photos above": (
                    fish.x["test"][ranks["row"]],
                    [f"{s:.2f}, {a:g} above" for s, a in zip(ranks["score"], above)]),
                "the other photos scored highest for bass": (
                    fish.x["test"][others], [fish.class_names[y_fish[i]][-16:] for i in others])});
"""),
    md("""
## TensorBoard

Every model above wrote its logs under `runs/notebook/tb/`, and so does every
`python -m ch11.<name>` run (`runs/<experiment>/<run>/tb/<variant>`) and every tuner trial.
In Jupyter or Colab:

```
%load_ext tensorboard
%tensorboard --logdir runs
```

or `tensorboard --logdir runs/` in a terminal. Scalars: each variant's `train` and
`validation` loss and accuracy per epoch, its learning rate (1cycle's rise and fall), and
under `gradients` each layer's gradient norm (vanishing: the first layers' lines far
below the last ones) and dead-unit fraction (dying ReLUs). HParams: the search's trials,
one row per trial with its hyperparameters and scores.
"""),
]


def notebook():
    """The notebook of `CELLS`, without outputs.

    Returns:
        An ``nbformat`` v4 notebook.
    """
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    for i, (kind, text) in enumerate(CELLS):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(text, id=f"cell-{i:02d}"))
    return nb


def write(path: Path = NOTEBOOK) -> Path:
    """Write the notebook of `CELLS` to `path` (no outputs).

    Returns:
        The path.
    """
    import nbformat

    nbformat.write(notebook(), str(path))
    return path


def is_current(path: Path = NOTEBOOK) -> bool:
    """Whether `path` holds exactly the cells of `CELLS` (and no outputs)."""
    import nbformat

    saved = nbformat.read(str(path), as_version=4)
    return ([(c.cell_type, c.source) for c in saved.cells] == list(CELLS)
            and not any(c.get("outputs") for c in saved.cells))


def execute(path: Path = NOTEBOOK, *, quick: bool = False, output: Path | None = None,
            runs: Path | None = None, timeout: int = 1800):
    """Run the notebook top to bottom in a Jupyter kernel on this Python; save the result.

    Args:
        path: the notebook.
        quick: set ``CH11_QUICK=1`` in the kernel.
        output: where to save the executed notebook; `None` saves nothing.
        runs: the kernel's ``CH11_RUNS`` (where logs and searches go). Defaults to the
            checkout's ``runs/``.
        timeout: seconds one cell may take.

    Returns:
        ``(notebook, seconds)``: the executed notebook and the wall time.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised (the message shows it).
    """
    import nbformat
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the notebook goes inline
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["CH11_QUICK"] = "1" if quick else "0"
    if runs is not None:
        env["CH11_RUNS"] = str(runs)
    with tempfile.TemporaryDirectory(prefix="ch11-kernel-") as kernels:
        write_kernel_spec(os.path.join(kernels, "ch11-recipes"),
                          overrides={"display_name": "ch11-recipes (this Python)"})
        km = KernelManager(kernel_name="ch11-recipes",
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]),
                           **({"transport": "ipc", "ip": os.path.join(kernels, "ipc")}
                              if os.name == "posix" else {}))  # local sockets, not TCP
        client = NotebookClient(nb, km=km, timeout=timeout,
                                resources={"metadata": {"path": str(path.parent)}})
        started = time.perf_counter()
        try:
            client.execute(env=env)
        finally:  # a failed run is saved too: its last output is the error
            seconds = time.perf_counter() - started
            nb.metadata["ch11"] = {"quick": quick, "seconds": round(seconds, 1),
                                   "kernel_cpu_seconds": _cpu_seconds(km)}
            if km.has_kernel:  # nbclient leaves a kernel it did not start running
                km.shutdown_kernel(now=True)
            if output is not None:
                nbformat.write(nb, str(output))
    return nb, seconds


def _cpu_seconds(km) -> float | None:
    """CPU seconds (user + system) the kernel process has used so far."""
    try:
        import psutil

        times = psutil.Process(km.provisioner.process.pid).cpu_times()
        return round(times.user + times.system, 1)
    except Exception:  # noqa: BLE001  (only a measurement: never fail the run for it)
        return None


def cell_seconds(nb) -> list[tuple[int, float, str]]:
    """Each executed code cell's wall time, from the timing nbclient records.

    Returns:
        ``(cell index, seconds, first line)`` per code cell that ran.
    """
    from datetime import datetime

    out = []
    for i, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type == "code" and "shell.execute_reply" in timing:
            start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            out.append((i, (end - start).total_seconds(), cell.source.split("\n")[0]))
    return out


def main(argv=None) -> int:
    """Command line: write (default), check or run the notebook."""
    parser = argparse.ArgumentParser(prog="python notebooks/build.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if chapter11.ipynb is not the cells of this file")
    parser.add_argument("--run", action="store_true", help="execute the notebook")
    parser.add_argument("--quick", action="store_true", help="with --run: CH11_QUICK=1")
    parser.add_argument("--output", type=Path, default=EXECUTED,
                        help="with --run: the executed copy (default: %(default)s)")
    parser.add_argument("--runs", type=Path, default=None,
                        help="with --run: where the notebook's logs go (CH11_RUNS)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.check:
        if is_current():
            return 0
        print(f"{NOTEBOOK} is not the cells of {__file__}: run python notebooks/build.py",
              file=sys.stderr)
        return 1
    if args.run:
        from nbclient.exceptions import CellExecutionError

        try:
            nb, seconds = execute(quick=args.quick, output=args.output, runs=args.runs,
                                  timeout=args.timeout)
        except CellExecutionError as e:
            print(e, file=sys.stderr)
            print(f"failed; the executed part is in {args.output}", file=sys.stderr)
            return 1
        for i, cell_s, first in cell_seconds(nb):
            print(f"{cell_s:7.1f} s  cell {i:2d}  {first[:70]}")
        print(f"executed in {seconds:.0f} s (kernel CPU {nb.metadata['ch11']['kernel_cpu_seconds']}"
              f" s): {args.output}")
        return 0
    print(f"wrote {write()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
