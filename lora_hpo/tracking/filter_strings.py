"""MLflow search filters that name user-given values (experiment and registered model names,
study keys). MLflow's filter grammar has no escape character: a value is quoted with the quote
it does not hold, so ``bob's study`` is ``"bob's study"``. A value holding both quotes cannot
be named in a filter at all, and is refused with a message rather than sent as a filter that
fails or matches the wrong runs."""

from __future__ import annotations

from collections.abc import Mapping


def literal(value: str) -> str:
    """``value`` as a quoted MLflow filter string literal."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(
        f"{value!r} holds both ' and \", and an MLflow search filter cannot name such a value"
        " (rename it without one of the two quotes)"
    )


def equals(field: str, value: str) -> str:
    """``field = value``, ``field`` as MLflow names it (``name``, ``run_id``, ``tags.`k```)."""
    return f"{field} = {literal(value)}"


def tags_equal(match: Mapping[str, str]) -> str:
    """Runs whose tags hold every ``match`` value (tag keys in backticks: they hold dots)."""
    return " and ".join(equals(f"tags.`{key}`", value) for key, value in match.items())
