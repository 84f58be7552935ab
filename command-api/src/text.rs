//! Text at the edge. Every string a request carries is parsed here before it goes anywhere:
//! valid Unicode (the JSON and query decoders see to that), no NUL and no control characters,
//! trimmed, bounded in characters.
//!
//! Two layers. The extractors walk every string of every body and query (`check_json`,
//! `check_pairs`) and refuse NUL and control characters other than tab and line breaks, naming
//! the field; so no field, typed or not, can carry a character PostgreSQL's `text` or `jsonb`
//! cannot store into an event or a read model. Then each field is a `Line` (one line, no tab) or
//! a `Paragraph` (line breaks and tabs allowed), which trims it and bounds its length.

use std::fmt;
use std::ops::Deref;

use domain::message::{Lang, Text};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest string any field may carry, whatever its type: the typed fields are shorter.
pub const MAX_ANY_STRING: usize = 20_000;

/// Why a string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFault {
    /// U+0000, which PostgreSQL's text and jsonb cannot hold.
    Nul,
    /// Another control character (C0, DEL or C1), or a line break or tab in a one-line field.
    Control(char),
    /// A bidirectional override or isolate, which can make text display other than it reads.
    Bidi(char),
    TooLong {
        max: usize,
    },
}

impl TextFault {
    /// What is wrong, in the message table's words.
    pub fn text(&self) -> Text {
        match self {
            TextFault::Nul => Text::new("text.nul"),
            TextFault::Control(character) => {
                Text::new("text.control").with("code", format!("{:04X}", *character as u32))
            }
            TextFault::Bidi(character) => {
                Text::new("text.bidi").with("code", format!("{:04X}", *character as u32))
            }
            TextFault::TooLong { max } => Text::new("text.too-long").with("max", max),
        }
    }
}

/// Both languages, `中文 / English`: a bounded type's deserialiser can hand serde one string
/// only, and the edge takes the half the request asks for (`extract::value_reason`).
impl fmt::Display for TextFault {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        write!(
            formatter,
            "{} / {}",
            text.render(Lang::Zh),
            text.render(Lang::En)
        )
    }
}

fn is_bidi_control(character: char) -> bool {
    matches!(character, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The check every string of a request passes, typed or not: no NUL, no control character but
/// tab and line breaks, no bidirectional override, at most `MAX_ANY_STRING` characters.
pub fn check_any(text: &str) -> Result<(), TextFault> {
    for character in text.chars() {
        match character {
            '\0' => return Err(TextFault::Nul),
            '\t' | '\n' | '\r' => {}
            other if other.is_control() => return Err(TextFault::Control(other)),
            other if is_bidi_control(other) => return Err(TextFault::Bidi(other)),
            _ => {}
        }
    }
    if text.len() > MAX_ANY_STRING && text.chars().count() > MAX_ANY_STRING {
        return Err(TextFault::TooLong {
            max: MAX_ANY_STRING,
        });
    }
    Ok(())
}

/// A refused string and where it was: `address.contact_name`, `items[2]`, `q`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFault {
    pub field: String,
    pub fault: TextFault,
}

/// Walks every string (and every object key) of a JSON document.
pub fn check_json(value: &serde_json::Value) -> Result<(), FieldFault> {
    let mut path = String::new();
    walk(value, &mut path)
}

fn walk(value: &serde_json::Value, path: &mut String) -> Result<(), FieldFault> {
    let fault_at = |path: &str, fault| FieldFault {
        field: if path.is_empty() {
            "(body)".to_owned()
        } else {
            path.to_owned()
        },
        fault,
    };
    match value {
        serde_json::Value::String(text) => check_any(text).map_err(|fault| fault_at(path, fault)),
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                walk(item, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        serde_json::Value::Object(members) => {
            for (key, member) in members {
                let length = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                // A key is shown only once it passed, so the path itself is clean text.
                check_any(key).map_err(|fault| fault_at(path, fault))?;
                path.push_str(key);
                walk(member, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks decoded query pairs (name and value).
pub fn check_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), FieldFault> {
    for (name, value) in pairs {
        check_any(name).map_err(|fault| FieldFault {
            field: "(query)".to_owned(),
            fault,
        })?;
        check_any(value).map_err(|fault| FieldFault {
            field: name.to_owned(),
            fault,
        })?;
    }
    Ok(())
}

fn check_line(text: &str, max: usize) -> Result<(), TextFault> {
    for character in text.chars() {
        match character {
            '\0' => return Err(TextFault::Nul),
            other if other.is_control() || matches!(other, '\u{2028}' | '\u{2029}') => {
                return Err(TextFault::Control(other))
            }
            other if is_bidi_control(other) => return Err(TextFault::Bidi(other)),
            _ => {}
        }
    }
    if text.chars().count() > max {
        return Err(TextFault::TooLong { max });
    }
    Ok(())
}

fn check_paragraph(text: &str, max: usize) -> Result<(), TextFault> {
    for character in text.chars() {
        match character {
            '\0' => return Err(TextFault::Nul),
            '\n' | '\t' => {}
            other if other.is_control() => return Err(TextFault::Control(other)),
            other if is_bidi_control(other) => return Err(TextFault::Bidi(other)),
            _ => {}
        }
    }
    if text.chars().count() > max {
        return Err(TextFault::TooLong { max });
    }
    Ok(())
}

/// One line of text of at most `MAX` characters, trimmed: names, labels, reasons, search terms.
/// It may be empty; whether a field is required is the domain's rule.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Line<const MAX: usize>(String);

/// Text that may span lines (notes, review text): line breaks (`\r\n` becomes `\n`) and tabs
/// allowed, no other control character, trimmed, at most `MAX` characters.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Paragraph<const MAX: usize>(String);

impl<const MAX: usize> Line<MAX> {
    pub fn parse(raw: &str) -> Result<Self, TextFault> {
        let trimmed = raw.trim();
        check_line(trimmed, MAX)?;
        Ok(Line(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> Paragraph<MAX> {
    pub fn parse(raw: &str) -> Result<Self, TextFault> {
        let normalised = raw.replace("\r\n", "\n").replace('\r', "\n");
        let trimmed = normalised.trim();
        check_paragraph(trimmed, MAX)?;
        Ok(Paragraph(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

macro_rules! text_type {
    ($name:ident, $multi_line:expr) => {
        impl<const MAX: usize> Deref for $name<MAX> {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl<const MAX: usize> AsRef<str> for $name<MAX> {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<const MAX: usize> fmt::Debug for $name<MAX> {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, formatter)
            }
        }

        impl<const MAX: usize> fmt::Display for $name<MAX> {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl<const MAX: usize> From<$name<MAX>> for String {
            fn from(text: $name<MAX>) -> String {
                text.0
            }
        }

        impl<const MAX: usize> PartialEq<str> for $name<MAX> {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl<const MAX: usize> PartialEq<&str> for $name<MAX> {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl<const MAX: usize> Serialize for $name<MAX> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de, const MAX: usize> Deserialize<'de> for $name<MAX> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl<const MAX: usize> utoipa::PartialSchema for $name<MAX> {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let description = if $multi_line {
                    "Text; line breaks allowed, no other control characters; trimmed."
                } else {
                    "One line of text, no control characters; trimmed."
                };
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .max_length(Some(MAX))
                    .description(Some(description))
                    .into()
            }
        }

        /// Each bound is a schema of its own (`Line40`, `Paragraph500`), so the document states
        /// every field's limit.
        impl<const MAX: usize> utoipa::ToSchema for $name<MAX> {
            fn name() -> std::borrow::Cow<'static, str> {
                format!("{}{MAX}", stringify!($name)).into()
            }
        }

        impl<const MAX: usize> sqlx::Type<sqlx::Postgres> for $name<MAX> {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'q, const MAX: usize> sqlx::Encode<'q, sqlx::Postgres> for $name<MAX> {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Postgres>>::encode(self.0.as_str(), buf)
            }
        }
    };
}

text_type!(Line, false);
text_type!(Paragraph, true);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_of_a_body_is_checked_and_the_field_named() {
        let cases = [
            (r#"{"name": "a\u0000b"}"#, "name", TextFault::Nul),
            (
                r#"{"address": {"contact_name": "测\u0000试"}}"#,
                "address.contact_name",
                TextFault::Nul,
            ),
            (
                r#"{"skills": ["ok", "bad\u0019"]}"#,
                "skills[1]",
                TextFault::Control('\u{19}'),
            ),
            (
                r#"{"note": "x\u202Ey"}"#,
                "note",
                TextFault::Bidi('\u{202E}'),
            ),
            (r#""\u0007""#, "(body)", TextFault::Control('\u{7}')),
        ];
        for (body, field, fault) in cases {
            let value: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(
                check_json(&value),
                Err(FieldFault {
                    field: field.to_owned(),
                    fault
                }),
                "{body}"
            );
        }
        let clean: serde_json::Value =
            serde_json::from_str(r#"{"note": "第一行\n第二行\t完", "n": 3}"#).unwrap();
        assert_eq!(check_json(&clean), Ok(()));
    }

    #[test]
    fn a_line_is_trimmed_bounded_and_single() {
        assert_eq!(Line::<5>::parse("  张三  ").unwrap().as_str(), "张三");
        assert_eq!(Line::<5>::parse("").unwrap().as_str(), "");
        assert_eq!(
            Line::<2>::parse("张三丰"),
            Err(TextFault::TooLong { max: 2 })
        );
        assert_eq!(Line::<20>::parse("a\nb"), Err(TextFault::Control('\n')));
        assert_eq!(Line::<20>::parse("a\tb"), Err(TextFault::Control('\t')));
        assert_eq!(
            Line::<20>::parse("a\u{85}b"),
            Err(TextFault::Control('\u{85}'))
        );
        assert_eq!(
            Line::<20>::parse("a\u{2028}b"),
            Err(TextFault::Control('\u{2028}'))
        );
    }

    #[test]
    fn a_paragraph_keeps_its_lines_and_normalises_carriage_returns() {
        assert_eq!(
            Paragraph::<50>::parse(" 第一行\r\n第二行\r第三行\t \n")
                .unwrap()
                .as_str(),
            "第一行\n第二行\n第三行"
        );
        assert_eq!(Paragraph::<50>::parse("a\u{0}b"), Err(TextFault::Nul));
        assert_eq!(
            Paragraph::<3>::parse("一二三四"),
            Err(TextFault::TooLong { max: 3 })
        );
    }

    #[test]
    fn a_typed_field_refuses_through_serde_with_its_reason() {
        #[derive(Deserialize)]
        struct Body {
            #[allow(dead_code)]
            name: Line<4>,
        }
        let error = serde_json::from_str::<Body>(r#"{"name": "abcdef"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("longer than 4 characters"), "{error}");
    }
}
