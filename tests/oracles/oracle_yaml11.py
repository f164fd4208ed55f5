"""Strings that a YAML 1.1 reader (PyYAML, kubectl's go-yaml v2) takes for something else when
they are written plain: every family of yaml.org/type (bool, null, int, float, timestamp, merge,
value), spelled out and generated from PyYAML's resolver patterns with a fixed seed.

`python oracle_yaml11.py` prints a values file that has the hostile fixture plugin render them
all as ConfigMap keys and values and as connection values.
"""
from __future__ import annotations

import json
import random

# What kubectl's go-yaml v2 reads as a boolean or number and PyYAML as a string.
GO_YAML_ONLY = ["y", "Y", "n", "N", "0B101", "0X1F", "0o17", "0O17", "0_8", "1_0e5"]

SPELLED_OUT = [
    # bool
    "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
    "on", "On", "ON", "off", "Off", "OFF",
    # null
    "~", "null", "Null", "NULL",
    # int, float, timestamp: the examples of yaml.org/type
    "0b1010_0111_0100_1010_1110", "02472256", "685_230", "0x_0A_74_AE", "190:20:30",
    "6.8523015e+5", "685.230_15e+03", "685_230.15", "190:20:30.15", "-.inf", ".NaN",
    "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15 2:59:43.10",
    "2002-12-14",
    # merge, value
    "<<", "=",
]


def generated(rng: random.Random, per_family: int = 25) -> list[str]:
    def digits(alphabet: str, low: int, high: int, underscores: bool = True) -> str:
        pool = alphabet + ("_" if underscores else "")
        return "".join(rng.choice(pool) for _ in range(rng.randint(low, high)))

    def sign() -> str:
        return rng.choice(["", "-", "+"])

    def base60() -> str:
        return "".join(":" + rng.choice(["", *"012345"]) + rng.choice("0123456789")
                       for _ in range(rng.randint(1, 3)))

    def exponent() -> str:
        return rng.choice(["", "e" + rng.choice("-+") + digits("0123456789", 1, 3, False)])

    def two(low: int) -> str:
        return digits("0123456789", low, 2, False)

    families = [
        lambda: sign() + "0b" + digits("01", 1, 8),
        lambda: sign() + "0" + digits("01234567", 1, 8),
        lambda: sign() + rng.choice("123456789") + digits("0123456789", 0, 8),
        lambda: sign() + "0x" + digits("0123456789abcdefABCDEF", 1, 8),
        lambda: sign() + rng.choice("123456789") + digits("0123456789", 0, 3) + base60(),
        lambda: sign() + rng.choice("0123456789") + digits("0123456789", 0, 4) + "."
        + digits("0123456789", 0, 4) + exponent(),
        lambda: "." + rng.choice("0123456789") + digits("0123456789", 0, 4) + exponent(),
        lambda: sign() + rng.choice("0123456789") + digits("0123456789", 0, 3) + base60() + "."
        + digits("0123456789", 0, 3),
        lambda: sign() + "." + rng.choice(["inf", "Inf", "INF"]),
        lambda: "." + rng.choice(["nan", "NaN", "NAN"]),
        lambda: f"{rng.randint(1000, 9999)}-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}",
        lambda: f"{rng.randint(1000, 9999)}-{two(1)}-{two(1)}"
        + rng.choice(["T", "t", " ", "\t", "  "]) + f"{two(1)}:{two(2)}:{two(2)}"
        + rng.choice(["", "." + digits("0123456789", 0, 4, False)])
        + rng.choice(["", "Z", " Z", "-5", " -05:00", "+1", "\t+01:30"]),
    ]
    return [family() for family in families for _ in range(per_family)]


def strings() -> list[str]:
    """Every spelled-out string and the generated ones, each once, in a stable order."""
    return list(dict.fromkeys([*SPELLED_OUT, *GO_YAML_ONLY, *generated(random.Random(1729))]))


if __name__ == "__main__":
    print(json.dumps({"hostile": {"behaviour": "strings", "strings": strings()}}, indent=1))
