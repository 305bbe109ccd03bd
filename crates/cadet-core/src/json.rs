//! JSON from files people download (checkpoints' settings, calibrations, safetensors headers): a key given
//! twice is refused. serde keeps the last of two equal keys of a map without a word, so a crafted file could show
//! one value to a reader that takes the first and another to this one.
//!
//! ```
//! use cadet_core::json::unique_keys;
//!
//! assert!(unique_keys(br#"{"a": 1, "b": {"c": [1, {"d": 2}]}}"#).is_ok());
//! let e = unique_keys(br#"{"a": {"t": 0.5, "t": 5}}"#).unwrap_err();
//! assert!(e.contains("`a.t`"), "{e}");
//! ```

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A byte-order mark, which some editors put at the start of a file they save, and JSON does not allow.
const BOM: &str = "\u{feff}";
const BOM_MESSAGE: &str = "the text starts with a byte-order mark (EF BB BF), which JSON does not allow: save it as UTF-8 without one";

/// Checks that no object in the JSON text `bytes` holds a key twice, at any depth: `Err` names the first
/// repeated key by its path (`train.temperature`, `reference.mu[3]`), or says why the text is not JSON.
pub fn unique_keys(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(BOM.as_bytes()) {
        return Err(BOM_MESSAGE.into());
    }
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    Unique {
        path: String::new(),
    }
    .deserialize(&mut reader)
    .and_then(|()| reader.end())
    .map_err(|e| e.to_string())
}

/// A JSON error with the text around where it happened, so that a message such as "trailing characters at
/// line 34 column 7" or "invalid type: unit variant" shows the field it is about (files written on one line
/// included: some 40 characters before the place and 20 after, whitespace runs shown as one space).
///
/// ```
/// let text = r#"{"mean": [0.4, 0.5, 0.6, 0.7]}"#;
/// let e = serde_json::from_str::<std::collections::BTreeMap<String, [f32; 3]>>(text).unwrap_err();
/// let shown = cadet_core::json::with_context(&e, text);
/// assert!(shown.contains("0.7"), "{shown}");
/// ```
pub fn with_context(error: &serde_json::Error, text: &str) -> String {
    if text.starts_with(BOM) {
        return format!("{error}: {BOM_MESSAGE}");
    }
    let (line, column) = (error.line(), error.column());
    if line == 0 {
        return error.to_string();
    }
    // The error's place as a char index into the whole text (lines and columns count from 1).
    let before: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(|l| l.chars().count())
        .sum();
    let chars: Vec<char> = text.chars().collect();
    let at = (before + column.saturating_sub(1)).min(chars.len());
    // Pretty-printed files put one value per line: the excerpt spans lines, whitespace runs shown as one space.
    let (from, to) = (at.saturating_sub(40), (at + 20).min(chars.len()));
    let excerpt = chars[from..to]
        .iter()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{error}, near `{}{excerpt}{}`",
        if from > 0 { "…" } else { "" },
        if to < chars.len() { "…" } else { "" }
    )
}

/// A visitor that reads any JSON value, keeping only the keys of each object to compare them.
struct Unique {
    path: String,
}

impl Unique {
    fn at(&self, key: &str) -> Self {
        Self {
            path: if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }
}

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(Unique {
                path: format!("{}[{i}]", self.path),
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let inner = self.at(&key);
            if !seen.insert(key) {
                return Err(de::Error::custom(format!(
                    "the key `{}` appears twice (which one counts is not defined)",
                    inner.path
                )));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{unique_keys, with_context};

    /// A file saved with a byte-order mark said "expected value at line 1 column 1" (hostile pass 13).
    #[test]
    fn a_byte_order_mark_is_named() {
        let text = "\u{feff}{\"n_trs\": 4}";
        assert!(
            unique_keys(text.as_bytes())
                .unwrap_err()
                .contains("byte-order mark")
        );
        let e = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
        assert!(with_context(&e, text).contains("byte-order mark"));
    }

    #[test]
    fn repeated_keys_are_found_at_any_depth_and_named() {
        assert!(unique_keys(b"[]").is_ok());
        assert!(unique_keys(br#"{"a": [{"b": 1}, {"b": 2}]}"#).is_ok());
        for (text, path) in [
            (r#"{"a": 1, "a": 1}"#, "`a`"),
            (r#"{"x": [0, {"k": 1, "k": 2}]}"#, "`x[1].k`"),
            (
                r#"{"__metadata__": {"arch": "r50", "arch": "r18"}}"#,
                "`__metadata__.arch`",
            ),
        ] {
            let e = unique_keys(text.as_bytes()).unwrap_err();
            assert!(e.contains(path), "{text}: {e}");
        }
        // Not JSON at all, or JSON followed by more text, is an error too.
        assert!(unique_keys(b"{\"a\": ").is_err());
        assert!(unique_keys(b"{} {}").is_err());
    }
}
