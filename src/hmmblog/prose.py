"""Numbers for prose: the house style of every number the posts write into a sentence.

No number in a post's text is typed by hand: each is computed and put into the sentence by a
Quarto inline expression, so the text cannot drift from the code. These helpers give all posts
one style instead of a copy of the same few lines per post: a true minus sign (U+2212) rather
than a hyphen, thousands separators from the format spec, one scientific format
(3.6 × 10⁻⁷), powers of ten for agreements ("to within 10⁻¹⁴"), measured durations
("1 min 40 s", with `timed` to measure them) and counts and lists in words ("three",
"a, b and c"). Every function accepts Python, numpy and torch scalars alike.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Generic, NamedTuple, TypeVar

from hmmblog.validation import as_number, check_finite_number

__all__ = [
    "MINUS",
    "Timed",
    "duration",
    "listed",
    "num",
    "percent",
    "power_of_ten",
    "sci",
    "signed",
    "timed",
    "tolerance",
    "words",
]

MINUS = "\u2212"  # the true minus sign; a hyphen-minus is too short and too high in prose

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_WORDS = "zero one two three four five six seven eight nine ten".split()

T = TypeVar("T")


def _whole(name: str, value: object, what: str) -> int:
    """`value` as an int if it is a whole number of any kind (2, 2.0, a numpy or torch scalar)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)  # exact, however large
    x = as_number(name, value, what)
    if not x.is_integer():
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return int(x)


def _count(name: str, value: object) -> int:
    """`value` as an int if it is a whole number >= 0 (a count, a number of digits)."""
    what = "a whole number >= 0"
    n = _whole(name, value, what)
    if n < 0:
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return n


def _superscript(n: int) -> str:
    return str(n).translate(_SUPERSCRIPT)


def num(x: object, spec: str = ".2f") -> str:
    """`format(x, spec)` with a true minus sign; a value that rounds to zero has no sign.

    Thousands separators come from the spec (``",.0f"``, ``",d"``); ``"d"`` takes any whole
    number, 851.0 included. For scientific notation use `sci`.

    >>> num(-76998, ",d"), num(851.0, ",d"), num(-0.001), num(0.853, ".0%")
    ('−76,998', '851', '0.00', '85%')
    """
    if not isinstance(spec, str):
        raise ValueError(f"spec: expected a format spec string such as '.2f', got {spec!r}")
    if spec.endswith(("e", "E")):
        raise ValueError(f"spec: expected a fixed-point format such as '.2f' (use sci() for "
                         f"scientific notation), got {spec!r}")
    if spec.endswith("d"):
        value: float = _whole("x", x, f"a whole number for spec {spec!r}")
    else:
        value = as_number("x", x, "a real number")
    try:
        text = format(value, spec)
    except (TypeError, ValueError):
        raise ValueError(f"spec: expected a format spec for a number such as '.2f' or ',d', "
                         f"got {spec!r}") from None
    if math.copysign(1.0, value) > 0:
        return text
    unsigned = format(-value, spec)
    if unsigned == format(type(value)(0), spec):  # -0.001 → "0.00": no sign on a zero
        return unsigned
    return text.replace("-", MINUS, 1)  # only the sign: "-1e-05" with spec "g" keeps "e-05"


def signed(x: object, spec: str = ".2f") -> str:
    """`num` with an explicit sign, + or −; a value that rounds to zero has none.

    >>> signed(0.05), signed(-0.05), signed(0.001)
    ('+0.05', '−0.05', '0.00')
    """
    text = num(x, spec)
    if as_number("x", x) > 0 and text != num(0, spec):
        return "+" + text
    return text


def percent(share: object, digits: int = 0) -> str:
    """A share (0.853) as a percentage with `digits` decimals and a true minus sign.

    >>> percent(0.853), percent(0.853, 1), percent(-0.02)
    ('85%', '85.3%', '−2%')
    """
    value = as_number("share", share, "a real number")
    return num(value, f".{_count('digits', digits)}%")


def sci(x: object, digits: int = 1) -> str:
    """`x` in scientific notation for prose, with `digits` decimals in the mantissa; 0 is "0".

    >>> sci(3.6e-07), sci(6e-14, 0), sci(-2.5e5), sci(9.96e-3)
    ('3.6 × 10⁻⁷', '6 × 10⁻¹⁴', '−2.5 × 10⁵', '1.0 × 10⁻²')
    """
    value = check_finite_number("x", x)
    digits = _count("digits", digits)
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.{digits}e}".split("e")  # rounding carries: 9.96 → 1.0e+01
    return f"{mantissa.replace('-', MINUS)} × 10{_superscript(int(exponent))}"


def power_of_ten(x: object) -> str:
    """The smallest power of ten at or above |x|, as 10⁻¹⁴.

    >>> power_of_ten(1.8e-15), power_of_ten(1e-12), power_of_ten(0.3)
    ('10⁻¹⁴', '10⁻¹²', '10⁰')
    """
    value = check_finite_number("x", x, "a finite number other than 0")
    if value == 0:
        raise ValueError(f"x: expected a finite number other than 0, got {x!r}")
    # The decimal the float prints as, exactly: 1e-12 is 10⁻¹², though its binary value is not.
    d = Decimal(repr(abs(value))).normalize()
    is_power = d.as_tuple().digits == (1,)
    return "10" + _superscript(d.adjusted() + (not is_power))


def tolerance(gap: object) -> str:
    """How closely two results agree, for "they agree ...": "exactly" or "to within 10⁻ⁿ".

    >>> tolerance(0.0), tolerance(1.8e-15)
    ('exactly', 'to within 10⁻¹⁴')
    """
    value = check_finite_number("gap", gap, "a finite number >= 0")
    if value < 0:
        raise ValueError(f"gap: expected a finite number >= 0, got {gap!r}")
    return "exactly" if value == 0 else "to within " + power_of_ten(value)


def words(n: object) -> str:
    """A count in words up to ten, in digits (with thousands separators) above.

    >>> words(0), words(3), words(10), words(12500)
    ('zero', 'three', 'ten', '12,500')
    """
    count = _count("n", n)
    return _WORDS[count] if count <= 10 else num(count, ",d")


def listed(items: Iterable[object], spec: str | None = None, last: str = "and") -> str:
    """Items joined for prose, British style (no comma before the last word); with `spec`,
    numbers (a tensor or an array too) formatted by `num` first.

    >>> listed(["a"]), listed(["a", "b"]), listed(["a", "b", "c"], last="or")
    ('a', 'a and b', 'a, b or c')
    >>> listed([0.04, -5.031, 9.98], ".2f")
    '0.04, −5.03 and 9.98'
    """
    if isinstance(items, str):
        raise ValueError(f"items: expected an iterable of items, got the string {items!r}")
    texts = [str(item) if spec is None else num(item, spec) for item in items]
    if not texts:
        raise ValueError("items: expected at least one item, got none")
    if len(texts) == 1:
        return texts[0]
    return f"{', '.join(texts[:-1])} {last} {texts[-1]}"


def duration(seconds: object) -> str:
    """A measured time for prose: 850 ms, 3.2 s, 42 s, 1 min 40 s, 2 h 5 min.

    Below a second: milliseconds to two significant digits; below ten seconds: one decimal;
    then whole seconds, minutes and seconds, and from an hour hours and minutes. A value that
    rounds up to the next unit is written in it (0.9996 → "1.0 s", 59.7 → "1 min 0 s").

    >>> duration(0.853), duration(3.21), duration(42.4), duration(100), duration(7500)
    ('850 ms', '3.2 s', '42 s', '1 min 40 s', '2 h 5 min')
    """
    value = check_finite_number("seconds", seconds, "a finite number of seconds >= 0")
    if value < 0:
        raise ValueError(f"seconds: expected a finite number of seconds >= 0, got {seconds!r}")
    if value == 0:
        return "0 ms"
    if value < 1:
        decimals = 1 - math.floor(math.log10(value * 1000))  # two significant digits
        ms = round(value * 1000, decimals)
        if ms < 1000:
            return f"{ms:.{max(decimals, 0)}f} ms"
    if round(value, 1) < 10:
        return f"{value:.1f} s"
    s = round(value)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    minutes = round(value / 60)
    return f"{minutes // 60} h {minutes % 60} min"


class Timed(NamedTuple, Generic[T]):
    """What `timed` measured: the fastest time of its calls and the first call's result."""

    seconds: float
    result: T


def timed(fn: Callable[[], T], *, quick: float = 0.5) -> Timed[T]:
    """Call `fn()` and measure it with `time.perf_counter`.

    If the call took less than `quick` seconds, `fn` runs two more times and `seconds` is the
    fastest of the three (the first call pays one-off costs such as compilation); a slow call
    runs once. `result` is always the first call's return value.

    >>> timed(lambda: sum(range(10))).result
    45
    """
    if not callable(fn):
        raise ValueError(f"fn: expected a function of no arguments, got {fn!r}")
    quick = check_finite_number("quick", quick, "a finite number of seconds >= 0")
    if quick < 0:
        raise ValueError(f"quick: expected a finite number of seconds >= 0, got {quick!r}")
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    if seconds < quick:
        for _ in range(2):
            start = time.perf_counter()
            fn()
            seconds = min(seconds, time.perf_counter() - start)
    return Timed(seconds, result)
