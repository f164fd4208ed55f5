//! Kubernetes resource quantities (`250m`, `1Gi`, `1e3`), parsed exactly.
//!
//! k8s-openapi keeps a quantity as an unchecked string, so "10 GB" decodes fine and fails only
//! when the API server sees it. The host checks every quantity with this parser instead.

use std::fmt;

/// A parsed quantity, in billionths of the unit (the API server's finest precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

impl Quantity {
    pub fn nanos(self) -> i128 {
        self.nanos
    }
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a quantity ({reason}); expected e.g. \"500m\", \"2\", \"256Mi\" or \"10Gi\""
)]
pub struct QuantityError {
    pub input: String,
    pub reason: &'static str,
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}n", self.nanos)
    }
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// Parses a quantity as the API server does: `<sign><digits>[.<digits>]<suffix>`, where the
/// suffix is a binary SI one (`Ki`…`Ei`), a decimal SI one (`n`, `u`, `m`, `k`, `M`…`E`) or a
/// decimal exponent (`e3`, `E-2`). Precision below a nano-unit is rounded up, as Kubernetes does.
pub fn parse(input: &str) -> Result<Quantity, QuantityError> {
    let fail = |reason| QuantityError {
        input: input.to_string(),
        reason,
    };
    let (negative, rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        Some(_) => (false, input),
        None => return Err(fail("it is empty")),
    };
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(fail("it has no digits"));
    }
    if fraction.contains('.') {
        return Err(fail("it has more than one decimal point"));
    }
    let (base, exponent) = parse_suffix(suffix).ok_or_else(|| fail("unknown suffix"))?;

    // digits × 10^(exponent - fraction digits) × base, in nano-units.
    let digits: String = [whole, fraction].concat();
    let mut value: i128 = 0;
    for digit in digits.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(digit - b'0')))
            .ok_or_else(|| fail("it is out of range"))?;
    }
    let scale = exponent + 9 - fraction.len() as i32;
    let mut nanos = value
        .checked_mul(base)
        .ok_or_else(|| fail("it is out of range"))?;
    if scale >= 0 {
        let factor = 10i128
            .checked_pow(scale as u32)
            .ok_or_else(|| fail("it is out of range"))?;
        nanos = nanos
            .checked_mul(factor)
            .ok_or_else(|| fail("it is out of range"))?;
    } else {
        let divisor = 10i128
            .checked_pow(scale.unsigned_abs())
            .ok_or_else(|| fail("it is out of range"))?;
        nanos = div_ceil(nanos, divisor);
    }
    Ok(Quantity {
        nanos: if negative { -nanos } else { nanos },
    })
}

/// The multiplier and power of ten of a suffix.
fn parse_suffix(suffix: &str) -> Option<(i128, i32)> {
    let binary = |power: u32| Some((1i128 << (10 * power), 0));
    match suffix {
        "" => Some((1, 0)),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        "n" => Some((1, -9)),
        "u" => Some((1, -6)),
        "m" => Some((1, -3)),
        "k" => Some((1, 3)),
        "M" => Some((1, 6)),
        "G" => Some((1, 9)),
        "T" => Some((1, 12)),
        "P" => Some((1, 15)),
        "E" => Some((1, 18)),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            exponent.parse::<i32>().ok().map(|e| (1, e))
        }
    }
}

/// Whole units of a quantity, rounded up (e.g. bytes of a memory limit).
pub fn whole_units(quantity: Quantity) -> i128 {
    div_ceil(quantity.nanos, NANOS_PER_UNIT)
}

/// Division rounding towards positive infinity (`i128::div_ceil` is not stable).
fn div_ceil(value: i128, divisor: i128) -> i128 {
    let quotient = value / divisor;
    if value % divisor > 0 {
        quotient + 1
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> i128 {
        parse(s).map(Quantity::nanos).unwrap_or(i128::MIN)
    }

    #[test]
    fn parses_every_suffix_family() {
        assert_eq!(nanos("250m"), 250_000_000);
        assert_eq!(nanos("1"), NANOS_PER_UNIT);
        assert_eq!(nanos("1Gi"), (1 << 30) * NANOS_PER_UNIT);
        assert_eq!(nanos("1k"), 1000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1e3"), 1000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1E-3"), 1_000_000);
        assert_eq!(nanos("0.5"), 500_000_000);
        assert_eq!(nanos(".5Gi"), (1 << 29) * NANOS_PER_UNIT);
        assert_eq!(nanos("-1"), -NANOS_PER_UNIT);
        assert_eq!(nanos("1n"), 1);
    }

    #[test]
    fn orders_across_suffixes() {
        assert!(nanos("512Mi") < nanos("1Gi"));
        assert!(nanos("1G") < nanos("1Gi"));
        assert_eq!(parse("1000m"), parse("1"));
        assert_eq!(
            whole_units(parse("256Mi").unwrap_or(Quantity { nanos: 0 })),
            268_435_456
        );
    }

    #[test]
    fn refuses_what_the_api_server_refuses() {
        for bad in [
            "", "10 GB", "10GB", "1.2.3", "Gi", "1e", "1ee3", "abc", "1Gib", "e3",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// Suffixes with their value in nano-units: (suffix, multiplier of one nano-unit).
    const SUFFIXES: &[(&str, i128)] = &[
        ("n", 1),
        ("u", 1_000),
        ("m", 1_000_000),
        ("", NANOS_PER_UNIT),
        ("k", 1_000 * NANOS_PER_UNIT),
        ("Ki", 1024 * NANOS_PER_UNIT),
        ("M", 1_000_000 * NANOS_PER_UNIT),
        ("Mi", (1 << 20) * NANOS_PER_UNIT),
        ("G", 1_000_000_000 * NANOS_PER_UNIT),
        ("Gi", (1 << 30) * NANOS_PER_UNIT),
        ("T", 1_000_000_000_000 * NANOS_PER_UNIT),
        ("Ti", (1 << 40) * NANOS_PER_UNIT),
        ("P", 1_000_000_000_000_000 * NANOS_PER_UNIT),
        ("Pi", (1 << 50) * NANOS_PER_UNIT),
        ("E", 1_000_000_000_000_000_000 * NANOS_PER_UNIT),
        ("Ei", (1 << 60) * NANOS_PER_UNIT),
        ("e3", 1_000 * NANOS_PER_UNIT),
        ("E-3", 1_000_000),
    ];

    fn quantity() -> impl Strategy<Value = (u32, usize)> {
        (any::<u32>(), 0..SUFFIXES.len())
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn parse_never_panics_on_near_quantities(
            text in "[+-]?[0-9]{0,45}(\\.[0-9]{0,45})?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]{1,12})?[ .a-zA-Z]{0,2}"
        ) {
            let _ = parse(&text);
        }

        #[test]
        fn whole_numbers_with_a_suffix_are_exact((n, suffix) in quantity()) {
            let (text, multiplier) = SUFFIXES[suffix];
            let parsed = parse(&format!("{n}{text}")).map(Quantity::nanos);
            prop_assert_eq!(parsed, Ok(i128::from(n) * multiplier));
            let negative = parse(&format!("-{n}{text}")).map(Quantity::nanos);
            prop_assert_eq!(negative, Ok(-i128::from(n) * multiplier));
        }

        #[test]
        fn ordering_matches_suffix_arithmetic(a in quantity(), b in quantity()) {
            let text = |(n, suffix): (u32, usize)| format!("{n}{}", SUFFIXES[suffix].0);
            let value = |(n, suffix): (u32, usize)| i128::from(n) * SUFFIXES[suffix].1;
            match (parse(&text(a)), parse(&text(b))) {
                (Ok(left), Ok(right)) => {
                    prop_assert_eq!(left.cmp(&right), value(a).cmp(&value(b)));
                }
                other => prop_assert!(false, "does not parse: {other:?}"),
            }
        }

        #[test]
        fn a_fraction_rounds_up_to_the_next_nano_unit(
            whole in 0u32..1_000_000, fraction in "[0-9]{1,15}"
        ) {
            let parsed = parse(&format!("{whole}.{fraction}")).map(Quantity::nanos);
            // Scale the fraction to exactly nine digits, rounding up what falls below a nano.
            let (kept, dropped) = fraction.split_at(fraction.len().min(9));
            let nanos: i128 = format!("{kept:0<9}").parse().unwrap_or(i128::MIN);
            let round_up = i128::from(dropped.bytes().any(|b| b != b'0'));
            prop_assert_eq!(parsed, Ok(i128::from(whole) * NANOS_PER_UNIT + nanos + round_up));
        }
    }
}
