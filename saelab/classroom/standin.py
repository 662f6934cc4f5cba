"""What runs in the student edition where the folded solution was: the student's function, or a stand-in.

The student edition replaces each solution cell with

    from saelab.classroom.standin import stand_in
    my_l0 = stand_in("my_l0", globals().get("my_l0"))

`stand_in` keeps the student's function when they wrote one (its code no longer raises NotImplementedError), and
otherwise returns the library's public function that does the same job, so every later cell runs, and says which in
one line. Where the library has no public function for it (`NO_REFERENCE`), it returns a `Missing` stand-in: the
cells below that call it print that they need the exercise, and get their first argument back unchanged (a hook
that changes nothing), so they run without raising.
"""
from __future__ import annotations

import importlib
import inspect
import types
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Reference:
    """A public library function that can stand in for a student's: where it lives, and how to call it the way the
    exercise's function is called (an adapter when the signatures differ)."""

    name: str                    # what the output names, e.g. "saelab.metrics.l0"
    make: Callable[[], Callable]  # imports lazily: building the student edition must not import torch models


def _public(path: str) -> Callable[[], Callable]:
    module, _, attr = path.rpartition(".")
    return lambda: getattr(importlib.import_module(module), attr)


def _topk() -> Callable:
    from saelab.architectures import topk_activation
    return lambda pre_acts, k: topk_activation(pre_acts, min(k, pre_acts.shape[-1]))  # k past the width: keep all


def _auroc() -> Callable:
    from saelab.metrics import auroc
    return lambda scores, labels: float(auroc(scores, labels))


def _logit_diff() -> Callable:
    from saelab.patching import LogitDiff
    return lambda logits, positive_ids, negative_ids: LogitDiff(tuple(positive_ids), tuple(negative_ids))(logits)


def _steering_hook() -> Callable:
    from saelab.steering import add_steering
    return lambda activation, hook, vector, scale, positions=None: add_steering(activation, vector, scale, positions)


def _resample() -> Callable:
    from saelab.training import resample_dead_latents
    return lambda sae, dead, x, seed: resample_dead_latents(sae, None, dead, x, "high_loss", seed=seed)


def _mcc() -> Callable:
    from saelab.ground_truth import mcc

    def my_mcc(W_dec, true_features):
        result = mcc(W_dec, true_features)
        return result["mcc"], result["latent"]
    return my_mcc


def _forward() -> Callable:
    return lambda sae, x: sae(x)


# Keyed by the name the exercise's solution defines; a test fails when an exercise's function is in neither table.
REFERENCES: dict[str, Reference] = {
    "my_topk": Reference("saelab.architectures.topk_activation", _topk),
    "my_forward": Reference("saelab.SAE.forward (sae(x))", _forward),
    "my_l0": Reference("saelab.metrics.l0", _public("saelab.metrics.l0")),
    "my_fvu": Reference("saelab.metrics.fraction_variance_unexplained",
                        _public("saelab.metrics.fraction_variance_unexplained")),
    "auroc_by_hand": Reference("saelab.metrics.auroc", _auroc),
    "logit_diff": Reference("saelab.patching.LogitDiff", _logit_diff),
    "my_steering_vector": Reference("saelab.steering.steering_vector", _public("saelab.steering.steering_vector")),
    "my_steering_hook": Reference("saelab.steering.add_steering", _steering_hook),
    "my_steer": Reference("saelab.steering.steer", _public("saelab.steering.steer")),
    "my_difference_of_means": Reference("saelab.steering_baselines.difference_of_means",
                                        _public("saelab.steering_baselines.difference_of_means")),
    "resample_high_loss": Reference("saelab.training.resample_dead_latents", _resample),
    "my_mcc": Reference("saelab.ground_truth.mcc", _mcc),
    "total_influence": Reference("saelab.graphs.influence", _public("saelab.graphs.influence")),
    "keep_by_influence": Reference("saelab.graphs.keep_by_influence", _public("saelab.graphs.keep_by_influence")),
}
# Exercises whose function the library has no public counterpart for (their checks hold a private reference).
NO_REFERENCE = frozenset({"my_sae_loss", "patch_position", "attribution_by_hand", "training_step",
                          "make_splice_hook", "logit_edge",
                          "my_jumprelu", "my_batchtopk", "my_matryoshka_loss",
                          "my_token_absorption"})  # 06: no later cell calls these


def _codes(code: types.CodeType) -> list[types.CodeType]:
    """A code object and every function body nested in it."""
    return [code] + [c for const in code.co_consts if isinstance(const, types.CodeType) for c in _codes(const)]


def is_stub(fn: Any) -> bool:
    """Whether `fn` is still the exercise's stub: its code (nested functions included, decorators looked through)
    still raises NotImplementedError."""
    fn = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(fn, "__code__", None)
    return code is not None and any("NotImplementedError" in c.co_names for c in _codes(code))


def _execution_count() -> int | None:
    try:
        from IPython import get_ipython
        shell = get_ipython()
        return shell.execution_count if shell is not None else None
    except ImportError:
        return None


class Missing:
    """Stands in for an exercise's function that is not written and has no library counterpart: each cell that
    calls it prints once that it needs the exercise, and gets its first argument back unchanged."""

    def __init__(self, name: str):
        self.__name__ = name
        self._told: object = object()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        count = _execution_count()
        if count != self._told:
            self._told = count
            print(f"… this cell needs your `{self.__name__}` (the exercise above). Until you write it, it changes "
                  f"nothing and hands back its first input, so what this cell shows is not the real result.")
        return args[0] if args else None

    def __repr__(self) -> str:
        return f"<{self.__name__}: not written yet>"


def stand_in(name: str, yours: Any = None) -> Any:
    """The student's `name` when written, else the library's reference, else a `Missing`; prints which."""
    if yours is not None and not is_stub(yours) and not isinstance(yours, Missing):
        print(f"✓ your {name} stays: the cells below use it (the check above says whether it is right).")
        return yours
    if name in REFERENCES:
        ref = REFERENCES[name]
        print(f"… {name} is not written yet: the library's {ref.name} stands in for it, so the cells below run. "
              f"Write yours above, run it, then run this cell again to use it.")
        return ref.make()
    print(f"… {name} is not written yet, and the library has no public function for it: the cells below that use "
          f"it will say so and show no real result. Write it above, then run this cell again.")
    return Missing(name)
