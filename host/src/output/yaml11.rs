//! What a YAML 1.1 reader (kubectl's go-yaml v2, PyYAML) takes for something other than a
//! string when it is written plain, so that the YAML writer can quote exactly those strings.

use std::iter::Peekable;

/// Whether a YAML 1.1 reader would read `text`, written as a plain scalar, as anything but this
/// string: the implicit types of the YAML 1.1 type repository (yaml.org/type: bool, int, float,
/// null, timestamp, merge, value), as PyYAML's resolver spells them, widened to what kubectl's
/// go-yaml v2 also reads (`y`/`n`, `_` anywhere in a number, `0X`/`0O`/`0B` prefixes, one-digit
/// date and time fields). Matching too much costs only two quotes; matching too little
/// changes the manifest. Hand-written rather than with the `regex` crate, which the host does
/// not depend on: the patterns are short, and a string not starting with a digit, sign or dot
/// costs one `match`.
pub fn reads_as_non_string(text: &str) -> bool {
    match text {
        "" | "~" | "null" | "Null" | "NULL" | "<<" | "=" | "y" | "Y" | "yes" | "Yes" | "YES"
        | "n" | "N" | "no" | "No" | "NO" | "true" | "True" | "TRUE" | "false" | "False"
        | "FALSE" | "on" | "On" | "ON" | "off" | "Off" | "OFF" => true,
        _ => {
            text.starts_with(|c: char| matches!(c, '-' | '+' | '.' | '0'..='9'))
                && (is_number(text) || is_timestamp(text))
        }
    }
}

/// int.html and float.html: binary, octal, decimal, hexadecimal and base 60 integers; decimal
/// and base 60 floats, `.inf` and `.nan`.
fn is_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(
        unsigned,
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN"
    ) {
        return true;
    }
    // go-yaml removes every `_` before parsing a number; PyYAML allows one wherever a digit may
    // follow. So the digits alone are matched.
    let mut rest = unsigned.bytes().filter(|&b| b != b'_').peekable();
    let mut ahead = rest.clone();
    let radix_digit: Option<fn(&u8) -> bool> = match (ahead.next(), ahead.next()) {
        (Some(b'0'), Some(b'b' | b'B')) => Some(|c| matches!(c, b'0' | b'1')),
        (Some(b'0'), Some(b'o' | b'O')) => Some(|c| matches!(c, b'0'..=b'7')),
        (Some(b'0'), Some(b'x' | b'X')) => Some(u8::is_ascii_hexdigit),
        _ => None,
    };
    if let Some(digit) = radix_digit {
        // `0b` alone is a string; `0b_` is a number to PyYAML.
        return unsigned.len() > 2 && ahead.all(|c| digit(&c));
    }
    let integer = skip(&mut rest, u8::is_ascii_digit);
    if integer > 0 && rest.peek() == Some(&b':') {
        // Base 60: 1:20, 190:20:30, 1:20.5; each field [0-5]?[0-9].
        while rest.next_if_eq(&b':').is_some() {
            match rest.next_if(u8::is_ascii_digit) {
                Some(first) if first <= b'5' => {
                    rest.next_if(u8::is_ascii_digit);
                }
                Some(_) => {}
                None => return false,
            }
        }
        if rest.next_if_eq(&b'.').is_some() {
            skip(&mut rest, u8::is_ascii_digit);
        }
        return rest.peek().is_none();
    }
    let fraction = rest.next_if_eq(&b'.').is_some();
    if fraction {
        skip(&mut rest, u8::is_ascii_digit);
    }
    if integer == 0 && !fraction {
        return false;
    }
    if rest.next_if(|&c| c == b'e' || c == b'E').is_some() {
        rest.next_if(|&c| c == b'-' || c == b'+');
        if skip(&mut rest, u8::is_ascii_digit) == 0 {
            return false;
        }
    }
    rest.peek().is_none()
}

/// timestamp.html: `2001-12-14`, `2001-12-14t21:59:43.10-05:00`, `2001-12-14 21:59:43.10 -5`.
fn is_timestamp(text: &str) -> bool {
    let mut rest = text.bytes().peekable();
    let date = number(&mut rest, 4, 4)
        && rest.next_if_eq(&b'-').is_some()
        && number(&mut rest, 1, 2)
        && rest.next_if_eq(&b'-').is_some()
        && number(&mut rest, 1, 2);
    if !date {
        return false;
    }
    if rest.peek().is_none() {
        return true;
    }
    let separator = rest.next_if(|&c| c == b'T' || c == b't').is_some()
        || skip(&mut rest, |&c| c == b' ' || c == b'\t') > 0;
    let time = separator
        && number(&mut rest, 1, 2)
        && rest.next_if_eq(&b':').is_some()
        && number(&mut rest, 1, 2)
        && rest.next_if_eq(&b':').is_some()
        && number(&mut rest, 1, 2);
    if !time {
        return false;
    }
    if rest.next_if_eq(&b'.').is_some() {
        skip(&mut rest, u8::is_ascii_digit);
    }
    skip(&mut rest, |&c| c == b' ' || c == b'\t');
    if rest.next_if_eq(&b'Z').is_none() && rest.next_if(|&c| c == b'-' || c == b'+').is_some() {
        if !number(&mut rest, 1, 2) {
            return false;
        }
        if rest.next_if_eq(&b':').is_some() && !number(&mut rest, 2, 2) {
            return false;
        }
    }
    rest.peek().is_none()
}

/// Consumes `min` to `max` digits at the front of `rest`; whether there were at least `min`.
fn number(rest: &mut Peekable<impl Iterator<Item = u8>>, min: usize, max: usize) -> bool {
    let mut count = 0;
    while count < max && rest.next_if(u8::is_ascii_digit).is_some() {
        count += 1;
    }
    count >= min
}

/// Consumes the bytes in `class` at the front of `rest`; returns how many.
fn skip(rest: &mut Peekable<impl Iterator<Item = u8>>, class: impl Fn(&u8) -> bool) -> usize {
    let mut count = 0;
    while rest.next_if(&class).is_some() {
        count += 1;
    }
    count
}
