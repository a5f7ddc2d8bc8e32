"""quiet_libraries silences only the named warnings: others still show; quiet_loggers quiets
the library loggers without importing the libraries."""

from __future__ import annotations

import subprocess
import sys
import warnings

from lora_hpo.training.quiet_logs import KNOWN, quiet_libraries


def _shown(category: type[Warning], message: str, module: str) -> bool:
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 1, module)
    return bool(caught)


def test_known_warnings_are_silenced_by_message_and_module() -> None:
    assert _shown(FutureWarning, "`is_gradient_checkpointing` is deprecated", "x.y") is True
    assert not _shown(
        FutureWarning, "`is_gradient_checkpointing` is deprecated", "transformers.modeling_utils"
    )
    for _category, message, module, why in KNOWN:
        assert why, message
        assert module and message


def test_other_deprecations_and_future_warnings_still_show() -> None:
    assert _shown(DeprecationWarning, "`foo` is deprecated and will be removed", "peft.tuners")
    assert _shown(FutureWarning, "the default of `bar` will change", "transformers.trainer")
    assert _shown(UserWarning, "something about your data", "datasets.load")


def test_quiet_loggers_drops_ray_train_info_and_imports_nothing() -> None:
    code = (
        "import logging, sys\n"
        "from lora_hpo.training.quiet_logs import quiet_loggers\n"
        "logging.getLogger('ray.train').setLevel(logging.INFO)\n"
        "quiet_loggers()\n"
        "print(logging.getLogger('ray.train.v2._internal.execution.storage')"
        ".isEnabledFor(logging.INFO), logging.getLogger('ray.train').isEnabledFor(logging.ERROR),"
        " any(m in sys.modules for m in ('torch', 'transformers', 'datasets')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "False"], out.stdout + out.stderr
