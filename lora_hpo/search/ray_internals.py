"""The only place lora-hpo touches Ray's private API, failing loudly (naming what moved)
instead of silently turning a feature off.

- ``replace_callbacks``: ``Tuner.restore`` takes no ``run_config``; the restored run config,
  callbacks included, comes back from the study's pickle. A resumed study must report to
  *this* driver's view and tracker, so its callbacks are replaced.

(Early stopping needs no private API: a function trainable's ``tune.report`` blocks until
the driver takes the result, and a trial that ASHA stops ends inside that call.)
``tests/search/test_ray_internals.py`` checks both on a real Ray runtime.
"""

from __future__ import annotations

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
