//! Text a plugin chose, made safe to show.
//!
//! A plugin's log lines, messages, names and descriptions reach the user's terminal. Control
//! characters in them could move the cursor, recolour or clear the screen, rewrite a line
//! (carriage return), or start a line that looks like the host's own `error:` or `note:`
//! (newline). Every such character is shown as an escape instead, so plugin text always stays
//! inside the line the host put it on.

use std::borrow::Cow;
use std::fmt;

/// `text` with every character that could act on a terminal written as an escape: C0
/// controls (newline, carriage return and escape among them), DEL, C1 controls, the Unicode
/// line and paragraph separators, and the bidirectional overrides that reorder what is shown.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts_on_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if acts_on_terminal(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text (as serde_json writes it) with the characters that act on a terminal written as
/// `\uXXXX` escapes: the same JSON value, safe to show. serde_json escapes C0 controls inside
/// strings itself (a raw newline is the layout's) but writes DEL, C1 controls, the line
/// separators and the bidirectional overrides as they are.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    let needs = |c: char| c != '\n' && acts_on_terminal(c);
    if !json.chars().any(needs) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c` could act on a terminal, and so is shown escaped.
pub fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The most characters of one piece of plugin text an error message shows: a plugin can make
/// a key or a name megabytes long, and a message is read by a person.
pub const SHOWN_CHARS: usize = 200;

/// Shows untrusted text escaped and shortened to [`SHOWN_CHARS`], for `format!` and error
/// messages: as it is with `{}`, quoted with `{:?}`.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(SHOWN_CHARS) {
            None => f.write_str(&escape(self.0)),
            Some((cut, _)) => write!(
                f,
                "{}... ({} more bytes)",
                escape(&self.0[..cut]),
                self.0.len() - cut
            ),
        }
    }
}

/// [`Escaped`] as a string.
pub fn shown(text: &str) -> String {
    Escaped(text).to_string()
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(escape("postgres: ready ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn long_text_is_shortened_for_messages() {
        let long = "K".repeat(SHOWN_CHARS + 100);
        assert_eq!(
            shown(&long),
            format!("{}... (100 more bytes)", "K".repeat(SHOWN_CHARS))
        );
        assert_eq!(shown("short\n"), "short\\n");
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(
            escape("a\nerror: fake\r\x1b[2J\u{9b}31m\u{7f}\u{202e}"),
            "a\\nerror: fake\\r\\u{1b}[2J\\u{9b}31m\\u{7f}\\u{202e}"
        );
    }

    #[test]
    fn json_keeps_its_value_and_loses_its_controls() -> Result<(), serde_json::Error> {
        let value = serde_json::json!({"a\u{9b}": "b\u{7f}\u{202e}\u{1b}\n"});
        let text = serde_json::to_string_pretty(&value)?;
        let shown = escape_json(&text);
        assert!(
            !shown.contains(['\u{9b}', '\u{7f}', '\u{202e}', '\u{1b}']),
            "{shown}"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&shown)?, value);
        Ok(())
    }

    proptest! {
        #[test]
        fn escaped_text_has_no_control_characters(text in any::<String>()) {
            let shown = escape(&text);
            prop_assert!(!shown.chars().any(acts_on_terminal), "{shown:?}");
        }
    }
}
