"""quiet_libraries silences only the named warnings: others still show."""

from __future__ import annotations

import warnings

from lora_hpo.training.quiet import KNOWN, quiet_libraries


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
