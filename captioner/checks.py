"""Checks on the numbers a user passes (flags and API arguments), with one-line errors."""

from __future__ import annotations

import math

from captioner.errors import CaptionerError

MAX_BEAM = 50  # the widest beam search a user may ask for, in every face (CLI, API, Beam)


def number_in(name: str, value: float, low: float, high: float, integer: bool = False,
              low_open: bool = False) -> float:
    """``value`` if it is a finite number in [low, high] (or (low, high] with ``low_open``)."""
    kind = "a whole number" if integer else "a number"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CaptionerError(f"{name} must be {kind}, got {value!r}") from None
    below = number <= low if low_open else number < low
    if not math.isfinite(number) or below or number > high or (integer and number != int(number)):
        opening = "(" if low_open else "["
        raise CaptionerError(f"{name} must be {kind} in {opening}{low:g}, {high:g}], got {value}")
    return int(number) if integer else number


def check_fields(config, bounds: dict[str, tuple[float, float]]) -> None:
    """Check (and type) every numeric field of a config dataclass named in ``bounds``."""
    for name, (low, high) in bounds.items():
        value = getattr(config, name)
        integer = isinstance(value, int) and not isinstance(value, bool)
        setattr(config, name, number_in(name.replace("_", " "), value, low, high, integer=integer))
