//! Summaries of measured samples for the benchmarks and the simulator: one definition of a
//! percentile, and the median as its 50th, so that every report's p50 and p99 mean the same.

/// Samples sorted once, so that several percentiles of them cost one sort.
#[derive(Debug, Clone, Default)]
pub struct Sorted(Vec<f64>);

impl Sorted {
    pub fn new(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Sorted(samples)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `fraction` (0 to 1) percentile, by nearest rank on the sorted samples; 0 when there
    /// are none (the reports say how many samples there were beside it).
    pub fn percentile(&self, fraction: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((self.0.len() - 1) as f64 * fraction.clamp(0.0, 1.0)).round() as usize;
        self.0[rank]
    }

    /// The median: the 50th percentile (the upper middle of an even count).
    pub fn median(&self) -> f64 {
        self.percentile(0.5)
    }
}

/// The median of `samples` (0 when there are none).
pub fn median(samples: Vec<f64>) -> f64 {
    Sorted::new(samples).median()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank_and_no_samples_answer_zero() {
        let samples = Sorted::new(vec![5.0, 1.0, 4.0, 2.0, 3.0]);
        assert_eq!(samples.percentile(0.0), 1.0);
        assert_eq!(samples.median(), 3.0);
        assert_eq!(samples.percentile(0.99), 5.0);
        assert_eq!(samples.percentile(1.0), 5.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(vec![7.0]), 7.0);
        assert_eq!(median(Vec::new()), 0.0);
        assert_eq!(Sorted::new(Vec::new()).percentile(0.99), 0.0);
        assert_eq!(samples.percentile(2.0), 5.0);
    }
}
