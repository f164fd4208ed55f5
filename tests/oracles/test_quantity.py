"""The quantity parser itself, since the cross-object checks rely on it to reject bad values."""
from fractions import Fraction

import pytest

from oracle_quantity import parse_quantity


@pytest.mark.parametrize("text, expected", [
    ("250m", Fraction(1, 4)), ("1", 1), (1, 1), ("0.5", Fraction(1, 2)), (".5", Fraction(1, 2)), ("5.", 5),
    ("512Mi", 512 * 2**20), ("1Gi", 2**30), ("10Gi", 10 * 2**30), ("1k", 1000), ("1M", 10**6),
    ("1E", 10**18), ("1e3", 1000), ("1E-3", Fraction(1, 1000)), ("+2", 2), ("-1", -1), ("0", 0),
])
def test_valid_quantities(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "1.5.5", "Mi", "1mi", "1KB", "1 Gi", "1Gib", "1e", "abc", "1K", "--1", True, None])
def test_invalid_quantities(text):
    with pytest.raises(ValueError):
        parse_quantity(text)
