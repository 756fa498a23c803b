"""The rare species: what each remedy against the class imbalance does to it, over seeds.

Hands-On ML, chapter 11 and the course's question: "class weights did not help one species
(AUC 0.55 while the others pass 0.85)". On the course's fish photos (the rare "animal fish
bass": 30 of 6,225 training photos) the same CNN from scratch (`ch11._fish.recipe_spec`) is
trained with the plain loss, with class weights, with focal loss, and with the rare class
oversampled (its repeats made different by the model's augmentation), once per seed; a
fifth remedy, threshold moving (dividing the plain model's probabilities by the training
class frequencies), needs no training. Per remedy: the rare class's ROC-AUC, recall,
precision and what it is mistaken for, with mean and spread over seeds; and the gradient
share of the rare class's photos with and without class weights, before and after
training, which says why weights alone do (or do not) help.

Run: ``python -m ch11.fish_imbalance`` (``make recipe-fish-imbalance``), ``--quick`` for a
smoke run.
"""

from ch11._config import experiment_package
from ch11.fish_imbalance.config import Config

main, __getattr__ = experiment_package(__name__, Config)

__all__ = ["Config", "main", "run"]
