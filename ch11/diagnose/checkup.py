"""The training doctor's check-up: load the model and the data, examine, write the report."""

from __future__ import annotations

import pandas as pd

from ch11._experiment import Results, finish, start
from ch11.diagnose import report
from ch11.diagnose.config import NAME, Config
from ch11.diagnose.inputs import load_data, load_history, load_keras_model
from recipes.diagnosis.doctor import examine
from recipes.hardware import model_policy
from recipes.runs import write_json

__all__ = ["load_data", "load_history", "load_keras_model", "run"]


def run(config: Config) -> Results:
    """Load the model and the data, examine, print the findings and write the report.

    Args:
        config: what to diagnose, on which data.

    Returns:
        The `Results` (``metrics["findings"]`` counts them, ``metrics["kinds"]`` lists them).

    Raises:
        ValueError: not a Keras model, data that do not fit it, or a history file that is
            not a history CSV (no run folder is written then).

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11.
    """
    history = load_history(config.history) if config.history else None
    model = load_keras_model(config.model)
    data = load_data(config, model)
    run_dir, started = start(NAME, config)
    probe = min(config.probe_steps, 5) if config.quick else config.probe_steps
    exam = examine(model, data["x"], data["y"], data["x_val"], data["y_val"], history, probe,
                   class_names=data["class_names"], class_counts=data["class_counts"])
    for finding in exam.findings:
        print(f"\n{finding}")
    if not exam.findings:
        print("\nNo findings: gradients, activations, weights, classes and the "
              "train-validation gap look healthy.")
    figures = report.figures(run_dir, model, data, exam)
    for name, frame in (("gradients", exam.gradients), ("activations", exam.activations),
                        ("weights", exam.weights), ("classes", exam.classes),
                        ("probe", exam.probe)):
        if frame is not None:
            frame.to_csv(run_dir / f"{name}.csv", index=False)
    write_json(run_dir / "findings.json", exam.findings)
    table = (exam.classes.drop(columns="index").round(4) if exam.classes is not None
             else pd.DataFrame())
    return finish(NAME, config, run_dir, started, table, title=f"Diagnosis of {config.model}",
                  precision={"the model examined": (model_policy(model),
                                                    "as saved in its .keras file")},
                  intro=report.intro(config, model, data, exam), figures=figures,
                  notes=report.notes(exam), sections=report.sections(exam),
                  metrics={"findings": len(exam.findings),
                           "kinds": [f.kind for f in exam.findings], **exam.scores})
