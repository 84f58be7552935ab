//! What the platform tells people, in the language they ask for: Simplified Chinese first,
//! English second.
//!
//! A refusal is a `Text`: a stable code (`order.illegal-transition`, `bad-credentials`) that
//! apps may switch on to show their own words, and the values its words name. The words are
//! kept once, in `TABLE` (`message/table.rs`), by code, with `{name}` placeholders, in
//! Simplified Chinese and English; a text is written out in the language a reader asks for.
//! Domain errors say which text they are through `Explain`.

use std::borrow::Cow;
use std::fmt;

mod table;

pub use self::table::TABLE;

/// A language a text is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Simplified Chinese, the default.
    #[default]
    Zh,
    En,
}

impl Lang {
    /// The language an `Accept-Language` value asks for: of the tags naming Chinese or English,
    /// the one with the highest weight (the first on a tie); Chinese when it names neither.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let Some(value) = accept_language else {
            return Lang::Zh;
        };
        let mut best: Option<(f32, Lang)> = None;
        for range in value.split(',') {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let weight = parts
                .find_map(|parameter| parameter.trim().strip_prefix("q="))
                .and_then(|weight| weight.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            let lang = match primary {
                "zh" => Lang::Zh,
                "en" => Lang::En,
                _ => continue,
            };
            if weight > 0.0 && best.is_none_or(|(best, _)| weight > best) {
                best = Some((weight, lang));
            }
        }
        best.map_or(Lang::Zh, |(_, lang)| lang)
    }

    /// The half of a text written `中文 / English` in this language; the whole text when it has
    /// no halves. The halves meet at the first slash that has a space after it and English
    /// after that (the Chinese half may end in its own full stop, with no space before it).
    /// For texts that arrive as one string from outside the table: a bounded type's refusal
    /// passed through serde, data written in both languages before the table.
    pub fn pick(self, text: &str) -> &str {
        let Some((chinese, english)) = halves(text) else {
            return text;
        };
        match self {
            Lang::Zh => chinese,
            Lang::En => english,
        }
    }
}

fn halves(text: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(offset) = text[from..].find('/') {
        let slash = from + offset;
        let after = &text[slash + 1..];
        let english = after.trim_start();
        let spaced = english.len() < after.len();
        let starts_english = english
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric() || "\"'(`<".contains(first));
        if spaced && starts_english {
            return Some((text[..slash].trim_end(), english.trim_end()));
        }
        from = slash + 1;
    }
    None
}

/// One text of the table, by its stable code.
#[derive(Debug)]
pub struct Entry {
    pub code: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
}

/// A value a text names: the same in both languages, one of its own in each, or a text.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Plain(String),
    Each { zh: String, en: String },
    Text(Text),
}

/// What to tell someone: a code of the table and the values its words name.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub code: &'static str,
    pub args: Vec<(&'static str, Arg)>,
}

impl Text {
    pub fn new(code: &'static str) -> Self {
        Text {
            code,
            args: Vec::new(),
        }
    }

    /// Names `value`, the same in both languages (a number, an amount, a name).
    pub fn with(mut self, name: &'static str, value: impl fmt::Display) -> Self {
        self.args.push((name, Arg::Plain(value.to_string())));
        self
    }

    /// Names a value that has words of its own in each language (a state, a verb).
    pub fn each(
        mut self,
        name: &'static str,
        zh: impl fmt::Display,
        en: impl fmt::Display,
    ) -> Self {
        self.args.push((
            name,
            Arg::Each {
                zh: zh.to_string(),
                en: en.to_string(),
            },
        ));
        self
    }

    /// Names another text (a reason inside a refusal).
    pub fn nested(mut self, name: &'static str, text: Text) -> Self {
        self.args.push((name, Arg::Text(text)));
        self
    }

    /// The words in `lang`, placeholders filled. A code missing from the table (a test keeps
    /// that from happening) shows as itself.
    pub fn render(&self, lang: Lang) -> String {
        let Some(entry) = TABLE.iter().find(|entry| entry.code == self.code) else {
            return self.code.to_owned();
        };
        let mut text = match lang {
            Lang::Zh => entry.zh,
            Lang::En => entry.en,
        }
        .to_owned();
        for (name, arg) in &self.args {
            let value = match arg {
                Arg::Plain(value) => Cow::Borrowed(value.as_str()),
                Arg::Each { zh, en } => Cow::Borrowed(match lang {
                    Lang::Zh => zh.as_str(),
                    Lang::En => en.as_str(),
                }),
                Arg::Text(text) => Cow::Owned(text.render(lang)),
            };
            text = text.replace(&format!("{{{name}}}"), &value);
        }
        text
    }
}

/// In English, as logs read it.
impl fmt::Display for Text {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.render(Lang::En))
    }
}

/// A refusal that says which text of the table it is.
pub trait Explain {
    fn text(&self) -> Text;
}

/// `Display` (in English, for logs) and `Error` for a refusal that explains itself.
macro_rules! explained {
    ($type:ty) => {
        impl std::fmt::Display for $type {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&$crate::message::Explain::text(self), formatter)
            }
        }

        impl std::error::Error for $type {}
    };
}
pub(crate) use explained;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_weightiest_of_chinese_and_english() {
        assert_eq!(Lang::negotiate(None), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("en")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("fr, en;q=0.5, zh;q=0.7")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("zh;q=0, en;q=0.1")), Lang::En);
        assert_eq!(Lang::negotiate(Some("de, fr;q=0.9")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("*")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("EN-gb;q=0.8, ja")), Lang::En);
    }

    #[test]
    fn a_bilingual_text_is_cut_at_its_first_slash_before_english() {
        let text = "订单已支付，不能取消 / cannot cancel an order that is paid";
        assert_eq!(Lang::Zh.pick(text), "订单已支付，不能取消");
        assert_eq!(Lang::En.pick(text), "cannot cancel an order that is paid");
        // A Chinese half that ends in its own full stop, and an English half with a slash.
        let text = "不在签到时间内（服务开始前 30 分钟至服务结束）/ check-in is open 24/7";
        assert_eq!(
            Lang::Zh.pick(text),
            "不在签到时间内（服务开始前 30 分钟至服务结束）"
        );
        assert_eq!(Lang::En.pick(text), "check-in is open 24/7");
        // A slash inside the Chinese half that is not followed by a space and English.
        let text = "单价 1/2 不在范围内 / unit price 1/2 is out of range";
        assert_eq!(Lang::Zh.pick(text), "单价 1/2 不在范围内");
        assert_eq!(Lang::En.pick(text), "unit price 1/2 is out of range");
        assert_eq!(Lang::En.pick("只有中文"), "只有中文");
    }

    #[test]
    fn a_refusal_is_rendered_in_each_language_with_its_values() {
        let empty = crate::values::ValueError::Empty {
            field: "姓名 name"
        }
        .text();
        assert_eq!(empty.code, "value.empty");
        assert_eq!(empty.render(Lang::Zh), "姓名不能为空");
        assert_eq!(empty.render(Lang::En), "name must not be empty");
        // A text inside a text, each in the language asked for.
        let refused = crate::order::OrderError::WorkerNotEligible(
            crate::order::WorkerIneligibility::Suspended,
        )
        .text();
        assert_eq!(refused.render(Lang::Zh), "服务人员不可派单：服务人员已停用");
        assert_eq!(
            refused.render(Lang::En),
            "the worker cannot take this order: the worker is suspended"
        );
        // Display is English, for logs.
        assert_eq!(refused.to_string(), refused.render(Lang::En));
    }

    #[test]
    fn the_table_fills_placeholders_and_an_unknown_code_shows_as_itself() {
        let locked = Text::new("locked-out").with("seconds", 30);
        assert_eq!(
            locked.render(Lang::En),
            "too many failed attempts; try again in 30 seconds"
        );
        assert_eq!(locked.render(Lang::Zh), "尝试次数过多，请 30 秒后再试");
        assert_eq!(Text::new("no-such-code").render(Lang::Zh), "no-such-code");
    }
}
