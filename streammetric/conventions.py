"""Framework cross-entropy conventions, as data.

A :class:`Convention` says how a framework turns probabilities (or logits) into a loss: which
epsilon it uses, how it guards ``log(0)``, whether it renormalises rows, in which dtype it
computes, and what it does with values outside [0, 1]. The functional core
(:mod:`streammetric.functional.losses`) reads these fields; there is no per-framework branch in
the math. Facts and sources: ``CONVENTIONS.md``.

Guards (``guard`` for categorical / class-index targets, ``binary_guard`` for binary), with
``e`` the convention's epsilon and ``L`` its ``log_floor``:

==============  ===============================  =====================================
guard           log of the probability           log of the complement (binary only)
==============  ===============================  =====================================
``none``        ``log(p)``                       ``log1p(-p)``
``clip``        ``log(clip(p, e, 1-e))``         ``log(1 - clip(p, e, 1-e))``
``add``         ``log(p + e)``                   ``log((1 - p) + e)``
``clip_add``    ``log(clip(p, e, 1-e) + e)``     ``log((1 - clip(p, e, 1-e)) + e)``
``floor``       ``log(max(p, e))``               ``log(max(1 - p, e))``
``log_clamp``   ``max(log(p), L)``               ``max(log1p(-p), L)``
==============  ===============================  =====================================

Renormalisation (``renormalize_dense`` for one-hot/soft targets, ``renormalize_sparse`` for class
indices): ``before`` divides each row by its sum and then guards; ``after`` guards, takes the
log, then applies log-softmax (Keras' TensorFlow backend for class indices); ``never``.

Example:

>>> from streammetric.conventions import get_convention
>>> keras = get_convention("keras")
>>> keras.guard, keras.eps, keras.renormalize_dense, keras.renormalize_sparse
('clip', 1e-07, 'before', 'after')
>>> get_convention("pytorch").name
'torch'
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from streammetric._exceptions import ConfigError

__all__ = [
    "CONVENTIONS",
    "Convention",
    "get_convention",
    "list_conventions",
    "register_convention",
    "rules_phrase",
    "unregister_convention",
]

Guard = Literal["none", "clip", "add", "clip_add", "floor", "log_clamp"]
Renormalize = Literal["before", "after", "never"]
DtypePolicy = Literal["float64", "input", "float32"]
OutOfRange = Literal["invalid", "compute"]
LogitsHandling = Literal["native", "softmax_first"]
BinaryLogits = Literal["softplus", "log_sigmoid"]
HalfSoftmax = Literal["input", "float32"]
Reduction = Literal["none", "sum", "mean", "sum_over_batch_size"]

GUARDS: tuple[str, ...] = get_args(Guard)
RENORMALIZATIONS: tuple[str, ...] = get_args(Renormalize)
DTYPE_POLICIES: tuple[str, ...] = get_args(DtypePolicy)


@dataclass(frozen=True)
class Convention:
    """How one framework computes cross-entropy, as plain data.

    Fields:
        name: registry key (``"keras"``).
        description: one line naming the framework and version it reproduces.
        display_name: how sentences name it (``"Keras"``); defaults to ``name``.
        eps: epsilon of the guard, a float or ``"machine"`` for ``finfo(dtype).eps``
            (scikit-learn). Cast to the computation dtype before use.
        guard: categorical / class-index guard, one of :data:`GUARDS`.
        renormalize_dense: ``before``/``after``/``never`` for one-hot or soft targets.
        renormalize_sparse: the same for class-index targets.
        binary_guard: guard of binary cross-entropy from probabilities.
        binary_eps: epsilon of the binary guard; ``None`` means ``eps``.
        log_floor: lower bound of each log for the ``log_clamp`` guard (PyTorch: -100).
        dtype: ``float64`` always, ``float32`` always, or ``input`` (float16/32/64 input keeps its
            dtype, anything else is computed in float64).
        out_of_range: ``invalid`` marks rows with probabilities outside [0, 1] or NaN (and
            non-finite logits) invalid; ``compute`` reproduces whatever the arithmetic gives.
        binary_out_of_range: the same for binary cross-entropy.
        logits: ``native`` uses log-softmax / log-sigmoid; ``softmax_first`` turns logits into
            probabilities first (frameworks without a logits path) and then applies the guard.
        binary_logits: the formula of binary cross-entropy from logits x (``native``):
            ``softplus`` is TensorFlow's ``max(x, 0) - x y + log1p(exp(-|x|))`` (accurate:
            ``x = -30, y = 0`` gives 9.4e-14); ``log_sigmoid`` is PyTorch's
            ``(1 - y) x - log_sigmoid(x)`` (there 0). With ``pos_weight`` both are
            ``(1 - y) x + (1 + (pw - 1) y) (log1p(exp(-|x|)) + max(-x, 0))``.
        half_softmax: how a float16 input's log-softmax is computed (logits, and the
            renormalisation ``after`` the guard): ``input``, in float16; ``float32``, in float32
            with each row's loss rounded to float16 (TensorFlow's and PyTorch's CPU kernels
            widen half precision, so Keras and PyTorch do).
        perplexity_guard, perplexity_eps: guard of the perplexity metric when it differs
            (MXNet: ``floor`` at 1e-10); ``None`` means the categorical guard and ``eps``.
        default_reduction: the framework loss' own default reduction (documentation: the
            functional API always uses the ``reduction`` it is given).
    """

    name: str
    description: str
    display_name: str = ""
    eps: float | Literal["machine"] = 0.0
    guard: Guard = "none"
    renormalize_dense: Renormalize = "never"
    renormalize_sparse: Renormalize = "never"
    binary_guard: Guard = "none"
    binary_eps: float | Literal["machine"] | None = None
    log_floor: float = -100.0
    dtype: DtypePolicy = "float64"
    out_of_range: OutOfRange = "compute"
    binary_out_of_range: OutOfRange = "compute"
    logits: LogitsHandling = "native"
    binary_logits: BinaryLogits = "softplus"
    half_softmax: HalfSoftmax = "input"
    perplexity_guard: Guard | None = None
    perplexity_eps: float | None = None
    default_reduction: Reduction = "mean"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"`name` must be a non-empty string, got {self.name!r}")
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)
        choices: dict[str, tuple[str, ...]] = {
            "guard": GUARDS,
            "binary_guard": GUARDS,
            "renormalize_dense": RENORMALIZATIONS,
            "renormalize_sparse": RENORMALIZATIONS,
            "dtype": DTYPE_POLICIES,
            "out_of_range": get_args(OutOfRange),
            "binary_out_of_range": get_args(OutOfRange),
            "logits": get_args(LogitsHandling),
            "binary_logits": get_args(BinaryLogits),
            "half_softmax": get_args(HalfSoftmax),
            "default_reduction": get_args(Reduction),
        }
        if self.perplexity_guard is not None:
            choices["perplexity_guard"] = GUARDS
        for field, allowed in choices.items():
            value = getattr(self, field)
            if value not in allowed:
                raise ConfigError(
                    f"`{field}` of convention {self.name!r} must be one of "
                    f"{', '.join(allowed)}, got {value!r}"
                )
        for field in ("eps", "binary_eps", "perplexity_eps"):
            value = getattr(self, field)
            if value is None or value == "machine":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(
                    f"`{field}` of convention {self.name!r} must be a float or 'machine', "
                    f"got {value!r}"
                )
            if not 0.0 <= float(value) < 0.5:
                raise ConfigError(
                    f"`{field}` of convention {self.name!r} must be in [0, 0.5), got {value!r}"
                )
        if not np.isfinite(self.log_floor) or self.log_floor > 0:
            raise ConfigError(
                f"`log_floor` of convention {self.name!r} must be finite and <= 0, "
                f"got {self.log_floor!r}"
            )

    def compute_dtype(self, input_dtype: np.dtype | type) -> np.dtype:
        """The dtype the arithmetic runs in for input of ``input_dtype``.

        >>> import numpy as np
        >>> get_convention("keras").compute_dtype(np.float32)
        dtype('float32')
        >>> get_convention("exact").compute_dtype(np.float32)
        dtype('float64')
        """
        dtype = np.dtype(input_dtype)
        if self.dtype == "float32":
            return np.dtype(np.float32)
        if self.dtype == "input" and dtype in (np.float16, np.float32, np.float64):
            return dtype
        return np.dtype(np.float64)

    def eps_for(self, dtype: np.dtype | type, *, kind: str = "categorical") -> np.floating:
        """The guard's epsilon for ``kind`` (categorical/binary/perplexity), as ``dtype``.

        >>> import numpy as np
        >>> float(get_convention("keras").eps_for(np.float32))
        1.0000000116860974e-07
        >>> float(get_convention("sklearn").eps_for(np.float64))
        2.220446049250313e-16
        """
        eps: float | str | None = self.eps
        if kind == "binary" and self.binary_eps is not None:
            eps = self.binary_eps
        elif kind == "perplexity" and self.perplexity_eps is not None:
            eps = self.perplexity_eps
        dtype = np.dtype(dtype)
        if eps == "machine":
            return np.finfo(dtype).eps
        return dtype.type(eps)

    def guard_for(self, kind: str = "categorical") -> str:
        """The guard used for ``kind`` (categorical/binary/perplexity)."""
        if kind == "binary":
            return self.binary_guard
        if kind == "perplexity" and self.perplexity_guard is not None:
            return self.perplexity_guard
        return self.guard

    def replace(self, **changes: object) -> Convention:
        """A copy with some fields changed (validated like a new convention)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_BUILTINS = (
    Convention(
        name="exact",
        display_name="exact",
        description="The mathematical definition in float64: stable log-softmax, no epsilon.",
        out_of_range="invalid",
        binary_out_of_range="invalid",
    ),
    Convention(
        name="keras",
        display_name="Keras",
        description="Keras 3 on the TensorFlow backend (keras.losses / keras.ops).",
        eps=1e-7,
        guard="clip",
        renormalize_dense="before",
        renormalize_sparse="after",
        binary_guard="clip",
        dtype="input",
        half_softmax="float32",
        default_reduction="sum_over_batch_size",
    ),
    Convention(
        name="tf_keras",
        display_name="tf_keras (Keras 2)",
        description="Legacy Keras 2 (tf.keras before Keras 3, the tf_keras package).",
        eps=1e-7,
        guard="clip",
        renormalize_dense="before",
        renormalize_sparse="after",
        binary_guard="clip_add",
        dtype="input",
        half_softmax="float32",
        default_reduction="sum_over_batch_size",
    ),
    Convention(
        name="torch",
        display_name="PyTorch",
        description="PyTorch: F.cross_entropy on logits, nll_loss(log p), F.binary_cross_entropy.",
        guard="none",
        binary_guard="log_clamp",
        log_floor=-100.0,
        dtype="input",
        half_softmax="float32",
        binary_out_of_range="invalid",
        binary_logits="log_sigmoid",
    ),
    Convention(
        name="mxnet",
        display_name="MXNet",
        description="MXNet 1.x mx.metric CrossEntropy / NegativeLogLikelihood / Perplexity.",
        eps=1e-12,
        guard="add",
        binary_guard="add",
        dtype="input",
        logits="softmax_first",
        perplexity_guard="floor",
        perplexity_eps=1e-10,
    ),
    Convention(
        name="sklearn",
        display_name="scikit-learn",
        description="scikit-learn >= 1.5 sklearn.metrics.log_loss.",
        eps="machine",
        guard="clip",
        binary_guard="clip",
        dtype="input",
        out_of_range="invalid",
        binary_out_of_range="invalid",
        logits="softmax_first",
    ),
)

_REGISTRY: dict[str, Convention] = {conv.name: conv for conv in _BUILTINS}
_BUILTIN_NAMES = frozenset(_REGISTRY)

#: Read-only view of every registered convention, by name (built-ins first).
CONVENTIONS: Mapping[str, Convention] = types.MappingProxyType(_REGISTRY)

#: Other spellings accepted by :func:`get_convention`.
CONVENTION_ALIASES: Mapping[str, str] = types.MappingProxyType(
    {
        "pytorch": "torch",
        "scikit_learn": "sklearn",
        "keras3": "keras",
        "keras2": "tf_keras",
        "tf_keras": "tf_keras",
        "tensorflow": "tf_keras",
    }
)


def list_conventions() -> list[str]:
    """Names of the registered conventions, built-ins first.

    >>> list_conventions()[:6]
    ['exact', 'keras', 'tf_keras', 'torch', 'mxnet', 'sklearn']
    """
    return list(_REGISTRY)


def get_convention(convention: str | Convention) -> Convention:
    """Look up a convention by name (or alias), or return a :class:`Convention` unchanged.

    >>> get_convention("scikit-learn").eps
    'machine'
    """
    if isinstance(convention, Convention):
        return convention
    if not isinstance(convention, str):
        raise ConfigError(
            "`convention` must be a name or a Convention, got "
            f"{type(convention).__name__} {convention!r}"
        )
    if convention in _REGISTRY:
        return _REGISTRY[convention]
    key = convention.strip().lower().replace("-", "_").replace(".", "_")
    key = CONVENTION_ALIASES.get(key, key)
    if key in _REGISTRY:
        return _REGISTRY[key]
    raise ConfigError(
        f"unknown convention {convention!r}; known conventions: {', '.join(_REGISTRY)}"
    )


def register_convention(convention: Convention, *, replace: bool = False) -> Convention:
    """Register a user-defined convention under ``convention.name`` and return it.

    Built-in names cannot be replaced; another registered name needs ``replace=True``.

    >>> mine = Convention(name="clip_1e-6", description="clip at 1e-6", eps=1e-6, guard="clip")
    >>> register_convention(mine, replace=True).name
    'clip_1e-6'
    >>> get_convention("clip_1e-6").eps
    1e-06
    >>> unregister_convention("clip_1e-6")
    """
    if not isinstance(convention, Convention):
        raise ConfigError(f"`convention` must be a Convention, got {type(convention).__name__}")
    name = convention.name
    if name in _BUILTIN_NAMES:
        raise ConfigError(f"convention {name!r} is built in and cannot be replaced")
    if name in _REGISTRY and not replace:
        raise ConfigError(
            f"convention {name!r} is already registered; pass replace=True to replace it"
        )
    _REGISTRY[name] = convention
    return convention


def unregister_convention(name: str) -> None:
    """Remove a user-registered convention (built-ins cannot be removed)."""
    if name in _BUILTIN_NAMES:
        raise ConfigError(f"convention {name!r} is built in and cannot be removed")
    if name not in _REGISTRY:
        raise ConfigError(f"unknown convention {name!r}; known conventions: {', '.join(_REGISTRY)}")
    del _REGISTRY[name]


def _format_eps(eps: float) -> str:
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{eps:.3g}")


def rules_phrase(
    conv: Convention,
    *,
    kind: str,
    sparse: bool,
    from_logits: bool,
    dtype: Any = None,
    renormalization: bool = True,
) -> str:
    """What ``conv`` does to this kind of input, as a verb phrase ("clips probabilities ...").

    ``dtype=None`` describes the rule for any dtype (machine epsilons are not evaluated);
    ``renormalization=False`` leaves renormalisation out (for rows that already sum to 1).

    >>> rules_phrase(get_convention("tf_keras"), kind="binary", sparse=False, from_logits=False)
    'clips probabilities to [1e-7, 1-1e-7] and adds 1e-7 inside the log'
    """
    binary = kind == "binary"
    if from_logits and conv.logits == "native":
        what = "log-sigmoid" if binary else "log-softmax"
        where = f" in {np.dtype(dtype).name}" if dtype is not None else ""
        return f"computes a stable {what} of the logits{where}"
    parts = []
    if from_logits:
        parts.append(f"turns logits into probabilities with {'sigmoid' if binary else 'softmax'}")
    renorm = "never" if binary else (conv.renormalize_sparse if sparse else conv.renormalize_dense)
    renorm = renorm if renormalization else "never"
    if renorm == "before":
        parts.append("renormalises each row to sum to 1")
    guard = conv.guard_for(kind)
    raw_eps = {"binary": conv.binary_eps, "perplexity": conv.perplexity_eps}.get(kind)
    machine = (conv.eps if raw_eps is None else raw_eps) == "machine"
    eps = _format_eps(float(conv.eps_for(np.float64 if dtype is None else dtype, kind=kind)))
    bounds = "[eps, 1-eps]" if machine else f"[{eps}, 1-{eps}]"
    suffix = ""
    if machine:
        suffix = (
            " with eps the machine epsilon of the dtype (2.22e-16 float64, 1.19e-7 float32)"
            if dtype is None
            else f" with eps = {eps} ({np.dtype(dtype).name} machine epsilon)"
        )
    parts.append(
        {
            "none": "takes log(p) with no guard",
            "clip": f"clips probabilities to {bounds}{suffix}",
            "add": f"adds {eps} to each probability inside the log",
            "clip_add": f"clips probabilities to {bounds}{suffix} and adds {eps} inside the log",
            "floor": f"floors probabilities at {eps}",
            "log_clamp": f"clamps each log at {conv.log_floor:g}",
        }[guard]
    )
    if renorm == "after":
        parts.append("renormalises with a log-softmax after the guard")
    return ", then ".join(parts)
