//! What it takes for a worker to be dispatched: a checked identity, a clean background check,
//! an admin's approval, certified skills and the certificates each service requires, in date.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::ServiceCode;
use crate::values::{required_text, ValueError};

/// A certificate a worker can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateKind {
    /// 健康证: required for work in people's homes.
    HealthCertificate,
    /// 母婴护理证: maternity nursing.
    MaternityCare,
    /// 育婴师证: infant care.
    InfantCare,
    /// 家政服务员证: housekeeping.
    Housekeeping,
    /// 电工证: electrical work.
    Electrician,
}

impl CertificateKind {
    pub const ALL: [CertificateKind; 5] = [
        CertificateKind::HealthCertificate,
        CertificateKind::MaternityCare,
        CertificateKind::InfantCare,
        CertificateKind::Housekeeping,
        CertificateKind::Electrician,
    ];

    /// The wire name, the Chinese name and the English name.
    pub fn labels(self) -> (&'static str, &'static str, &'static str) {
        match self {
            CertificateKind::HealthCertificate => {
                ("health_certificate", "健康证", "health certificate")
            }
            CertificateKind::MaternityCare => {
                ("maternity_care", "母婴护理证", "maternity care certificate")
            }
            CertificateKind::InfantCare => ("infant_care", "育婴师证", "infant carer certificate"),
            CertificateKind::Housekeeping => {
                ("housekeeping", "家政服务员证", "housekeeping certificate")
            }
            CertificateKind::Electrician => ("electrician", "电工证", "electrician certificate"),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.labels().0
    }
}

/// The certificates a service cannot be done without.
/// Every certificate a worker with these skills needs, each once, in a stable order.
pub fn certificates_for(skills: &[ServiceCode]) -> Vec<CertificateKind> {
    let mut kinds: Vec<CertificateKind> = skills
        .iter()
        .flat_map(|service| required_certificates(*service).iter().copied())
        .collect();
    kinds.sort_by_key(|kind| kind.as_str());
    kinds.dedup();
    kinds
}

pub fn required_certificates(service: ServiceCode) -> &'static [CertificateKind] {
    use CertificateKind as C;
    match service {
        ServiceCode::DailyCleaning | ServiceCode::DeepCleaning | ServiceCode::Nanny => {
            &[C::HealthCertificate]
        }
        ServiceCode::MaternityNurse => &[C::HealthCertificate, C::MaternityCare],
        ServiceCode::InfantCarer => &[C::HealthCertificate, C::InfantCare],
        ServiceCode::HomeRepair => &[],
    }
}

/// One certificate as the worker declared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub certificate_id: Uuid,
    pub kind: CertificateKind,
    pub number: String,
    pub issued_on: NaiveDate,
    pub expires_on: NaiveDate,
}

impl Certificate {
    pub fn parse(
        certificate_id: Uuid,
        kind: CertificateKind,
        number: &str,
        issued_on: NaiveDate,
        expires_on: NaiveDate,
    ) -> Result<Self, ValueError> {
        let number = required_text("证书编号 certificate number", number, 40)?;
        if expires_on <= issued_on {
            return Err(ValueError::BadDates);
        }
        Ok(Certificate {
            certificate_id,
            kind,
            number,
            issued_on,
            expires_on,
        })
    }

    /// Whether it is in force on `day` (a business day in Asia/Shanghai).
    pub fn valid_on(&self, day: NaiveDate) -> bool {
        self.issued_on <= day && day <= self.expires_on
    }
}

/// A worker's grade, which sets their commission and how dispatch ranks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 普通
    #[default]
    Standard,
    /// 银牌
    Silver,
    /// 金牌
    Gold,
}

impl Level {
    pub fn labels(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Level::Standard => ("standard", "普通", "standard"),
            Level::Silver => ("silver", "银牌", "silver"),
            Level::Gold => ("gold", "金牌", "gold"),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.labels().0
    }
}

/// Where a worker's qualification review stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ReviewStatus {
    #[default]
    Pending,
    DocumentsRequested {
        what: String,
    },
    Approved,
    Rejected {
        reason: String,
    },
}

impl ReviewStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::DocumentsRequested { .. } => "documents_requested",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected { .. } => "rejected",
        }
    }
}

/// An admin's decision on a worker's qualification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum ReviewDecision {
    Approve { level: Level },
    Reject { reason: String },
    RequestDocuments { what: String },
}

/// What a background check found, and who answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundCheckOutcome {
    /// The provider: `offline-blacklist` or the HTTP provider's name.
    pub source: String,
    /// Entries on the list of dishonest persons subject to enforcement (失信被执行人) that
    /// match, e.g. case numbers. Empty means clear.
    pub hits: Vec<String>,
}

impl BackgroundCheckOutcome {
    pub fn clear(&self) -> bool {
        self.hits.is_empty()
    }
}

/// A mainland resident identity card number (居民身份证号码): 18 characters, the last a
/// check character under ISO 7064 MOD 11-2, with a real birth date inside.
#[derive(Clone, PartialEq, Eq)]
pub struct IdCardNumber(String);

impl std::fmt::Debug for IdCardNumber {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "IdCardNumber({})", self.masked())
    }
}

impl IdCardNumber {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let candidate: String = raw.trim().to_ascii_uppercase();
        let bad = || ValueError::BadIdNumber;
        if candidate.len() != 18 || !candidate[..17].chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        if candidate.chars().nth(17) != Self::check_character(&candidate[..17]) {
            return Err(bad());
        }
        NaiveDate::parse_from_str(&candidate[6..14], "%Y%m%d").map_err(|_| bad())?;
        Ok(IdCardNumber(candidate))
    }

    /// The ISO 7064 MOD 11-2 check character of the first seventeen digits (GB 11643).
    pub fn check_character(digits: &str) -> Option<char> {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        if digits.len() != 17 {
            return None;
        }
        let mut sum = 0;
        for (digit, weight) in digits.chars().zip(WEIGHTS) {
            sum += digit.to_digit(10)? * weight;
        }
        Some(b"10X98765432"[(sum % 11) as usize] as char)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `110101********1234`: the region code and the last four characters.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_number_with_the_right_check_character_is_accepted_and_masked() {
        let number = IdCardNumber::parse("11010519491231002x").expect("valid");
        assert_eq!(number.as_str(), "11010519491231002X");
        assert_eq!(number.masked(), "110105********002X");
    }

    #[test]
    fn identity_numbers_with_a_wrong_check_character_length_or_date_are_refused() {
        for raw in [
            "110105194912310021",
            "1101051949123100",
            "11010519491331002X",
            "A1010519491231002X",
            "",
        ] {
            assert_eq!(
                IdCardNumber::parse(raw),
                Err(ValueError::BadIdNumber),
                "{raw}"
            );
        }
    }

    #[test]
    fn certificates_need_a_number_and_an_expiry_after_issue() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 1, d).expect("date");
        let id = Uuid::nil();
        assert!(Certificate::parse(
            id,
            CertificateKind::HealthCertificate,
            "JK-1",
            day(1),
            day(2)
        )
        .is_ok());
        assert_eq!(
            Certificate::parse(
                id,
                CertificateKind::HealthCertificate,
                "JK-1",
                day(2),
                day(2)
            ),
            Err(ValueError::BadDates)
        );
        assert!(
            Certificate::parse(id, CertificateKind::HealthCertificate, " ", day(1), day(2))
                .is_err()
        );
        let certificate =
            Certificate::parse(id, CertificateKind::MaternityCare, "MY-9", day(1), day(10))
                .expect("valid");
        assert!(certificate.valid_on(day(10)));
        assert!(!certificate.valid_on(day(11)));
    }

    #[test]
    fn maternity_and_infant_care_need_their_own_certificates_beside_the_health_certificate() {
        assert_eq!(
            required_certificates(ServiceCode::MaternityNurse),
            &[
                CertificateKind::HealthCertificate,
                CertificateKind::MaternityCare
            ]
        );
        assert!(required_certificates(ServiceCode::HomeRepair).is_empty());
    }
}
