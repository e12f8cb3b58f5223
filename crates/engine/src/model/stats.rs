//! The summary of a sampled test's round trips.

/// Latency summary over samples, as the reference defines it: min, mean,
/// median, p95, max, standard deviation, and jitter as the mean absolute
/// difference of consecutive samples (in sending order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleStats {
    pub min: f64,
    pub mean: f64,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
    pub stddev: f64,
    pub jitter: f64,
}

impl SampleStats {
    /// `samples` in the order they were sent. `None` when empty.
    pub fn of(samples: &[f64]) -> Option<SampleStats> {
        if samples.is_empty() {
            return None;
        }
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
        let jitter = if samples.len() > 1 {
            samples.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(SampleStats {
            min: sorted[0],
            mean,
            median: percentile(&sorted, 50.0),
            p95: percentile(&sorted, 95.0),
            max: sorted[sorted.len() - 1],
            stddev: var.sqrt(),
            jitter,
        })
    }
}

/// Linear-interpolated percentile of an ascending, non-empty slice.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}
