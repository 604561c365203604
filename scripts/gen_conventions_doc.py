"""Print the README section "Why does my loss differ from Keras/PyTorch/MXNet?".

Every rule and number below is produced by running streammetric itself (the conventions'
data and the functional core), so the text cannot drift from the code. Deterministic: same
code, same output. Usage: ``python scripts/gen_conventions_doc.py > section.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streammetric.conventions import CONVENTIONS, Convention
from streammetric.explain import explain, rules_phrase
from streammetric.functional.losses import binary_cross_entropy, cross_entropy

#: (title, call shown, y_true, y_pred, dtype, keyword arguments of explain)
EXAMPLES: tuple[tuple[str, str, Any, Any, Any, dict[str, Any]], ...] = (
    (
        "A confident miss (p = 0 for the true class)",
        "cross_entropy([1, 0], [[0, 1], [0, 1]])",
        [1, 0],
        [[0, 1], [0, 1]],
        np.float64,
        {},
    ),
    (
        "The Keras documentation example, float32",
        "cross_entropy(onehot, probs) with float32 arrays",
        [[0, 1, 0], [0, 0, 1]],
        [[0.05, 0.95, 0], [0.1, 0.8, 0.1]],
        np.float32,
        {},
    ),
    (
        "Scores that are not probabilities, one-hot targets",
        "cross_entropy([[0, 1]], [[5.0, 7.0]])",
        [[0, 1]],
        [[5.0, 7.0]],
        np.float32,
        {},
    ),
    (
        "The same scores with a class index (Keras renormalises after clipping)",
        "cross_entropy([1], [[5.0, 7.0]])",
        [1],
        [[5.0, 7.0]],
        np.float32,
        {},
    ),
    (
        "The same scores as logits",
        "cross_entropy([[0, 1]], [[5.0, 7.0]], from_logits=True)",
        [[0, 1]],
        [[5.0, 7.0]],
        np.float32,
        {"from_logits": True},
    ),
    (
        "Binary, a confident miss among hits",
        "binary_cross_entropy([[1, 1, 1]], [[1.0, 1.0, 0.0]])",
        [[1, 1, 1]],
        [[1.0, 1.0, 0.0]],
        np.float64,
        {"binary": True},
    ),
    (
        "Binary, the Keras documentation example, float32",
        "binary_cross_entropy([[0, 1], [0, 1]], [[0.05, 0.95], [0.8, 0.2]])",
        [[0, 1], [0, 1]],
        [[0.05, 0.95], [0.8, 0.2]],
        np.float32,
        {"binary": True},
    ),
    (
        "The MXNet documentation example, float32",
        "cross_entropy([0, 1, 1], [[0.3, 0.7], [0, 1.0], [0.4, 0.6]])",
        [0, 1, 1],
        [[0.3, 0.7], [0, 1.0], [0.4, 0.6]],
        np.float32,
        {},
    ),
)


def _number(value: float | None, dtype: str) -> str:
    if value is None:
        return "rejected"
    return f"{value:.8g}" if dtype == "float32" else repr(value)


def _rules_table(conventions: list[Convention]) -> list[str]:
    lines = [
        "| convention | reproduces | class index / one-hot | binary | dtype | p outside [0, 1] "
        "| logits | loss default reduction |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for conv in conventions:
        sparse = rules_phrase(conv, kind="categorical", sparse=True, from_logits=False)
        dense = rules_phrase(conv, kind="categorical", sparse=False, from_logits=False)
        categorical = sparse if sparse == dense else f"class index: {sparse}; one-hot: {dense}"
        binary = rules_phrase(conv, kind="binary", sparse=False, from_logits=False)
        dtype = {"input": "input dtype", "float64": "float64", "float32": "float32"}[conv.dtype]
        if conv.dtype == "input" and conv.half_softmax == "float32":
            dtype += " (a float16 log-softmax in float32)"
        out_of_range = "invalid input" if conv.out_of_range == "invalid" else "computed as is"
        if conv.binary_out_of_range != conv.out_of_range:
            out_of_range += f" (binary: {'invalid input' if conv.binary_out_of_range == 'invalid' else 'computed'})"
        logits = (
            "log-softmax / log-sigmoid" if conv.logits == "native" else "softmax / sigmoid first"
        )
        if conv.logits == "native" and conv.binary_logits == "log_sigmoid":
            logits += " (binary: `(1 - y) x - log_sigmoid(x)`, 0 where it rounds to 0)"
        lines.append(
            f"| `{conv.name}` | {conv.description} | {categorical} | {binary} | {dtype} | "
            f"{out_of_range} | {logits} | `{conv.default_reduction}` |"
        )
    return lines


def _perplexity_notes(conventions: list[Convention]) -> list[str]:
    notes = []
    for conv in conventions:
        if conv.perplexity_guard is not None:
            guarded = conv.replace(guard=conv.perplexity_guard, eps=conv.perplexity_eps)
            rule = rules_phrase(guarded, kind="categorical", sparse=True, from_logits=False)
            notes.append(f"- `{conv.name}` perplexity {rule} instead.")
    return [*notes, ""] if notes else []


def _hard_miss_table(conventions: list[Convention]) -> list[str]:
    lines = [
        "| convention | categorical float32 | categorical float64 | binary float32 | binary float64 |",
        "|---|---|---|---|---|",
    ]
    for conv in conventions:
        cells = []
        for binary in (False, True):
            for dtype in (np.float32, np.float64):
                if binary:
                    value = binary_cross_entropy([1.0], np.array([0.0], dtype), convention=conv)
                else:
                    value = cross_entropy([0], np.array([[0.0, 1.0]], dtype), convention=conv)
                cells.append(f"{value:.8g}" if np.isfinite(value) else str(value))
        lines.append(f"| `{conv.name}` | " + " | ".join(cells) + " |")
    return lines


def _example(
    title: str, call: str, y_true: Any, y_pred: Any, dtype: Any, kwargs: dict[str, Any]
) -> list[str]:
    report = explain(y_true, np.asarray(y_pred, dtype=dtype), **kwargs)
    lines = [f"#### {title}", "", f"`{call}`, `y_pred` as {np.dtype(dtype).name}:", ""]
    lines += ["| convention | mean | why |", "|---|---|---|"]
    for result in report.results:
        why = result.sentence.replace("|", "\\|")
        lines.append(f"| `{result.name}` | {_number(result.value, result.dtype)} | {why} |")
    return [*lines, ""]


def render() -> str:
    """The whole Markdown section."""
    conventions = list(CONVENTIONS.values())
    lines = [
        "## Why does my loss differ from Keras/PyTorch/MXNet?",
        "",
        "Frameworks agree on the formula and disagree on the arithmetic: which epsilon guards",
        "`log(0)`, whether rows are renormalised, whether logits go through a stable log-softmax,",
        "and in which dtype everything runs. streammetric computes the exact value by default",
        '(`convention="exact"`) and any framework\'s value with `convention=NAME`;',
        "`streammetric explain` puts them side by side. Everything below is generated by",
        "`scripts/gen_conventions_doc.py` from the code itself.",
        "",
        "### What each convention does",
        "",
        *_rules_table(conventions),
        "",
        *_perplexity_notes(conventions),
        "### The same wrong prediction (p = 0 for the true class)",
        "",
        *_hard_miss_table(conventions),
        "",
        "### Worked examples",
        "",
    ]
    for example in EXAMPLES:
        lines += _example(*example)
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    print(render(), end="")


if __name__ == "__main__":
    main()
