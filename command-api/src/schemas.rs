//! The API document's names for the domain's closed sets of values. `domain` knows nothing of
//! OpenAPI, so each set is written here once as a schema-only enum; the tests hold every one
//! to the domain's own values, so the document cannot drift from what the server accepts.

use serde::Serialize;
use utoipa::ToSchema;

/// A catalogue service.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    DailyCleaning,
    DeepCleaning,
    Nanny,
    MaternityNurse,
    InfantCarer,
    HomeRepair,
}

/// The datum of a coordinate: `wgs84` from GPS, `gcj02` for Amap and Tencent, `bd09` for Baidu.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Datum {
    Wgs84,
    Gcj02,
    Bd09,
}

/// A worker's level.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerLevel {
    Standard,
    Silver,
    Gold,
}

/// How a customer pays.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Alipay,
    WechatPay,
    BankCard,
}

/// A kind of certificate a worker holds.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Certificate {
    HealthCertificate,
    MaternityCare,
    InfantCare,
    Housekeeping,
    Electrician,
}

/// What a customer decided after an interview.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InterviewOutcome {
    Hire,
    NotHire,
}

/// How the order list is sorted.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderSort {
    PlacedAt,
    ScheduledStart,
    Total,
}

/// A sort direction.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortDirection {
    Asc,
    Desc,
}

/// Where a worker's income came from.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncomeKind {
    Service,
    CancellationFee,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documented<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).expect("schema");
        let mut values: Vec<String> = schema["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("not an enum: {schema}"))
            .iter()
            .map(|value| value.as_str().expect("a string").to_owned())
            .collect();
        values.sort();
        values
    }

    fn wire<T: Serialize>(values: impl IntoIterator<Item = T>) -> Vec<String> {
        let mut names: Vec<String> = values
            .into_iter()
            .map(|value| {
                serde_json::to_value(value)
                    .expect("json")
                    .as_str()
                    .expect("a string")
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_documented_set_is_exactly_the_domains() {
        use domain::CoordinateSystem as C;
        assert_eq!(documented::<Service>(), wire(domain::ServiceCode::ALL));
        assert_eq!(documented::<Datum>(), wire([C::Wgs84, C::Gcj02, C::Bd09]));
        use domain::onboarding::Level as L;
        assert_eq!(
            documented::<WorkerLevel>(),
            wire([L::Standard, L::Silver, L::Gold])
        );
        use domain::payment::PaymentMethod as P;
        assert_eq!(
            documented::<Method>(),
            wire([P::Alipay, P::WechatPay, P::BankCard])
        );
        assert_eq!(
            documented::<Certificate>(),
            wire(domain::onboarding::CertificateKind::ALL)
        );
        use domain::interview::Outcome as O;
        assert_eq!(
            documented::<InterviewOutcome>(),
            wire([O::Hire, O::NotHire])
        );
        use projections::orders::{Direction as D, SortKey as S};
        assert_eq!(
            documented::<OrderSort>(),
            wire([S::PlacedAt, S::ScheduledStart, S::Total])
        );
        assert_eq!(documented::<SortDirection>(), wire([D::Asc, D::Desc]));
        use domain::wallet::IncomeKind as K;
        assert_eq!(
            documented::<IncomeKind>(),
            wire([K::Service, K::CancellationFee])
        );
    }
}
