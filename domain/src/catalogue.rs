//! The service catalogue: what families can book, what it costs and how it is priced.

use serde::{Deserialize, Serialize};

use crate::values::Fen;

/// A catalogue service, as it is stored in events and sent over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceCode {
    DailyCleaning,
    DeepCleaning,
    Nanny,
    MaternityNurse,
    InfantCarer,
    HomeRepair,
}

impl ServiceCode {
    pub const ALL: [ServiceCode; 6] = [
        ServiceCode::DailyCleaning,
        ServiceCode::DeepCleaning,
        ServiceCode::Nanny,
        ServiceCode::MaternityNurse,
        ServiceCode::InfantCarer,
        ServiceCode::HomeRepair,
    ];

    pub fn as_str(self) -> &'static str {
        self.spec().code_str
    }

    pub fn parse(raw: &str) -> Option<ServiceCode> {
        ServiceCode::ALL
            .into_iter()
            .find(|code| code.as_str() == raw)
    }

    pub fn spec(self) -> &'static ServiceSpec {
        CATALOGUE
            .iter()
            .find(|spec| spec.code == self)
            .expect("every service code has a catalogue entry")
    }
}

/// How a service is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingUnit {
    PerHour,
    PerVisit,
    /// A 26-day term, as maternity nurses (月嫂) are hired.
    PerTerm26Days,
}

/// One entry of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSpec {
    pub code: ServiceCode,
    #[serde(skip)]
    pub code_str: &'static str,
    pub category_zh: &'static str,
    pub category_en: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub description_zh: &'static str,
    pub description_en: &'static str,
    /// Lowest and highest unit price, in fen.
    pub min_unit_price: Fen,
    pub max_unit_price: Fen,
    pub pricing_unit: PricingUnit,
    /// The usual length of one booking, in minutes.
    pub typical_duration_minutes: u32,
    /// The shortest and longest booking accepted, in minutes.
    pub min_duration_minutes: u32,
    pub max_duration_minutes: u32,
}

const fn fen(amount: i64) -> Fen {
    Fen::literal(amount)
}

const DAY: u32 = 24 * 60;

static CATALOGUE: [ServiceSpec; 6] = [
    ServiceSpec {
        code: ServiceCode::DailyCleaning,
        code_str: "daily_cleaning",
        category_zh: "保洁",
        category_en: "Cleaning",
        name_zh: "日常保洁",
        name_en: "Daily cleaning",
        description_zh: "客厅、卧室、厨房和卫生间的日常清洁，含擦拭、吸尘、拖地和垃圾清理。",
        description_en: "Routine cleaning of living room, bedrooms, kitchen and bathroom: dusting, vacuuming, mopping and rubbish removal.",
        min_unit_price: fen(3_500),
        max_unit_price: fen(8_000),
        pricing_unit: PricingUnit::PerHour,
        typical_duration_minutes: 180,
        min_duration_minutes: 120,
        max_duration_minutes: 480,
    },
    ServiceSpec {
        code: ServiceCode::DeepCleaning,
        code_str: "deep_cleaning",
        category_zh: "保洁",
        category_en: "Cleaning",
        name_zh: "深度保洁",
        name_en: "Deep cleaning",
        description_zh: "全屋深度清洁，含油烟机、玻璃、橱柜内外和卫生间除垢。",
        description_en: "Whole-home deep clean including range hood, windows, cabinets inside and out, and bathroom descaling.",
        min_unit_price: fen(30_000),
        max_unit_price: fen(120_000),
        pricing_unit: PricingUnit::PerVisit,
        typical_duration_minutes: 360,
        min_duration_minutes: 240,
        max_duration_minutes: 600,
    },
    ServiceSpec {
        code: ServiceCode::Nanny,
        code_str: "nanny",
        category_zh: "保姆",
        category_en: "Nanny",
        name_zh: "保姆",
        name_en: "Nanny",
        description_zh: "做饭、家务与照看家人，按小时计费。",
        description_en: "Cooking, housework and looking after the family, charged by the hour.",
        min_unit_price: fen(4_000),
        max_unit_price: fen(10_000),
        pricing_unit: PricingUnit::PerHour,
        typical_duration_minutes: 480,
        min_duration_minutes: 120,
        max_duration_minutes: 720,
    },
    ServiceSpec {
        code: ServiceCode::MaternityNurse,
        code_str: "maternity_nurse",
        category_zh: "月嫂",
        category_en: "Maternity nurse",
        name_zh: "月嫂",
        name_en: "Maternity nurse",
        description_zh: "产后 26 天住家护理产妇与新生儿，含月子餐、新生儿护理和产妇护理。",
        description_en: "Live-in care for mother and newborn for a 26-day term: confinement meals, newborn and postnatal care.",
        min_unit_price: fen(800_000),
        max_unit_price: fen(3_000_000),
        pricing_unit: PricingUnit::PerTerm26Days,
        typical_duration_minutes: 26 * DAY,
        min_duration_minutes: 26 * DAY,
        max_duration_minutes: 26 * DAY,
    },
    ServiceSpec {
        code: ServiceCode::InfantCarer,
        code_str: "infant_carer",
        category_zh: "育婴师",
        category_en: "Infant carer",
        name_zh: "育婴师",
        name_en: "Infant carer",
        description_zh: "0–3 岁婴幼儿的日常照护、喂养与早期启蒙。",
        description_en: "Day-to-day care, feeding and early learning for children aged 0 to 3.",
        min_unit_price: fen(5_000),
        max_unit_price: fen(12_000),
        pricing_unit: PricingUnit::PerHour,
        typical_duration_minutes: 480,
        min_duration_minutes: 240,
        max_duration_minutes: 720,
    },
    ServiceSpec {
        code: ServiceCode::HomeRepair,
        code_str: "home_repair",
        category_zh: "家庭维修",
        category_en: "Home repair",
        name_zh: "家庭维修",
        name_en: "Home repair",
        description_zh: "水电、门窗、家具和小家电的上门维修，按次计费，材料另计。",
        description_en: "Call-out repair of plumbing, wiring, doors, furniture and small appliances, per visit, materials extra.",
        min_unit_price: fen(5_000),
        max_unit_price: fen(50_000),
        pricing_unit: PricingUnit::PerVisit,
        typical_duration_minutes: 90,
        min_duration_minutes: 30,
        max_duration_minutes: 480,
    },
];

/// Every service the platform offers, in display order.
pub fn catalogue() -> &'static [ServiceSpec] {
    &CATALOGUE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_code_round_trips_through_its_string() {
        for code in ServiceCode::ALL {
            assert_eq!(ServiceCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ServiceCode::parse("window_washing"), None);
    }

    #[test]
    fn price_ranges_and_durations_are_coherent() {
        for spec in catalogue() {
            assert!(
                spec.min_unit_price <= spec.max_unit_price,
                "{}",
                spec.name_en
            );
            assert!(spec.min_duration_minutes <= spec.typical_duration_minutes);
            assert!(spec.typical_duration_minutes <= spec.max_duration_minutes);
        }
        assert_eq!(
            ServiceCode::MaternityNurse.spec().pricing_unit,
            PricingUnit::PerTerm26Days
        );
    }
}
