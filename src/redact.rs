//! E-mail redaction for rejected records' `raw`, done on the decoded text.
//!
//! A JSON line can spell an address with escapes (`pedro\u002Ebarros\u0040acme.com`) that a
//! pattern on the bytes never sees, and local parts may contain an apostrophe (`o'brien@`). The
//! raw text is decoded first (a JSON document is parsed and every string redacted; other text has
//! its `\uXXXX` escapes decoded), then every address is replaced by `[email:PSEUDONYM]`.

use serde_json::Value;

/// Redacts every e-mail address in a reject's raw text, after decoding JSON escapes.
///
/// ```
/// let r = pulso::redact::redact_raw(r#"{"from":"pedro\u002Ebarros\u0040acme.com"}"#, None);
/// assert_eq!(r, r#"{"from":"[email]"}"#);
/// ```
pub fn redact_raw(raw: &str, key: Option<&[u8]>) -> String {
    if raw.contains('\\') {
        let t = raw.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            if let Ok(mut v) = serde_json::from_str::<Value>(raw) {
                redact_value(&mut v, key);
                return v.to_string();
            }
        }
        if raw.contains("\\u") || raw.contains("\\U") {
            return redact_emails(&decode_u_escapes(raw), key);
        }
    }
    redact_emails(raw, key)
}

fn redact_value(v: &mut Value, key: Option<&[u8]>) {
    match v {
        Value::String(s) if s.contains('@') => *s = redact_emails(s, key),
        Value::Array(a) => a.iter_mut().for_each(|x| redact_value(x, key)),
        Value::Object(m) => m.values_mut().for_each(|x| redact_value(x, key)),
        _ => {}
    }
}

/// `\uXXXX` (and surrogate pairs) decoded; anything else left as written.
fn decode_u_escapes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let hex4 = |j: usize| -> Option<u32> {
        let h = s.get(j..j + 4)?;
        u32::from_str_radix(h, 16).ok()
    };
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && (b[i + 1] == b'u' || b[i + 1] == b'U') {
            if let Some(hi) = hex4(i + 2) {
                if (0xD800..0xDC00).contains(&hi) && s.get(i + 6..i + 8) == Some("\\u") {
                    if let Some(lo) = hex4(i + 8).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        if let Some(ch) = char::from_u32(c) {
                            out.push(ch);
                            i += 12;
                            continue;
                        }
                    }
                }
                if let Some(ch) = char::from_u32(hi) {
                    out.push(ch);
                    i += 6;
                    continue;
                }
            }
        }
        // Copy one UTF-8 character.
        let ch = s[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Replaces every e-mail address in `raw` with `[email:PSEUDONYM]` (or `[email]` without a key).
/// The local part may hold any RFC 5322 atom character, the apostrophe included.
pub fn redact_emails(raw: &str, key: Option<&[u8]>) -> String {
    if !raw.contains('@') {
        return raw.to_string();
    }
    let is_local = |c: char| c.is_alphanumeric() || "._%+-'!#$&*/=?^`{|}~".contains(c);
    let is_domain = |c: char| c.is_alphanumeric() || ".-".contains(c);
    let chars: Vec<(usize, char)> = raw.char_indices().collect();
    let mut out = String::with_capacity(raw.len());
    let mut last = 0usize;
    for (k, &(at, c)) in chars.iter().enumerate() {
        if c != '@' || at < last {
            continue;
        }
        let mut start = k;
        while start > 0 && is_local(chars[start - 1].1) && chars[start - 1].0 >= last {
            start -= 1;
        }
        // A quote or dot opening the local part belongs to the text around it.
        while start < k && matches!(chars[start].1, '\'' | '.' | '`') {
            start += 1;
        }
        let mut end = k + 1;
        while end < chars.len() && is_domain(chars[end].1) {
            end += 1;
        }
        let domain: String = chars[k + 1..end].iter().map(|x| x.1).collect();
        let domain = domain.trim_end_matches(['.', '-']);
        if start == k || !domain.contains('.') {
            continue;
        }
        let b = chars[start].0;
        let e = chars[k + 1].0 + domain.len();
        let addr = &raw[b..e];
        out.push_str(&raw[last..b]);
        match key {
            Some(k) => out.push_str(&format!("[email:{}]", crate::enrich::pseudonymize(k, addr))),
            None => out.push_str("[email]"),
        }
        last = e;
    }
    out.push_str(&raw[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_apostrophes() {
        let k = Some(b"k".as_slice());
        let want = format!(
            "[email:{}]",
            crate::enrich::pseudonymize(b"k", "pedro.barros@acme.com")
        );
        let r = redact_raw(r#"{"a":"pedro\u002Ebarros\u0040acme.com","t":"x"}"#, k);
        assert_eq!(r, format!(r#"{{"a":"{want}","t":"x"}}"#));
        // Not valid JSON: the escapes are decoded in place.
        let r = redact_raw(r#"{"a":"pedro\u002Ebarros\u0040acme.com", broken"#, k);
        assert!(r.contains(&want) && !r.contains("acme"), "{r}");
        let r = redact_raw(r#"{"a":"jo\u00e3o@acme.com"}"#, None);
        assert_eq!(r, r#"{"a":"[email]"}"#);
        assert_eq!(redact_raw("o'brien@acme.com said", None), "[email] said");
        assert_eq!(redact_raw("'ana@acme.com'", None), "'[email]'");
        assert_eq!(
            redact_raw("r9,Ana <ana.s@acme.com>,oops", None),
            "r9,Ana <[email]>,oops"
        );
    }
}
