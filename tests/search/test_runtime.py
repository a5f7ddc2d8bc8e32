"""The runtime's GPU share check: a share that cannot hold a trial's estimate says so."""

from __future__ import annotations

from lora_hpo.search.runtime import fits_share

GIB = 1 << 30


def test_a_share_that_holds_the_trial_passes() -> None:
    assert fits_share(30 * GIB, 0.5, 80 * GIB) == ""
    assert fits_share(30 * GIB, 2.0, 40 * GIB) == ""  # whole GPUs: one device's memory each


def test_a_share_too_small_names_the_field_and_the_ways_out() -> None:
    why = fits_share(30 * GIB, 0.25, 80 * GIB)
    assert why.startswith("resources.gpu: a trial gets 0.25 of a 80 GiB GPU, 20.0 GiB")
    assert "needs about 30.0 GiB" in why and "model.quantization" in why
