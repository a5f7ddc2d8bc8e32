"""The only place lora-hpo touches Ray's private API, failing loudly (naming what moved)
instead of silently turning a feature off.

- ``replace_callbacks``: ``Tuner.restore`` takes no ``run_config``; the restored run config,
  callbacks included, comes back from the study's pickle. A resumed study must report to
  *this* driver's view and tracker, so its callbacks are replaced.
- ``plain_trial_actors``: Tune registers every trainable actor with a ``runtime_env`` of
  env_vars (``{"PL_DISABLE_FORK": "1"}``, for PyTorch Lightning), and Ray never gives an actor
  with a runtime_env one of the worker processes it prestarts with the node, so each slot
  would boot a fresh process. On a local Ray that lora-hpo starts, the workers inherit the
  driver's environment anyway, so the actors need no runtime_env and take the prestarted
  (and preloaded: ``ray_runtime.py``) workers.

(Early stopping needs no private API: a function trainable's ``tune.report`` blocks until
the driver takes the result, and a trial that ASHA stops ends inside that call.)
``tests/search/test_ray_internals.py`` checks each on a real Ray runtime.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RayInternalsMoved(RuntimeError):
    """A private Ray API that lora-hpo relies on is gone: install the tested Ray version."""


def replace_callbacks(tuner: Any, callbacks: list[Any]) -> None:
    """Give a restored ``tune.Tuner`` these callbacks instead of the pickled ones."""
    run_config = getattr(getattr(tuner, "_local_tuner", None), "_run_config", None)
    if run_config is None or not hasattr(run_config, "callbacks"):
        import ray

        raise RayInternalsMoved(
            f"Ray {ray.__version__}: tune.Tuner._local_tuner._run_config.callbacks moved, so a"
            " resumed study cannot report to this driver's tracker and view; install the Ray"
            " version in constraints.txt"
        )
    run_config.callbacks = callbacks


def _actor_env() -> tuple[dict[str, str], frozenset[str]]:
    """Tune's env_vars for every trainable actor, and the names it copies from the driver."""
    try:
        from ray.tune.execution import class_cache

        return class_cache.DEFAULT_ENV_VARS, frozenset(class_cache.ENV_VARS_TO_PROPAGATE)
    except (ImportError, AttributeError):
        import ray

        raise RayInternalsMoved(
            f"Ray {ray.__version__}: ray.tune.execution.class_cache.DEFAULT_ENV_VARS or"
            " ENV_VARS_TO_PROPAGATE moved, so trial actors cannot take Ray's prestarted"
            " workers; install the Ray version in constraints.txt"
        ) from None


def tune_actor_env() -> dict[str, str]:
    """The env_vars Tune gives every trainable actor (a local Ray's workers get them from the
    driver's environment instead: set them before ``ray.init``)."""
    return dict(_actor_env()[0])


def propagated_env() -> list[str]:
    """The driver's variables that Tune copies into every trainable actor's runtime_env;
    while any is set, the actors cannot take prestarted workers."""
    return sorted(name for name in _actor_env()[1] if name in os.environ)


@contextmanager
def plain_trial_actors() -> Iterator[None]:
    """While open, Tune registers trainable actors without its own env_vars, so the actors can
    start in Ray's prestarted workers. Only for a local Ray this process started with
    ``tune_actor_env()`` in its environment; Tune's defaults come back on exit."""
    defaults, _ = _actor_env()
    saved = dict(defaults)
    defaults.clear()
    try:
        yield
    finally:
        defaults.update(saved)
