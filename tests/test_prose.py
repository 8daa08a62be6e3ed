"""hmmblog.prose: the house style of numbers in prose, string for string."""

import doctest
import itertools

import numpy as np
import pytest
import torch

from hmmblog import prose
from hmmblog.prose import (
    MINUS,
    Timed,
    duration,
    listed,
    num,
    percent,
    power_of_ten,
    sci,
    signed,
    timed,
    tolerance,
    words,
)


def test_docstring_examples() -> None:
    result = doctest.testmod(prose)
    assert result.attempted > 0 and result.failed == 0


def test_minus_is_the_true_minus_sign() -> None:
    assert MINUS == "\u2212" == "−"


@pytest.mark.parametrize(
    ("x", "spec", "expected"),
    [
        (3.14159, ".2f", "3.14"),
        (-3.14159, ".2f", "−3.14"),
        (-76998, ",d", "−76,998"),
        (1234567.891, ",.0f", "1,234,568"),
        (-1234567.891, ",.1f", "−1,234,567.9"),
        (851.0, ",d", "851"),
        (-851.0, ",d", "−851"),
        (2**70, ",d", "1,180,591,620,717,411,303,424"),  # exact, not through a float
        (0.853, ".0%", "85%"),
        (-0.5, "g", "−0.5"),
        (-1e-05, "g", "−1e-05"),  # only the sign becomes a minus, not the exponent's
        (1e-05, "g", "1e-05"),
        (-2.5, ">8.2f", "   −2.50"),
        (float("-inf"), ".2f", "−inf"),
        (float("nan"), ".2f", "nan"),
    ],
)
def test_num(x: object, spec: str, expected: str) -> None:
    assert num(x, spec) == expected


def test_num_default_spec_rounds_half_to_the_nearest_binary_value() -> None:
    assert num(2.675) == "2.67"  # 2.675 is 2.67499999... as a double
    assert num(0.125) == "0.12"  # exact halves go to even, as format does
    assert num(-0.375) == "−0.38"


@pytest.mark.parametrize(
    ("x", "spec"),
    [(-0.001, ".2f"), (-0.0, ".2f"), (-0.004999, ".2f"), (-0.4, ".0f"), (-0.4, ",.0f"),
     (-0.00001, ".1%"), (-0.0, "g")],
)
def test_num_negative_zero_after_rounding_has_no_sign(x: float, spec: str) -> None:
    assert num(x, spec) == format(0.0, spec)
    assert MINUS not in num(x, spec) and "-" not in num(x, spec)


def test_num_just_below_minus_half_a_unit_keeps_its_sign() -> None:
    assert num(-0.005001) == "−0.01"


def test_num_takes_numpy_and_torch_scalars() -> None:
    assert num(np.float64(-1.5)) == "−1.50"
    assert num(np.float32(2.25)) == "2.25"
    assert num(np.int64(-76998), ",d") == "−76,998"
    assert num(np.array(-0.25)) == "−0.25"
    assert num(torch.tensor(-1.5)) == "−1.50"
    assert num(torch.tensor(851.0), ",d") == "851"
    assert num(torch.tensor(-76998), ",d") == "−76,998"
    assert num(torch.tensor(0.5, requires_grad=True)) == "0.50"


@pytest.mark.parametrize("x", [851.5, np.float64(0.5), torch.tensor(2.5)])
def test_num_d_rejects_non_integral_values(x: object) -> None:
    with pytest.raises(ValueError, match=r"^x: expected a whole number for spec ',d', got"):
        num(x, ",d")


@pytest.mark.parametrize("spec", ["e", ".2e", ".3E"])
def test_num_refuses_scientific_specs(spec: str) -> None:
    with pytest.raises(ValueError, match=r"^spec: expected a fixed-point format .*use sci\(\)"):
        num(1.5e-7, spec)


@pytest.mark.parametrize("spec", ["s", "x", ".2q", 2])
def test_num_rejects_invalid_specs(spec: object) -> None:
    with pytest.raises(ValueError, match=r"^spec: expected a format spec"):
        num(1.5, spec)  # type: ignore[arg-type]


@pytest.mark.parametrize("x", ["1.5", None, True, torch.tensor([1.0, 2.0]), np.ones(2), 1j])
def test_num_rejects_non_numbers(x: object) -> None:
    with pytest.raises(ValueError, match=r"^x: expected a real number, got"):
        num(x)


@pytest.mark.parametrize(
    ("x", "digits", "expected"),
    [
        (3.6e-07, 1, "3.6 × 10⁻⁷"),
        (6e-14, 0, "6 × 10⁻¹⁴"),
        (-2.5e5, 1, "−2.5 × 10⁵"),
        (0, 1, "0"),
        (-0.0, 3, "0"),
        (9.96e-3, 1, "1.0 × 10⁻²"),  # the mantissa's rounding carries into the exponent
        (9.94e-3, 1, "9.9 × 10⁻³"),
        (9.6e-3, 0, "1 × 10⁻²"),
        (1.23456e10, 3, "1.235 × 10¹⁰"),
        (2.5, 1, "2.5 × 10⁰"),
        (-4.2e-123, 1, "−4.2 × 10⁻¹²³"),
    ],
)
def test_sci(x: float, digits: int, expected: str) -> None:
    assert sci(x, digits) == expected


def test_sci_uses_the_times_sign_with_plain_spaces() -> None:
    text = sci(3.6e-07)
    assert " \u00d7 " in text and "x" not in text and "\u2009" not in text
    assert text.endswith("10\u207b\u2077")


def test_sci_takes_numpy_and_torch_scalars() -> None:
    assert sci(np.float64(3.6e-07)) == "3.6 × 10⁻⁷"
    assert sci(torch.tensor(-2.5e5, dtype=torch.float64)) == "−2.5 × 10⁵"
    assert sci(2.5e5, np.int64(0)) == "2 × 10⁵"  # 2.5 rounds half to even, as format does


@pytest.mark.parametrize(("x", "match"), [(float("inf"), "^x: expected a finite number"),
                                          (float("nan"), "^x: expected a finite number"),
                                          ("3e-7", "^x: expected a finite number")])
def test_sci_rejects_non_finite_and_non_numbers(x: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sci(x)


@pytest.mark.parametrize("digits", [-1, 1.5, "1", None])
def test_sci_rejects_bad_digits(digits: object) -> None:
    with pytest.raises(ValueError, match=r"^digits: expected a whole number >= 0, got"):
        sci(1.0, digits)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (1.8e-15, "10⁻¹⁴"),
        (1e-12, "10⁻¹²"),  # at or above: an exact power is itself
        (1.0000001e-12, "10⁻¹¹"),
        (9.99e-13, "10⁻¹²"),
        (0.3, "10⁰"),
        (1, "10⁰"),
        (1.5, "10¹"),
        (10, "10¹"),
        (250, "10³"),
        (-1.8e-15, "10⁻¹⁴"),  # the size of x, whatever its sign
        (5e-324, "10⁻³²³"),
        (np.float64(1.8e-15), "10⁻¹⁴"),
        (torch.tensor(0.3), "10⁰"),
    ],
)
def test_power_of_ten(x: object, expected: str) -> None:
    assert power_of_ten(x) == expected


@pytest.mark.parametrize("x", [0, 0.0, -0.0, float("inf"), float("nan")])
def test_power_of_ten_rejects_zero_and_non_finite(x: float) -> None:
    with pytest.raises(ValueError, match=r"^x: expected a finite number other than 0, got"):
        power_of_ten(x)


@pytest.mark.parametrize(
    ("gap", "expected"),
    [
        (0, "exactly"),
        (0.0, "exactly"),
        (1.8e-15, "to within 10⁻¹⁴"),
        (1e-12, "to within 10⁻¹²"),
        (np.float64(0.0), "exactly"),
        (torch.tensor(3e-7, dtype=torch.float64), "to within 10⁻⁶"),
    ],
)
def test_tolerance(gap: object, expected: str) -> None:
    assert tolerance(gap) == expected


@pytest.mark.parametrize("gap", [-1e-15, float("nan"), float("inf"), "0"])
def test_tolerance_rejects_negative_and_non_finite_gaps(gap: object) -> None:
    with pytest.raises(ValueError, match=r"^gap: expected a finite number >= 0, got"):
        tolerance(gap)


@pytest.mark.parametrize(
    ("x", "spec", "expected"),
    [
        (0.05, ".2f", "+0.05"),
        (-0.05, ".2f", "−0.05"),
        (0, ".2f", "0.00"),
        (0.0, ".2f", "0.00"),
        (0.001, ".2f", "0.00"),  # rounds to zero: no sign either way
        (-0.001, ".2f", "0.00"),
        (0.005001, ".2f", "+0.01"),
        (1234.5, ",.1f", "+1,234.5"),
        (42, ",d", "+42"),
        (-42.0, ",d", "−42"),
        (0, ",d", "0"),
        (0.0123, ".1%", "+1.2%"),
        (np.float64(0.05), ".2f", "+0.05"),
        (torch.tensor(-0.05), ".2f", "−0.05"),
    ],
)
def test_signed(x: object, spec: str, expected: str) -> None:
    assert signed(x, spec) == expected


def test_signed_rejects_bad_input_like_num() -> None:
    with pytest.raises(ValueError, match=r"^x: expected a real number"):
        signed("0.05")
    with pytest.raises(ValueError, match=r"^spec: expected a fixed-point format"):
        signed(0.05, ".1e")


@pytest.mark.parametrize(
    ("share", "digits", "expected"),
    [
        (0.853, 0, "85%"),
        (0.853, 1, "85.3%"),
        (1, 0, "100%"),
        (0.0, 0, "0%"),
        (0.995, 0, "100%"),  # 99.5 rounds half to even
        (0.985, 0, "98%"),  # 0.985 is 0.98499... as a double
        (-0.02, 0, "−2%"),
        (-0.004, 0, "0%"),  # rounds to zero: no sign
        (1.5, 0, "150%"),
        (np.float32(0.25), 0, "25%"),
        (torch.tensor(0.125), 1, "12.5%"),
    ],
)
def test_percent(share: object, digits: int, expected: str) -> None:
    assert percent(share, digits) == expected


def test_percent_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^share: expected a real number, got"):
        percent("85%")
    with pytest.raises(ValueError, match=r"^digits: expected a whole number >= 0, got -1"):
        percent(0.5, -1)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "zero"),
        (1, "one"),
        (2, "two"),
        (3, "three"),
        (7, "seven"),
        (10, "ten"),
        (11, "11"),
        (12500, "12,500"),
        (3.0, "three"),
        (np.int64(4), "four"),
        (torch.tensor(5), "five"),
        (torch.tensor(6.0), "six"),
        (np.int32(1234), "1,234"),
    ],
)
def test_words(n: object, expected: str) -> None:
    assert words(n) == expected


@pytest.mark.parametrize("n", [-1, 2.5, np.float64(-3.0), True, "three", None])
def test_words_rejects_anything_but_a_count(n: object) -> None:
    with pytest.raises(ValueError, match=r"^n: expected a whole number >= 0, got"):
        words(n)


@pytest.mark.parametrize(
    ("items", "last", "expected"),
    [
        (["a"], "and", "a"),
        (["a", "b"], "and", "a and b"),
        (["a", "b", "c"], "and", "a, b and c"),  # British: no comma before "and"
        (["a", "b", "c", "d"], "or", "a, b, c or d"),
        ((1, 2.5, None), "and", "1, 2.5 and None"),
        ((f"K = {k}" for k in (2, 3)), "and", "K = 2 and K = 3"),
    ],
)
def test_listed(items: object, last: str, expected: str) -> None:
    assert listed(items, last=last) == expected  # type: ignore[arg-type]


def test_listed_composes_with_num() -> None:
    assert listed([num(x) for x in [-0.04, 5.03, 9.98]]) == "−0.04, 5.03 and 9.98"


def test_listed_rejects_empty_and_a_bare_string() -> None:
    with pytest.raises(ValueError, match=r"^items: expected at least one item, got none"):
        listed([])
    with pytest.raises(ValueError, match=r"^items: expected an iterable of items, got the str"):
        listed("abc")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0 ms"),
        (0.85, "850 ms"),
        (0.853, "850 ms"),
        (0.0123, "12 ms"),
        (0.00123, "1.2 ms"),
        (0.001, "1.0 ms"),
        (0.0999, "100 ms"),  # two significant digits carry
        (0.000012, "0.012 ms"),
        (0.994, "990 ms"),
        (0.9996, "1.0 s"),  # rounds up to the next unit, written in it
        (1, "1.0 s"),
        (3.2, "3.2 s"),
        (3.24, "3.2 s"),
        (9.94, "9.9 s"),
        (9.96, "10 s"),
        (10, "10 s"),
        (42, "42 s"),
        (42.4, "42 s"),
        (59.4, "59 s"),
        (59.7, "1 min 0 s"),
        (60, "1 min 0 s"),
        (100, "1 min 40 s"),
        (100.6, "1 min 41 s"),
        (3599.4, "59 min 59 s"),
        (3599.7, "1 h 0 min"),
        (3600, "1 h 0 min"),
        (7500, "2 h 5 min"),
        (7199.9, "2 h 0 min"),
        (90000, "25 h 0 min"),
        (np.float64(3.2), "3.2 s"),
        (torch.tensor(100.0), "1 min 40 s"),
    ],
)
def test_duration(seconds: object, expected: str) -> None:
    assert duration(seconds) == expected


@pytest.mark.parametrize("seconds", [-0.1, float("inf"), float("nan"), "3 s", None])
def test_duration_rejects_negative_and_non_finite_times(seconds: object) -> None:
    with pytest.raises(ValueError, match=r"^seconds: expected a finite number of seconds >= 0"):
        duration(seconds)


def test_duration_is_monotone_across_its_unit_boundaries() -> None:
    """Nothing jumps back at a boundary: every value reads as at least its predecessor."""

    def total(text: str) -> float:
        units = {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
        parts = text.split()
        return sum(float(v) * units[u] for v, u in zip(parts[::2], parts[1::2], strict=True))

    grid = sorted({0.001 * k for k in range(1, 1100)} | {0.1 * k for k in range(1, 1000)}
                  | {float(k) for k in range(1, 8000)})
    readings = [total(duration(s)) for s in grid]
    assert all(b >= a for a, b in itertools.pairwise(readings))


class _Clock:
    """A stand-in for time.perf_counter: each call advances by the next step."""

    def __init__(self, steps: list[float]) -> None:
        self.now, self.steps = 0.0, iter(steps)

    def __call__(self) -> float:
        self.now += next(self.steps)
        return self.now


def test_timed_repeats_a_fast_function_and_keeps_the_first_result() -> None:
    calls: list[int] = []

    def fast() -> int:
        calls.append(len(calls))
        return len(calls)

    measured = timed(fast)
    assert isinstance(measured, Timed)
    assert calls == [0, 1, 2]  # called three times
    assert measured.result == 1  # the first call's result, not the last's
    assert 0 <= measured.seconds < 0.5


def test_timed_calls_a_slow_function_once() -> None:
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        return "first"

    measured = timed(slow, quick=0)
    assert calls == [1]
    assert measured.result == "first"
    seconds, result = measured  # a NamedTuple: unpacks as (seconds, result)
    assert seconds == measured.seconds >= 0 and result == "first"


def test_timed_keeps_the_fastest_of_three(monkeypatch: pytest.MonkeyPatch) -> None:
    # Calls take 0.3, 0.1 and 0.2 s by the fake clock (each call reads it before and after).
    monkeypatch.setattr(prose.time, "perf_counter", _Clock([1.0, 0.3, 5.0, 0.1, 5.0, 0.2]))
    assert timed(lambda: "x").seconds == pytest.approx(0.1)


def test_timed_does_not_repeat_a_call_as_slow_as_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prose.time, "perf_counter", _Clock([1.0, 0.5]))  # a third read fails
    calls: list[int] = []
    measured = timed(lambda: calls.append(1), quick=0.5)
    assert calls == [1] and measured.seconds == pytest.approx(0.5)


def test_timed_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^fn: expected a function of no arguments, got 3"):
        timed(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^quick: expected a finite number of seconds >= 0"):
        timed(lambda: None, quick=-1)


def test_timed_accepts_numpy_and_torch_quick() -> None:
    calls: list[int] = []
    timed(lambda: calls.append(1), quick=np.float64(0.0))
    timed(lambda: calls.append(1), quick=torch.tensor(0.0))
    assert calls == [1, 1]


def test_listed_formats_numbers_with_a_spec():
    assert listed(torch.tensor([0.04, -5.031, 9.98]), ".1f") == "0.0, −5.0 and 10.0"
    assert listed(np.array([1250.0, 3]), ",.0f", last="or") == "1,250 or 3"
    with pytest.raises(ValueError, match="^x:"):
        listed(["a", "b"], ".2f")
