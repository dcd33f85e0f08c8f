//! The one text form of names and paths that come from the watched system.
//!
//! A path or process name is bytes chosen by whoever made it: it may hold
//! spaces, newlines, form feeds, terminal escapes or invalid UTF-8. chids
//! writes such values into space-separated `.sc` lines, JSON alerts and the
//! terminal, and compares them with the baseline. One escaped form serves
//! all of these: every byte that is whitespace, a control character, a
//! backslash or not valid UTF-8 becomes `\xNN`; everything else is kept.
//! The result is one token (no whitespace), prints safely, and says
//! exactly which bytes were there. Text readers take tokens as they are:
//! a `.sc` file chids wrote already holds escaped values, so a recording
//! reads back to the same values live capture saw.

use std::fmt::Write as _;

/// Appends `bytes` to `out` in escaped form.
pub fn push_escaped(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if needs_escape(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// `bytes` in escaped form.
pub fn escaped(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    push_escaped(&mut s, bytes);
    s
}

/// `text` in escaped form, borrowed when nothing needed escaping.
pub(crate) fn escaped_str(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(needs_escape) {
        std::borrow::Cow::Owned(escaped(text.as_bytes()))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_kept() {
        assert_eq!(escaped(b"/etc/passwd"), "/etc/passwd");
        assert_eq!(escaped("/tmp/caf\u{e9}".as_bytes()), "/tmp/caf\u{e9}");
    }

    #[test]
    fn whitespace_controls_backslash_and_bad_utf8_are_escaped() {
        assert_eq!(
            escaped(b"/tmp/seen/ /../etc/shadow"),
            "/tmp/seen/\\x20/../etc/shadow"
        );
        assert_eq!(escaped(b"a\x0cb\nc\td\\e"), "a\\x0cb\\x0ac\\x09d\\x5ce");
        assert_eq!(escaped(b"x\xff\xfey"), "x\\xff\\xfey");
        // A C1 control and a Unicode line separator: bytes of the character.
        assert_eq!(escaped("a\u{85}b".as_bytes()), "a\\xc2\\x85b");
        assert_eq!(escaped("a\u{2028}b".as_bytes()), "a\\xe2\\x80\\xa8b");
    }

    #[test]
    fn escaped_text_is_one_token_and_stable() {
        let hostile = b"name=/etc/shadow \x1b[2J\r\n\x00";
        let once = escaped(hostile);
        assert_eq!(once.split_ascii_whitespace().count(), 1);
        assert!(!once.chars().any(char::is_whitespace));
        assert!(!once.chars().any(|c| c.is_control()));
    }
}
