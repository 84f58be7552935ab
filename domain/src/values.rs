//! Value types that make bad states unrepresentable: money in fen, phone numbers, addresses,
//! coordinates with their datum, and the acting party of a command.

use std::fmt;

use crate::message::{Explain, Text};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a value was refused. Messages are Simplified Chinese first, English second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    NegativeAmount(i64),
    BadPhone(String),
    Empty {
        field: &'static str,
    },
    TooLong {
        field: &'static str,
        max: usize,
    },
    ControlCharacter {
        field: &'static str,
    },
    BadIdNumber,
    BadDates,
    BadCoordinate(String, String),
    OutOfRange {
        field: &'static str,
        min: i64,
        max: i64,
    },
}

/// A text naming a field by its label, `姓名 name`: the Chinese word in Chinese, the English
/// words in English.
fn labelled(code: &'static str, label: &str) -> Text {
    let (zh, en) = match label.split_once(' ') {
        Some((zh, en)) if !zh.is_ascii() && en.is_ascii() => (zh, en),
        _ => (label, label),
    };
    Text::new(code).each("field", zh, en)
}

impl Explain for ValueError {
    fn text(&self) -> Text {
        match self {
            ValueError::NegativeAmount(v0) => Text::new("value.negative-amount").with("0", v0),
            ValueError::BadPhone(v0) => Text::new("value.bad-phone").with("0", v0),
            ValueError::Empty { field } => labelled("value.empty", field),
            ValueError::TooLong { field, max } => {
                labelled("value.too-long", field).with("max", max)
            }
            ValueError::ControlCharacter { field } => labelled("value.control-character", field),
            ValueError::BadIdNumber => Text::new("value.bad-id-number"),
            ValueError::BadDates => Text::new("value.bad-dates"),
            ValueError::BadCoordinate(v0, v1) => Text::new("value.bad-coordinate")
                .with("0", v0)
                .with("1", v1),
            ValueError::OutOfRange { field, max, min } => labelled("value.out-of-range", field)
                .with("max", max)
                .with("min", min),
        }
    }
}

crate::message::explained!(ValueError);

/// An amount of money in fen (分), the smallest unit of the renminbi. Never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Fen(i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub fn new(amount: i64) -> Result<Self, ValueError> {
        if amount < 0 {
            return Err(ValueError::NegativeAmount(amount));
        }
        Ok(Fen(amount))
    }

    /// For literal amounts in code; fails the build (in const context) on a negative one.
    pub const fn literal(amount: i64) -> Self {
        assert!(amount >= 0, "amounts are never negative");
        Fen(amount)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// Multiplies by a count, refusing overflow instead of wrapping.
    pub fn times(self, count: u32) -> Option<Fen> {
        self.0.checked_mul(i64::from(count)).map(Fen)
    }
}

impl TryFrom<i64> for Fen {
    type Error = ValueError;
    fn try_from(amount: i64) -> Result<Self, Self::Error> {
        Fen::new(amount)
    }
}

impl From<Fen> for i64 {
    fn from(amount: Fen) -> i64 {
        amount.0
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "¥{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// A mainland China mobile number: 11 digits starting with 1[3-9], with an optional +86 prefix.
/// Its `Debug` form is masked, so a logged value never shows the whole number.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "PhoneNumber({})", self.masked())
    }
}

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let digits = compact
            .strip_prefix("+86")
            .or_else(|| compact.strip_prefix("86").filter(|rest| rest.len() == 11))
            .unwrap_or(&compact);
        let well_formed = digits.len() == 11
            && digits.chars().all(|c| c.is_ascii_digit())
            && digits.starts_with('1')
            && matches!(digits.as_bytes()[1], b'3'..=b'9');
        if !well_formed {
            return Err(ValueError::BadPhone(raw.to_owned()));
        }
        Ok(PhoneNumber(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form shown in read models, responses and logs: `138****5678`.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = ValueError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&raw)
    }
}

impl From<PhoneNumber> for String {
    fn from(phone: PhoneNumber) -> String {
        phone.0
    }
}

/// A piece of personal data (a phone number, an address line, an identity number) encrypted
/// under its owner's data key. The domain carries it and never reads it; the vault seals and
/// opens it, and erasing the owner's key makes it unreadable for good.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl Sealed {
    /// Wraps a ciphertext produced by the vault (`v1.<owner>.<base64>`).
    pub fn from_ciphertext(ciphertext: String) -> Self {
        Sealed(ciphertext)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whose key sealed it.
    /// A value written in clear before its field was sealed, as the upcasters mark it
    /// (`v0.clear.<percent-encoded text>`): the vault opens it without a key. It is in the log
    /// as it always was; only values sealed since can be made unreadable.
    pub fn legacy_clear(text: &str) -> Self {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        Sealed(format!(
            "v0.clear.{}",
            utf8_percent_encode(text, NON_ALPHANUMERIC)
        ))
    }

    /// The text of a legacy-clear value; `None` for a sealed one.
    pub fn legacy_text(&self) -> Option<String> {
        let encoded = self.0.strip_prefix("v0.clear.")?;
        percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .ok()
            .map(|text| text.into_owned())
    }

    pub fn owner(&self) -> Option<uuid::Uuid> {
        let mut parts = self.0.splitn(3, '.');
        match (parts.next(), parts.next()) {
            (Some("v1"), Some(owner)) => owner.parse().ok(),
            _ => None,
        }
    }
}

/// A place sealed under its owner's key, with the cell of the public 0.01° grid it lies in
/// (`GeoPoint::coarse`): the cell is enough to estimate travel, the sealed point is opened only
/// where precision is needed (a customer following their worker), and erasing the owner
/// leaves only the cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedPoint {
    /// The point as JSON (`{"latitude", "longitude", "system"}`), sealed.
    pub sealed: Sealed,
    pub cell: GeoPoint,
}

impl SealedPoint {
    /// A point sealed as `sealed` (which must seal `SealedPoint::plaintext(point)`).
    pub fn new(point: &GeoPoint, sealed: Sealed) -> Self {
        SealedPoint {
            sealed,
            cell: point.coarse(),
        }
    }

    /// The JSON text of a point, as it is sealed.
    pub fn plaintext(point: &GeoPoint) -> String {
        serde_json::to_string(point).expect("a point serialises")
    }

    /// A point read back from its opened text.
    pub fn parse(opened: &str) -> Option<GeoPoint> {
        serde_json::from_str(opened).ok()
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the ciphertext: logs need not carry it.
        match self.owner() {
            Some(owner) => write!(formatter, "Sealed(owner {owner})"),
            None => formatter.write_str("Sealed(malformed)"),
        }
    }
}

/// A person's name: trimmed, 1 to 40 characters. It is checked in the clear and then sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        required_text("姓名 name", raw, 40).map(PersonName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The most groups a person can be in.
pub const MAX_GROUPS: usize = 10;

/// Trims, sorts and deduplicates group names; `None` when one is blank or longer than 20
/// characters, or when there are more than `MAX_GROUPS`.
pub fn group_names(groups: &[String]) -> Option<Vec<String>> {
    let mut cleaned = Vec::with_capacity(groups.len());
    for group in groups {
        let group = group.trim();
        if group.is_empty() || group.chars().count() > 20 {
            return None;
        }
        cleaned.push(group.to_owned());
    }
    cleaned.sort();
    cleaned.dedup();
    (cleaned.len() <= MAX_GROUPS).then_some(cleaned)
}

/// The business day (Asia/Shanghai, UTC+8 all year) that a UTC instant falls on.
pub fn business_day(instant: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    let shanghai = chrono::FixedOffset::east_opt(8 * 3600).expect("a valid offset");
    instant.with_timezone(&shanghai).date_naive()
}

/// Trims a piece of free text and checks it is present and not too long.
pub fn required_text(field: &'static str, raw: &str, max: usize) -> Result<String, ValueError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ValueError::Empty { field });
    }
    if trimmed.chars().count() > max {
        return Err(ValueError::TooLong { field, max });
    }
    // The HTTP edge refuses these before any command is made; the domain refuses them too, so
    // no event can carry a character a read model cannot store. Whether a field is one line is
    // the edge's rule.
    if trimmed
        .chars()
        .any(|character| character.is_control() && !matches!(character, '\n' | '\t'))
    {
        return Err(ValueError::ControlCharacter { field });
    }
    Ok(trimmed.to_owned())
}

/// The geodetic datum a coordinate is in. Chinese map providers each use their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoordinateSystem {
    /// From GPS receivers.
    Wgs84,
    /// Amap and Tencent maps.
    Gcj02,
    /// Baidu maps.
    Bd09,
}

impl CoordinateSystem {
    pub fn as_str(self) -> &'static str {
        match self {
            CoordinateSystem::Wgs84 => "wgs84",
            CoordinateSystem::Gcj02 => "gcj02",
            CoordinateSystem::Bd09 => "bd09",
        }
    }
}

/// A point on the earth, always with the datum it was measured in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
    pub system: CoordinateSystem,
}

impl GeoPoint {
    pub fn new(
        latitude: f64,
        longitude: f64,
        system: CoordinateSystem,
    ) -> Result<Self, ValueError> {
        let in_range = (-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude);
        if !in_range {
            return Err(ValueError::BadCoordinate(
                latitude.to_string(),
                longitude.to_string(),
            ));
        }
        Ok(GeoPoint {
            latitude,
            longitude,
            system,
        })
    }
}

/// Where a service takes place. The street address, the contact's name and phone number and
/// the coordinates are personal data, sealed under the customer's key; city, district and the
/// coordinates' cell stay readable so orders can be searched and dispatched after an erasure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub city: String,
    pub district: String,
    pub detail: Sealed,
    pub contact_name: Sealed,
    pub contact_phone: Sealed,
    /// Sealed since `OrderPlaced` 3.0, `AddressChanged` 2.0 and `AddressAdded` 2.0.
    pub location: Option<SealedPoint>,
}

impl Address {
    /// The cell of the public grid the address lies in.
    pub fn cell(&self) -> Option<GeoPoint> {
        self.location.as_ref().map(|point| point.cell)
    }
}

/// The readable parts of an address, checked before the personal ones are sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainAddress {
    pub city: String,
    pub district: String,
    pub detail: String,
    pub contact_name: String,
    pub contact_phone: PhoneNumber,
    pub location: Option<GeoPoint>,
}

impl PlainAddress {
    pub fn parse(
        city: &str,
        district: &str,
        detail: &str,
        contact_name: &str,
        contact_phone: PhoneNumber,
        location: Option<GeoPoint>,
    ) -> Result<Self, ValueError> {
        Ok(PlainAddress {
            city: required_text("城市 city", city, 40)?,
            district: required_text("区县 district", district, 40)?,
            detail: required_text("详细地址 address detail", detail, 200)?,
            contact_name: required_text("联系人 contact name", contact_name, 40)?,
            contact_phone,
            location,
        })
    }
}

/// The roles a caller can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Worker,
    Admin,
    Analyst,
    /// Timed jobs and process managers acting on their own.
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Worker => "worker",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        [
            Role::Customer,
            Role::Worker,
            Role::Admin,
            Role::Analyst,
            Role::System,
        ]
        .into_iter()
        .find(|role| role.as_str() == raw)
    }
}

/// Who issued a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    pub id: Uuid,
    pub role: Role,
}

impl Actor {
    /// The platform itself (jobs, the dispatcher).
    pub fn system() -> Actor {
        Actor {
            id: Uuid::nil(),
            role: Role::System,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised_and_masked() {
        let phone = PhoneNumber::parse("+86 138-0013-5678").expect("valid");
        assert_eq!(phone.as_str(), "13800135678");
        assert_eq!(phone.masked(), "138****5678");
        assert_eq!(format!("{phone:?}"), "PhoneNumber(138****5678)");
    }

    #[test]
    fn malformed_phone_numbers_are_refused() {
        for raw in [
            "",
            "12800135678",
            "1380013567",
            "138001356789",
            "1380013567a",
            "+1 415 555 0100",
        ] {
            assert!(PhoneNumber::parse(raw).is_err(), "{raw} should be refused");
        }
    }

    #[test]
    fn negative_money_is_refused_and_display_shows_yuan() {
        assert_eq!(Fen::new(-1), Err(ValueError::NegativeAmount(-1)));
        assert_eq!(Fen::new(12_345).expect("valid").to_string(), "¥123.45");
        assert!(serde_json::from_str::<Fen>("-5").is_err());
    }

    #[test]
    fn multiplying_money_refuses_overflow() {
        assert_eq!(Fen::new(i64::MAX).expect("valid").times(2), None);
        assert_eq!(Fen::new(300).expect("valid").times(3), Some(Fen(900)));
    }

    #[test]
    fn names_are_trimmed_and_must_be_one_to_forty_characters() {
        assert_eq!(
            PersonName::parse("  张伟 ").expect("valid").as_str(),
            "张伟"
        );
        for blank in ["", "   ", "\t\n"] {
            assert_eq!(
                PersonName::parse(blank),
                Err(ValueError::Empty {
                    field: "姓名 name"
                })
            );
        }
        assert!(PersonName::parse(&"名".repeat(40)).is_ok());
        assert_eq!(
            PersonName::parse(&"名".repeat(41)),
            Err(ValueError::TooLong {
                field: "姓名 name",
                max: 40
            })
        );
    }

    #[test]
    fn coordinates_out_of_range_are_refused() {
        assert!(GeoPoint::new(91.0, 0.0, CoordinateSystem::Wgs84).is_err());
        assert!(GeoPoint::new(31.23, 121.47, CoordinateSystem::Gcj02).is_ok());
    }
}
