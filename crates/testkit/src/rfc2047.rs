//! Decoding of RFC 2047 encoded words in header values, so that a test can
//! compare a subject such as `=?utf-8?b?Q2Fmw6k=?=` with the text `Café` it
//! was built from. Only what mail clients, lettre among them, produce:
//! UTF-8, US-ASCII and ISO-8859-1, in the B and Q encodings. Anything else is
//! left as it was written.

use base64::Engine as _;

/// Decodes the encoded words in `value`; whitespace between two adjacent
/// encoded words is dropped, as the RFC says.
pub(crate) fn decode(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    // Bytes of adjacent UTF-8 words are joined before decoding, in case a
    // character was split between two words.
    let mut pending: Vec<u8> = Vec::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        match word(candidate) {
            Some((charset, bytes, used)) => {
                let only_space = before.chars().all(|c| c == ' ' || c == '\t');
                if !(after_word && only_space) {
                    flush(&mut pending, &mut out);
                    out.push_str(before);
                }
                match charset {
                    Charset::Utf8 => pending.extend_from_slice(&bytes),
                    Charset::Latin1 => {
                        flush(&mut pending, &mut out);
                        out.extend(bytes.iter().map(|&b| char::from(b)));
                    }
                }
                rest = &candidate[used..];
                after_word = true;
            }
            None => {
                flush(&mut pending, &mut out);
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    flush(&mut pending, &mut out);
    out.push_str(rest);
    out
}

enum Charset {
    Utf8,
    Latin1,
}

fn flush(pending: &mut Vec<u8>, out: &mut String) {
    if !pending.is_empty() {
        out.push_str(&String::from_utf8_lossy(pending));
        pending.clear();
    }
}

/// Parses one `=?charset?enc?text?=` at the start of `s`: its charset, its
/// decoded bytes and how many bytes of `s` it took.
fn word(s: &str) -> Option<(Charset, Vec<u8>, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if text.contains(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    // RFC 2231 allows a language after the charset: `utf-8*en`.
    let charset = charset.split('*').next().unwrap_or_default();
    let charset =
        if charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii") {
            Charset::Utf8
        } else if charset.eq_ignore_ascii_case("iso-8859-1") {
            Charset::Latin1
        } else {
            return None;
        };
    let bytes = if encoding.eq_ignore_ascii_case("b") {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .ok()?
    } else if encoding.eq_ignore_ascii_case("q") {
        q_decode(text)?
    } else {
        return None;
    };
    // `rest` is a suffix of `s`: what was used is what lies before it, and the text and `?=`.
    let used = s.len() - rest.len() + end + 2;
    Some((charset, bytes, used))
}

fn q_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'_' => out.push(b' '),
            b'=' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn plain_text_is_left_alone() {
        assert_eq!(
            decode("[Acme] Investigating: <errors>"),
            "[Acme] Investigating: <errors>"
        );
        assert_eq!(decode("a =? b"), "a =? b");
    }

    #[test]
    fn b_and_q_words_decode_and_the_space_between_words_goes() {
        assert_eq!(decode("=?utf-8?b?Q2Fmw6k=?="), "Café");
        assert_eq!(
            decode("Test with utf-8 =?utf-8?b?w6s=?="),
            "Test with utf-8 ë"
        );
        assert_eq!(
            decode("=?UTF-8?Q?Caf=C3=A9_ouvert?= now"),
            "Café ouvert now"
        );
        assert_eq!(decode("=?utf-8?b?Q2Fm?= =?utf-8?b?w6k=?="), "Café");
        assert_eq!(decode("=?iso-8859-1?q?caf=E9?="), "café");
    }

    #[test]
    fn a_character_split_between_two_words_is_joined() {
        // "é" is C3 A9; each word carries one of its bytes.
        assert_eq!(decode("=?utf-8?q?=C3?= =?utf-8?q?=A9?="), "é");
    }

    #[test]
    fn unknown_charsets_and_broken_words_stay_as_written() {
        assert_eq!(decode("=?koi8-r?b?0KI=?="), "=?koi8-r?b?0KI=?=");
        assert_eq!(decode("=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
        assert_eq!(decode("=?utf-8?q?=ZZ?="), "=?utf-8?q?=ZZ?=");
    }
}
