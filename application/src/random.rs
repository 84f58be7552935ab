//! A small deterministic generator (SplitMix64), so a seed names the same generated day or
//! history everywhere (`anjia simulate`, `anjia demo-data`).

use chrono::Duration;
use domain::ServiceCode;
use uuid::Uuid;

/// The services in the proportions generated orders have them.
pub const SERVICE_MIX: [(ServiceCode, u64); 6] = [
    (ServiceCode::DailyCleaning, 45),
    (ServiceCode::DeepCleaning, 15),
    (ServiceCode::HomeRepair, 15),
    (ServiceCode::Nanny, 10),
    (ServiceCode::InfantCarer, 8),
    (ServiceCode::MaternityNurse, 7),
];

pub struct Random(pub u64);

impl Random {
    pub fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.bits() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, bound).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.bits() % bound.max(1)
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Whole minutes from `low` to `high`, inclusive.
    pub fn minutes(&mut self, low: i64, high: i64) -> Duration {
        Duration::minutes(low + self.below((high - low + 1).max(1) as u64) as i64)
    }

    /// A version-4 UUID from the generator's bits.
    pub fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(
            ((u128::from(self.bits()) << 64) | u128::from(self.bits())).to_le_bytes(),
        )
        .into_uuid()
    }

    /// One of `items`, each as likely as its weight.
    pub fn weighted<T: Copy>(&mut self, items: &[(T, u64)]) -> T {
        let total: u64 = items.iter().map(|(_, weight)| weight).sum();
        let mut roll = self.below(total);
        for (item, weight) in items {
            if roll < *weight {
                return *item;
            }
            roll -= weight;
        }
        items[0].0
    }

    /// Roughly normal (a sum of six uniforms), mean 0, deviation 1.
    pub fn normal(&mut self) -> f64 {
        (0..6).map(|_| self.unit()).sum::<f64>() - 3.0
    }
}
