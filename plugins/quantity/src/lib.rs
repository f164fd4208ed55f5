//! Kubernetes resource quantities (`250m`, `1Gi`, `1e3`), parsed exactly as the API server does,
//! so a plugin can reject a bad value or a limit below its request before Kubernetes would, and
//! the host can refuse a bad quantity in a plugin's output (k8s-openapi keeps them as unchecked
//! strings). One parser for both, so they can never disagree.
//!
//! The grammar (from `k8s.io/apimachinery/pkg/api/resource`):
//!
//! ```text
//! quantity        ::= signedNumber suffix
//! suffix          ::= binarySI | decimalExponent | decimalSI
//! binarySI        ::= Ki | Mi | Gi | Ti | Pi | Ei
//! decimalSI       ::= n | u | m | "" | k | M | G | T | P | E
//! decimalExponent ::= "e" signedNumber | "E" signedNumber   (an integer exponent)
//! signedNumber    ::= [+-] number
//! number          ::= digits | digits "." digits | digits "." | "." digits
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The grammar above as a JSON Schema pattern, so that the host rejects a bad quantity while
/// validating the configuration, before `render` runs.
pub const PATTERN: &str =
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$";

/// At most this many significant digits: with the largest binary factor (2^60) the exact value
/// still fits an `u128`, which keeps comparison exact without a big-number dependency.
const MAX_DIGITS: usize = 18;
/// Exponents far beyond any real quantity are refused rather than computed.
const MAX_EXPONENT: i32 = 100;

/// A parsed quantity. It keeps the text it was written as (that is what goes into manifests)
/// and compares by value: `1000m == 1`, `1Gi > 1G`.
#[derive(Clone, Debug)]
pub struct Quantity {
    text: String,
    negative: bool,
    /// The magnitude is `mantissa × 10^exponent`, normalised so that `mantissa` has no trailing
    /// zeros (and `exponent` is 0 when the value is 0).
    mantissa: u128,
    exponent: i32,
}

/// Why a string is not a quantity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl Quantity {
    /// Parses a literal known to be valid, such as a plugin's default.
    ///
    /// # Panics
    ///
    /// If `text` is not a quantity: that is a typo in the plugin's source, so the panic names
    /// the caller's line (`#[track_caller]`; a `panic!` in a closure would name this one).
    #[track_caller]
    pub fn from_static(text: &'static str) -> Self {
        match text.parse() {
            Ok(quantity) => quantity,
            Err(e) => panic!("invalid quantity literal: {e}"),
        }
    }

    /// The text as written, e.g. `512Mi`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the value is above zero.
    pub fn is_positive(&self) -> bool {
        !self.negative && self.mantissa != 0
    }

    /// The value rounded up to an integer (as Kubernetes' `Quantity.Value()` does), e.g. bytes
    /// for a memory quantity; `None` if it does not fit an `i128`.
    pub fn value(&self) -> Option<i128> {
        let magnitude = if self.exponent >= 0 {
            self.mantissa
                .checked_mul(10u128.checked_pow(self.exponent.unsigned_abs())?)?
        } else {
            // Away from zero for positive values, toward zero for negative ones: rounding up.
            let divisor = 10u128.checked_pow(self.exponent.unsigned_abs());
            match divisor {
                Some(d) => {
                    self.mantissa / d
                        + u128::from(!self.negative && !self.mantissa.is_multiple_of(d))
                }
                None => u128::from(!self.negative && self.mantissa != 0),
            }
        };
        let magnitude = i128::try_from(magnitude).ok()?;
        Some(if self.negative { -magnitude } else { magnitude })
    }

    /// The number of decimal digits of the integer part of the magnitude, as an order of size
    /// that compares two normalised values without building them.
    fn order(&self) -> i64 {
        i64::from(digits(self.mantissa)) + i64::from(self.exponent)
    }
}

fn digits(n: u128) -> u32 {
    n.checked_ilog10().map_or(0, |d| d + 1)
}

fn compare_magnitudes(a: &Quantity, b: &Quantity) -> Ordering {
    match (a.mantissa, b.mantissa) {
        (0, 0) => return Ordering::Equal,
        (0, _) => return Ordering::Less,
        (_, 0) => return Ordering::Greater,
        _ => {}
    }
    a.order().cmp(&b.order()).then_with(|| {
        // Same order: scaling the one with the larger exponent down to the smaller exponent
        // gives at most as many digits as the other mantissa has, so it cannot overflow.
        let (low, high) = (a.exponent.min(b.exponent), a.exponent.max(b.exponent));
        let factor = 10u128.pow(high.abs_diff(low));
        let scale = |q: &Quantity| {
            if q.exponent == high {
                q.mantissa * factor
            } else {
                q.mantissa
            }
        };
        scale(a).cmp(&scale(b))
    })
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |q: &Quantity| q.negative && q.mantissa != 0;
        match (sign(self), sign(other)) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => compare_magnitudes(self, other),
            (true, true) => compare_magnitudes(other, self),
        }
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Quantity {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        parse(text).ok_or_else(|| ParseError(explain(text)))
    }
}

/// A message that names the value and, where it can guess, the fix.
fn explain(text: &str) -> String {
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let hint = [
        ("GB", "Gi"),
        ("MB", "Mi"),
        ("KB", "Ki"),
        ("TB", "Ti"),
        ("mb", "Mi"),
        ("gb", "Gi"),
    ]
    .iter()
    .find_map(|(bad, good)| {
        let fixed = format!("{}{good}", squeezed.strip_suffix(bad)?);
        parse(&fixed).map(|_| format!("; try \"{fixed}\""))
    })
    .unwrap_or_else(|| "; expected e.g. \"250m\", \"1\", \"512Mi\" or \"10Gi\"".to_owned());
    format!("\"{text}\" is not a Kubernetes quantity{hint}")
}

fn parse(text: &str) -> Option<Quantity> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let (binary_power, mut exponent) = parse_suffix(suffix)?;

    let all_digits = format!("{int}{frac}");
    let significant = all_digits.trim_start_matches('0').trim_end_matches('0');
    let trailing_zeros = all_digits.len() - all_digits.trim_end_matches('0').len();
    if significant.len() > MAX_DIGITS {
        return None;
    }
    let mut mantissa: u128 = if significant.is_empty() {
        0
    } else {
        significant.parse().ok()?
    };
    exponent += i32::try_from(trailing_zeros).ok()? - i32::try_from(frac.len()).ok()?;
    mantissa = mantissa.checked_mul(1u128 << binary_power)?;
    // Renormalise: the binary factor can add trailing decimal zeros (1.5Ki = 1536).
    while mantissa != 0 && mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exponent += 1;
    }
    if mantissa == 0 {
        exponent = 0;
    }
    Some(Quantity {
        text: text.to_owned(),
        negative,
        mantissa,
        exponent,
    })
}

/// Returns the power of two and the power of ten that the suffix multiplies by.
fn parse_suffix(suffix: &str) -> Option<(u32, i32)> {
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(power) = binary {
        return Some((power, 0));
    }
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(power) = decimal {
        return Some((0, power));
    }
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let power: i32 = exponent.parse().ok()?;
    (power.abs() <= MAX_EXPONENT).then_some((0, power))
}

#[cfg(feature = "serde")]
impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// A quantity is int-or-string, as the Kubernetes API takes it: `"2"`, `2` and `0.5` are all
/// quantities, so a values file may say `cpu: 2`. A number becomes its decimal text.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntOrString;

        impl serde::de::Visitor<'_> for IntOrString {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes quantity, as a string (\"1Gi\") or a number")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Quantity, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Quantity, E> {
                self.visit_str(&number.to_string())
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Quantity, E> {
                self.visit_str(&number.to_string())
            }

            fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<Quantity, E> {
                self.visit_str(&number.to_string())
            }
        }

        deserializer.deserialize_any(IntOrString)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // The pattern constrains strings only; numbers are quantities as they are. The format
        // (an annotation to validators) tells `mathison-host inspect` what the option is.
        schemars::json_schema!({ "type": ["string", "number"], "format": "quantity", "pattern": PATTERN })
    }
}

#[cfg(feature = "k8s-openapi")]
impl From<&Quantity> for k8s_openapi::apimachinery::pkg::api::resource::Quantity {
    fn from(q: &Quantity) -> Self {
        Self(q.text.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "serde")]
    #[test]
    fn numbers_are_quantities_as_the_api_takes_them() -> Result<(), serde_json::Error> {
        for (json, text) in [("2", "2"), ("0.5", "0.5"), ("-1", "-1"), ("\"1Gi\"", "1Gi")] {
            let quantity: Quantity = serde_json::from_str(json)?;
            assert_eq!(quantity.to_string(), text);
        }
        assert!(serde_json::from_str::<Quantity>("true").is_err());
        assert!(serde_json::from_str::<Quantity>("\"10 GB\"").is_err());
        Ok(())
    }

    fn q(text: &str) -> Quantity {
        text.parse()
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    #[test]
    fn accepts_the_kubernetes_grammar() {
        for text in [
            "0",
            "1",
            "250m",
            "1.5",
            ".5",
            "5.",
            "+1",
            "-1",
            "100n",
            "3u",
            "10k",
            "1M",
            "2G",
            "1T",
            "1P",
            "1E",
            "1Ki",
            "512Mi",
            "10Gi",
            "1Ti",
            "1Pi",
            "1Ei",
            "1e3",
            "1E3",
            "1e-3",
            "1.5e+2",
            "0.000000001",
        ] {
            q(text);
        }
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for text in [
            "", " ", "10 GB", "10GB", "10gi", "1K", "Gi", "1..2", "1.2.3", ".", "+", "1e", "1e+",
            "1i", "1KiB", "--1", "1e1.5", " 1", "1 ", "0x10", "1,5",
        ] {
            assert!(
                text.parse::<Quantity>().is_err(),
                "{text:?} should not parse"
            );
        }
    }

    #[test]
    fn compares_by_value() {
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("1024"), q("1Ki"));
        assert_eq!(q("1.5Ki"), q("1536"));
        assert_eq!(q("0"), q("-0"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("250m") < q("1"));
        assert!(q("512Mi") < q("1Gi"));
        assert!(q("999m") < q("1"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert!(q("1e-3") == q("1m"));
        assert!(q("0.1") > q("99m"));
        assert!(q("1Ei") > q("1E"));
    }

    #[test]
    fn rounds_up_to_an_integer_value() {
        assert_eq!(q("256Mi").value(), Some(268_435_456));
        assert_eq!(q("1G").value(), Some(1_000_000_000));
        assert_eq!(q("250m").value(), Some(1));
        assert_eq!(q("-250m").value(), Some(0));
        assert_eq!(q("1.5").value(), Some(2));
        assert_eq!(q("0").value(), Some(0));
        assert_eq!(q("1e-100").value(), Some(1));
        assert_eq!(q("1e100").value(), None);
    }

    #[test]
    fn keeps_the_text_and_knows_the_sign() {
        assert_eq!(q("10Gi").as_str(), "10Gi");
        assert!(q("1m").is_positive());
        assert!(!q("0").is_positive());
        assert!(!q("-1Gi").is_positive());
    }

    #[test]
    fn suggests_a_fix() {
        let err = "10 GB".parse::<Quantity>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("\"10 GB\" is not a Kubernetes quantity; try \"10Gi\"")
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const NANOS_PER_UNIT: i128 = 1_000_000_000;

    /// Suffixes with their value in nano-units.
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

    /// Whole units, rounded up, of a non-negative number of nano-units.
    fn units_rounded_up(nanos: i128) -> i128 {
        (nanos + NANOS_PER_UNIT - 1) / NANOS_PER_UNIT
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = text.parse::<Quantity>();
        }

        #[test]
        fn parse_never_panics_on_near_quantities(
            text in "[+-]?[0-9]{0,45}(\\.[0-9]{0,45})?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]{1,12})?[ .a-zA-Z]{0,2}"
        ) {
            let _ = text.parse::<Quantity>();
        }

        #[test]
        fn whole_numbers_with_a_suffix_have_their_value((n, suffix) in quantity()) {
            let (text, multiplier) = SUFFIXES[suffix];
            let parsed = format!("{n}{text}").parse::<Quantity>().map(|q| q.value());
            prop_assert_eq!(parsed, Ok(Some(units_rounded_up(i128::from(n) * multiplier))));
        }

        #[test]
        fn ordering_matches_suffix_arithmetic(a in quantity(), b in quantity()) {
            let text = |(n, suffix): (u32, usize)| format!("{n}{}", SUFFIXES[suffix].0);
            let value = |(n, suffix): (u32, usize)| i128::from(n) * SUFFIXES[suffix].1;
            match (text(a).parse::<Quantity>(), text(b).parse::<Quantity>()) {
                (Ok(left), Ok(right)) => {
                    prop_assert_eq!(left.cmp(&right), value(a).cmp(&value(b)));
                    let (neg_left, neg_right) = (format!("-{}", text(a)), format!("-{}", text(b)));
                    if let (Ok(nl), Ok(nr)) = (neg_left.parse::<Quantity>(), neg_right.parse::<Quantity>()) {
                        prop_assert_eq!(nl.cmp(&nr), value(b).cmp(&value(a)));
                    }
                }
                other => prop_assert!(false, "does not parse: {other:?}"),
            }
        }

        #[test]
        fn a_fraction_rounds_up_to_the_next_unit(whole in 0u32..1_000_000, fraction in "[0-9]{1,11}") {
            let value = format!("{whole}.{fraction}").parse::<Quantity>().map(|q| q.value());
            let round_up = i128::from(fraction.bytes().any(|b| b != b'0'));
            prop_assert_eq!(value, Ok(Some(i128::from(whole) + round_up)));
        }
    }
}
