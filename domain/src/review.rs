//! What a review may say: the tags a customer can pick, the default recorded when none is
//! given in time, and how a reviewer's name is shown to others.

use serde::Serialize;

/// A tag a customer can put on a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tag {
    pub code: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    /// Praise (true) or a complaint.
    pub positive: bool,
}

pub const TAGS: [Tag; 10] = [
    Tag {
        code: "punctual",
        zh: "准时守约",
        en: "punctual",
        positive: true,
    },
    Tag {
        code: "professional",
        zh: "专业熟练",
        en: "professional",
        positive: true,
    },
    Tag {
        code: "careful",
        zh: "细致认真",
        en: "careful",
        positive: true,
    },
    Tag {
        code: "friendly",
        zh: "热情有礼",
        en: "friendly",
        positive: true,
    },
    Tag {
        code: "tidy",
        zh: "干净整洁",
        en: "tidy",
        positive: true,
    },
    Tag {
        code: "good_with_children",
        zh: "会带孩子",
        en: "good with children",
        positive: true,
    },
    Tag {
        code: "late",
        zh: "迟到",
        en: "late",
        positive: false,
    },
    Tag {
        code: "careless",
        zh: "不够细致",
        en: "careless",
        positive: false,
    },
    Tag {
        code: "impolite",
        zh: "态度欠佳",
        en: "impolite",
        positive: false,
    },
    Tag {
        code: "damaged_property",
        zh: "损坏物品",
        en: "damaged property",
        positive: false,
    },
];

pub fn tag(code: &str) -> Option<&'static Tag> {
    TAGS.iter().find(|tag| tag.code == code)
}

/// The stars recorded when a customer leaves no review in time: quality, attitude, skill.
pub const DEFAULT_STARS: (u8, u8, u8) = (5, 5, 5);

pub const DEFAULT_COMMENT: &str = "客户未在评价期内评价，系统默认好评 / no review was given in time; a positive default was recorded";

/// A reviewer's name as others see it: the first character, the rest starred (张** for 张小明,
/// J*** for John); an erased or empty name shows as 匿名用户 / anonymous.
pub fn masked_name(name: Option<&str>) -> String {
    let Some(name) = name.map(str::trim).filter(|name| !name.is_empty()) else {
        return "匿名用户 / anonymous".to_owned();
    };
    let mut characters = name.chars();
    let first = characters.next().expect("not empty");
    let rest = characters.count().max(1);
    format!("{first}{}", "*".repeat(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_their_first_character() {
        assert_eq!(masked_name(Some("张小明")), "张**");
        assert_eq!(masked_name(Some("王")), "王*");
        assert_eq!(masked_name(Some(" John ")), "J***");
        assert_eq!(masked_name(Some("")), "匿名用户 / anonymous");
        assert_eq!(masked_name(None), "匿名用户 / anonymous");
    }

    #[test]
    fn tags_are_unique_and_bilingual() {
        for (index, tag) in TAGS.iter().enumerate() {
            assert!(!tag.zh.is_empty() && !tag.en.is_empty());
            assert!(TAGS[index + 1..].iter().all(|other| other.code != tag.code));
        }
        assert!(tag("punctual").is_some_and(|tag| tag.positive));
        assert!(tag("nonsense").is_none());
    }
}
