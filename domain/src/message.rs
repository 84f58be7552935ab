//! What the platform tells people, in the language they ask for: Simplified Chinese first,
//! English second.
//!
//! A refusal carries a stable code (`order.illegal-transition`, `bad-credentials`) that apps
//! may switch on to show their own words, and a text in both languages. `TABLE` holds the
//! texts kept by code, with `{name}` placeholders; a refusal whose text is not in the table yet
//! carries it written `中文 / English`, and `Lang::pick` takes the half asked for.

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
    pub fn pick(self, text: &str) -> &str {
        let Some((chinese, english)) = halves(text) else {
            return text;
        };
        match self {
            Lang::Zh => chinese,
            Lang::En => english,
        }
    }

    /// The text kept under `code` in this language, its placeholders filled from `args`;
    /// `None` when the table has no such code.
    pub fn text(self, code: &str, args: &[(&str, &str)]) -> Option<String> {
        let entry = TABLE.iter().find(|entry| entry.code == code)?;
        let mut text = match self {
            Lang::Zh => entry.zh,
            Lang::En => entry.en,
        }
        .to_owned();
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        Some(text)
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

macro_rules! table {
    ($($code:literal => $zh:literal, $en:literal;)*) => {
        /// The platform's texts, by code.
        pub static TABLE: &[Entry] = &[$(Entry { code: $code, zh: $zh, en: $en }),*];
    };
}

table! {
    // Problems' titles, by status.
    "title.400" => "请求格式错误", "Bad request";
    "title.401" => "未登录", "Unauthenticated";
    "title.403" => "无权操作", "Forbidden";
    "title.404" => "未找到", "Not found";
    "title.405" => "方法不允许", "Method not allowed";
    "title.409" => "冲突", "Conflict";
    "title.410" => "已过期", "Gone";
    "title.413" => "请求体过大", "Payload too large";
    "title.415" => "不支持的媒体类型", "Unsupported media type";
    "title.422" => "输入无效", "Invalid input";
    "title.429" => "请求过于频繁", "Too many requests";
    "title.503" => "服务不可用", "Service unavailable";
    "title.500" => "服务器错误", "Server error";
    // What the HTTP edge itself refuses.
    "unauthenticated" => "请先登录", "authentication required";
    "bad-credentials" => "登录名或密码错误", "wrong login or password";
    "forbidden" => "您的角色无权执行此操作", "your role may not do this";
    "method-not-allowed" => "该路径不支持此方法", "method not allowed on this path";
    "concurrent-modification" => "该订单刚被其他操作修改，请刷新后重试", "the resource was changed by another request first; nothing was written, reload and retry";
    "idempotency-in-progress" => "相同幂等键的请求仍在处理中", "a request with this Idempotency-Key is still in progress";
    "locked-out" => "尝试次数过多，请 {seconds} 秒后再试", "too many failed attempts; try again in {seconds} seconds";
    "resume-too-old" => "续传位置已过期，请刷新后重新订阅（不带 Last-Event-ID）", "that resume point is older than the last hour; reload, then follow without Last-Event-ID";
    "payload-too-large" => "请求体过大", "request body too large";
    "unsupported-media-type" => "请求体必须是 JSON", "the body must be application/json";
    "invalid-field" => "字段 {field} 无效：{detail}", "invalid field {field}: {detail}";
    "bad-code" => "验证码错误或已过期，请重新获取", "the code is wrong or has expired; request a new one";
    "idempotency-key-reused" => "幂等键已用于另一个请求", "this Idempotency-Key was used for a different request";
    "catching-up" => "数据正在同步，请稍后重试", "the views are still catching up with that write; try again shortly";
    "unavailable" => "服务暂不可用", "service temporarily unavailable";
    "warehouse-not-loaded" => "数据仓库尚未建立，请先刷新", "the warehouse has not been loaded yet: refresh it first";
    "internal" => "服务器内部错误", "internal server error";
}

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
    fn the_table_fills_placeholders_and_has_each_code_once() {
        assert_eq!(
            Lang::En.text("locked-out", &[("seconds", "30")]).as_deref(),
            Some("too many failed attempts; try again in 30 seconds")
        );
        assert_eq!(
            Lang::Zh.text("locked-out", &[("seconds", "30")]).as_deref(),
            Some("尝试次数过多，请 30 秒后再试")
        );
        assert_eq!(Lang::Zh.text("no-such-code", &[]), None);
        for (index, entry) in TABLE.iter().enumerate() {
            assert!(
                TABLE[index + 1..]
                    .iter()
                    .all(|other| other.code != entry.code),
                "{} twice",
                entry.code
            );
            assert!(
                !entry.zh.contains(" / ") && !entry.en.contains(" / "),
                "{}",
                entry.code
            );
        }
    }
}
