"""Keep library noise out of the user's way, and nothing more: progress bars off, library
loggers at ERROR, and a short list of NAMED warnings that are known to be irrelevant to a
lora-hpo user, each silenced by its message and the module it comes from. Every other
warning, the DeprecationWarnings and FutureWarnings that announce the next break included,
still shows."""

from __future__ import annotations

import logging
import os
import warnings

# (category, message regex, module regex, why it is irrelevant to a lora-hpo user)
KNOWN: tuple[tuple[type[Warning], str, str, str], ...] = (
    (
        FutureWarning,
        r"`is_gradient_checkpointing` is deprecated",
        r"transformers\.modeling_utils",
        "transformers' own Trainer calls the old name; nothing in lora-hpo or a spec does",
    ),
    (
        UserWarning,
        r"The reported value is ignored because this `step=\d+` is already reported",
        r"optuna\.trial\._trial",
        "a resumed trial re-reports the steps after its last checkpoint; Optuna keeps the first",
    ),
    (
        DeprecationWarning,
        r"`torch\.jit\.script_method` is deprecated",
        r"torch\.jit\._script",
        "torch's own mkldnn module uses it at import",
    ),
)
LOGGERS = ("ray.tune", "ray.train", "ray.data", "alembic", "mlflow", "datasets", "httpx")
# (logger, message prefix, why): log records known to be irrelevant, dropped by their text
KNOWN_LOGS: tuple[tuple[str, str, str], ...] = (
    (
        "bitsandbytes.backends.cpu.ops",
        "Failed to load CPU gemm_4bit_forward from kernels-community",
        "printed at import whenever bitsandbytes is installed; 4-bit on CPU works without it",
    ),
    (
        "bitsandbytes.autograd._functions",
        "MatMul8bitLt: inputs will be cast from",
        "said at every 8-bit matmul of a float32 trial; the cast is what 8-bit does",
    ),
)


class _DropKnown(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def silence_known() -> None:
    """Ignore exactly the warnings in KNOWN and the log records in KNOWN_LOGS (cheap: the
    training package calls it on import, before transformers and bitsandbytes load)."""
    for category, message, module, _why in KNOWN:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name, prefix, _why in KNOWN_LOGS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnown) for f in logger.filters):
            logger.addFilter(_DropKnown(prefix))


def quiet_loggers() -> None:
    """The library loggers in LOGGERS at ERROR, and nothing imported: what a process that
    only relays reports (a packed trial's client) needs, so that Ray Train's "Checkpoint
    successfully created" lines stay out of the driver's console."""
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_libraries() -> None:
    """Progress bars off and library loggers at ERROR; errors, and warnings about the user's
    own data or model, still reach the terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # mlflow sets its own on import
    silence_known()
    quiet_loggers()
    try:
        import datasets
        import optuna
        import transformers

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        datasets.disable_progress_bars()
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
