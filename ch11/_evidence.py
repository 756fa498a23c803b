"""The evidence behind a headline: its spread over seeds, and the book's figure beside it.

- `seed_summary(table, by, columns)`: per variant, the mean, std, min and max over seeds.
- `is_effect` / `effect`: a difference of means is "an effect" only when it exceeds the
  spread (max - min over seeds) of both variants, "within noise" otherwise.
- `spread`, `compare`, `summary_markdown`: the same numbers as text.
- `BookFigure`: the book's own figure for the same claim (Géron's chapter 11 notebook,
  Fashion-MNIST), or the statement that the book gives none.
- `Evidence`: the headline, its seeds, summary and book figure, as ``results.json``'s
  ``evidence`` entry (which ``python -m ch11.run_all --readme`` reads) and as the
  report's sections.

No TensorFlow here: the reports and their unit tests import it on plain tables.

Reference: Géron, Hands-On ML (3rd ed.), ch. 2 (a measurement's mean and spread over
cross-validation folds) and ch. 11.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BOOK_NOTEBOOK", "EFFECT_RULE", "BookFigure", "Evidence", "compare", "effect",
           "is_effect", "seed_summary", "seeds_note", "spread", "spread_figure",
           "summary_markdown"]

BOOK_NOTEBOOK = ("the book's chapter 11 notebook (ageron/handson-ml3, "
                 "11_training_deep_neural_networks.ipynb, its printed outputs)")
EFFECT_RULE = ("A difference is called an effect only when it exceeds the spread (max - min "
               "over seeds) of both variants; otherwise it is within noise.")


def seed_summary(table: pd.DataFrame, by: str, columns: Sequence[str]) -> pd.DataFrame:
    """Per variant: the number of seeds and each column's mean, std, min and max.

    Example:
        ```python
        seed_summary(pd.DataFrame({"v": ["a", "a", "b"], "acc": [0.9, 0.8, 0.5]}), "v", ["acc"])
        # v  seeds  acc_mean  acc_std  acc_min  acc_max
        # a      2      0.85   0.0707     0.80     0.90
        # b      1      0.50      NaN     0.50     0.50
        ```

    Args:
        table: one row per variant and seed.
        by: the column naming the variant (first in the result, in order of appearance).
        columns: the numeric columns to summarize.

    Returns:
        One row per variant: ``by``, ``seeds``, and ``<column>_mean``, ``_std`` (sample
        std; NaN with fewer than 2 finite values), ``_min``, ``_max`` over the column's
        finite values (all NaN when none is finite, e.g. every seed diverged).
    """
    rows = []
    for variant, group in table.groupby(by, sort=False):
        row: dict[str, Any] = {by: variant, "seeds": len(group)}
        for column in columns:
            values = group[column].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            row[f"{column}_mean"] = float(finite.mean()) if len(finite) else math.nan
            row[f"{column}_std"] = float(finite.std(ddof=1)) if len(finite) > 1 else math.nan
            row[f"{column}_min"] = float(finite.min()) if len(finite) else math.nan
            row[f"{column}_max"] = float(finite.max()) if len(finite) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _row(summary: pd.DataFrame, variant: Any, by: str | None) -> pd.Series:
    by = by or summary.columns[0]
    match = summary[summary[by] == variant]
    if match.empty:
        raise KeyError(f"No variant {variant!r} in the summary's {by!r} column "
                       f"({', '.join(map(str, summary[by]))}).")
    return match.iloc[0]


def is_effect(summary: pd.DataFrame, variant: Any, column: str, base: Any, *,
              by: str | None = None) -> bool | None:
    """Whether `variant`'s mean of `column` differs from `base`'s by more than the spread.

    Args:
        summary: `seed_summary` output (or any table with ``seeds`` and the
            ``<column>_mean/_min/_max`` columns, the variant's name first).
        variant: the variant compared.
        column: the summarized column.
        base: the variant compared with.
        by: the column naming the variants. Defaults to the summary's first column.

    Returns:
        `True` (an effect), `False` (within noise), or `None` when there is no spread to
        compare with (a variant with one seed) or a mean is not finite.
    """
    a, b = _row(summary, variant, by), _row(summary, base, by)
    delta = a[f"{column}_mean"] - b[f"{column}_mean"]
    if not np.isfinite(delta) or min(a["seeds"], b["seeds"]) < 2:
        return None
    ranges = [r[f"{column}_max"] - r[f"{column}_min"] for r in (a, b)]
    return bool(abs(delta) > max([x for x in ranges if np.isfinite(x)], default=0.0))


def effect(summary: pd.DataFrame, variant: Any, column: str, base: Any = "none", *,
           by: str | None = None, digits: int = 3) -> str:
    """``"+0.120 (an effect)"`` or ``"+0.010 (within noise)"``: a variant's change of a mean.

    A change is an effect only when it exceeds the spread (max - min over seeds) of both
    the variant and the base; with one seed there is no spread, and it says so.

    Args:
        summary: `seed_summary` output (the variant's name in its first column, or `by`).
        variant: the variant compared.
        column: the summarized column.
        base: the variant compared with. Defaults to `"none"`.
        by: the column naming the variants. Defaults to the summary's first column.
        digits: decimals of the difference. Defaults to `3`.

    Returns:
        The signed difference of the means and its verdict.
    """
    a, b = _row(summary, variant, by), _row(summary, base, by)
    delta = a[f"{column}_mean"] - b[f"{column}_mean"]
    if not np.isfinite(delta):
        return "undefined (a mean is NaN, e.g. the precision of a class never predicted)"
    verdict = is_effect(summary, variant, column, base, by=by)
    if round(delta, digits) == 0:
        delta = 0.0  # "+0.000", not "-0.000"
    if verdict is None:
        return f"{delta:+.{digits}f} (one seed: no spread to compare with)"
    return f"{delta:+.{digits}f} ({'an effect' if verdict else 'within noise'})"


def spread(summary: pd.DataFrame, variant: Any, column: str, *, by: str | None = None,
           digits: int = 3) -> str:
    """``"0.943 ± 0.012"`` (mean ± std over seeds), or ``"0.943 (one seed)"``.

    Args:
        summary: `seed_summary` output.
        variant: the variant.
        column: the summarized column.
        by: the column naming the variants. Defaults to the summary's first column.
        digits: decimals. Defaults to `3`.

    Returns:
        The text; ``"nan"`` when no seed gave a finite value.
    """
    r = _row(summary, variant, by)
    mean, std = r[f"{column}_mean"], r[f"{column}_std"]
    if not np.isfinite(mean):
        return "nan"
    if r["seeds"] < 2 or not np.isfinite(std):
        return f"{mean:.{digits}f} (one seed)"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def compare(summary: pd.DataFrame, variant: Any, column: str, base: Any, *,
            names: tuple[str, str] | None = None, by: str | None = None,
            digits: int = 3) -> str:
    """``"<variant> 0.94 ± 0.01 vs <base> 0.91 ± 0.02: +0.030 (an effect)"``.

    Args:
        summary: `seed_summary` output.
        variant: the variant compared.
        column: the summarized column.
        base: the variant compared with.
        names: how the two are named in the text. Defaults to the variants' own names.
        by: the column naming the variants. Defaults to the summary's first column.
        digits: decimals. Defaults to `3`.

    Returns:
        Both means with their spread, the difference and its verdict.
    """
    name_a, name_b = names or (str(variant), str(base))
    return (f"{name_a} {spread(summary, variant, column, by=by, digits=digits)} vs {name_b} "
            f"{spread(summary, base, column, by=by, digits=digits)}: "
            f"{effect(summary, variant, column, base, by=by, digits=digits)}")


def summary_markdown(summary: pd.DataFrame, columns: Sequence[str], *,
                     by: str | None = None, digits: int = 4) -> str:
    """The summary as Markdown: per variant and column, ``mean ± std [min, max]``.

    Args:
        summary: `seed_summary` output.
        columns: the summarized columns to show.
        by: the column naming the variants. Defaults to the summary's first column.
        digits: significant digits. Defaults to `4`.

    Returns:
        A Markdown table.
    """
    by = by or summary.columns[0]

    def cell(r: pd.Series, c: str) -> str:
        mean, std, lo, hi = (r[f"{c}_{k}"] for k in ("mean", "std", "min", "max"))
        if not np.isfinite(mean):
            return "nan"
        if r["seeds"] < 2 or not np.isfinite(std):
            return f"{mean:.{digits}g}"
        return f"{mean:.{digits}g} ± {std:.2g} [{lo:.{digits}g}, {hi:.{digits}g}]"

    lines = ["| " + " | ".join([by, "seeds", *columns]) + " |",
             "|" + "---|" * (len(columns) + 2)]
    for _, r in summary.iterrows():
        cells = [str(r[by]).replace("|", "\\|"), str(int(r["seeds"]))]
        lines.append("| " + " | ".join(cells + [cell(r, c) for c in columns]) + " |")
    return "\n".join(lines)


def seeds_note(seeds: Sequence[int], why: str = "") -> str:
    """``"3 seeds (42, 43, 44)"``, or ``"one seed (42; fewer because <why>)"``.

    Args:
        seeds: the headline's seeds.
        why: why fewer than 3 (the run's time). Defaults to `""`.

    Returns:
        The words, for the headline and the README table.
    """
    listed = ", ".join(map(str, seeds))
    if why and len(seeds) < 3:
        listed += f"; fewer because {why}"
    return f"one seed ({listed})" if len(seeds) == 1 else f"{len(seeds)} seeds ({listed})"


@dataclass(frozen=True)
class BookFigure:
    """The book's own figure for the claim a headline tests.

    Args:
        claim: the claim, e.g. ``"a 100-layer SELU net trains where ReLU struggles"``.
        figure: the book's numbers as printed in its notebook, or `None` when the book
            gives no figure for this claim.
        setting: the book's conditions (model, optimizer, epochs), where it differs.
        dataset: the book's data. Defaults to `"Fashion-MNIST"`.
        source: where the figure is printed. Defaults to `BOOK_NOTEBOOK`.
    """

    claim: str
    figure: str | None
    setting: str = ""
    dataset: str = "Fashion-MNIST"
    source: str = BOOK_NOTEBOOK

    @property
    def text(self) -> str:
        """The figure, or ``"the book gives no figure"``."""
        return self.figure if self.figure else "the book gives no figure"

    def to_json(self) -> dict[str, str]:
        """The figure as ``results.json`` stores it."""
        return {"claim": self.claim, "figure": self.text, "setting": self.setting,
                "dataset": self.dataset, "source": self.source}


@dataclass
class Evidence:
    """A headline with its spread over seeds and the book's figure beside it.

    Args:
        headline: the headline sentence (the report's first note), with mean ± std.
        seeds: the seeds the headline's variants were trained with.
        summary: `seed_summary` of the headline's variants.
        columns: the summarized columns.
        book: the book's figure for the same claim.
        agrees: one line: whether our result agrees with the book's.
        why: why fewer than 3 seeds. Defaults to `""`.
        seed_table: the per-seed values (one row per variant and seed). Defaults to an
            empty table.
        data: the data the run used, beside the book's. Defaults to MNIST.
    """

    headline: str
    seeds: tuple[int, ...]
    summary: pd.DataFrame
    columns: tuple[str, ...]
    book: BookFigure
    agrees: str
    why: str = ""
    seed_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    data: str = "MNIST (handwritten digits)"

    @property
    def seeds_text(self) -> str:
        """`seeds_note` of the seeds."""
        return seeds_note(self.seeds, self.why)

    def to_json(self) -> dict[str, Any]:
        """The ``evidence`` entry of ``results.json`` (read by ``run_all --readme``)."""
        return {"headline": self.headline, "seeds": list(self.seeds),
                "seeds_note": self.seeds_text, "columns": list(self.columns),
                "summary": self.summary, "per_seed": self.seed_table,
                "book": self.book.to_json(), "agrees": self.agrees}

    def sections(self) -> list[tuple[str, str]]:
        """The report's sections: the spread over seeds, and the book beside us."""
        per_seed = ""
        if not self.seed_table.empty:
            from recipes.runs import markdown_table

            per_seed = "\n\nPer seed:\n\n" + markdown_table(self.seed_table)
        spread_text = (f"{self.headline}\n\nSeeds: {self.seeds_text}. Mean ± sample std "
                       f"[min, max] over seeds. {EFFECT_RULE}\n\n"
                       + summary_markdown(self.summary, self.columns) + per_seed)
        book = self.book
        book_text = (f"- Claim: {book.claim}.\n- The book's figure ({book.dataset}): "
                     f"{book.text}" + (f" ({book.setting})" if book.setting else "") + ".\n"
                     f"- Source: {book.source}.\n- Data here: {self.data}"
                     + (" too" if self.data == book.dataset else f", not {book.dataset}")
                     + f".\n- Ours vs the book: {self.agrees}")
        return [("Spread over seeds", spread_text), ("The book beside us", book_text)]


def spread_figure(run_dir: str | Path, table: pd.DataFrame, by: str, columns: Sequence[str],
                  title: str, name: str = "seeds_spread.png") -> tuple[str, str]:
    """Draw the headline's values per seed (`recipes.plots.spread_bars`) into the run folder.

    Args:
        run_dir: the run folder.
        table: one row per variant and seed.
        by: the column naming the variant.
        columns: the columns drawn.
        title: the figure's title.
        name: the PNG's name. Defaults to `"seeds_spread.png"`.

    Returns:
        The report's ``(caption, file name)``.
    """
    from recipes.plots import spread_bars
    from recipes.runs import save_figure

    save_figure(spread_bars(table, by, list(columns), title=title), Path(run_dir) / name)
    return ("The headline per seed: mean (bar), min-max (error bar) and every seed (dots)",
            name)
