//! Judging timed figures against a known delay on a shared, busy machine.
//!
//! A delay line's delay is the truth, but every sample through it also
//! carries whatever the machine did meanwhile: the delay line's thread, the
//! peer (caddy, dnsmasq, nginx) or the probe held off the CPU for a few
//! milliseconds by another process. Those stalls only ever add time, and
//! they land on some samples, not on all. An error of the probe's own (a
//! clock read at the wrong moment, an extra round trip) lands on every
//! sample, or on most. So a set of samples is judged by:
//!
//! - its fastest sample is not below the truth: nothing beats the line;
//! - its fastest sample is within the stated overhead of the truth: the
//!   probe adds no time of its own to every sample;
//! - its median is below the truth plus the overhead plus half a round
//!   trip: most samples hold no extra round trip.
//!
//! A reference tool measured in the same test is compared the same way:
//! fastest against fastest, where the machine's stalls are least.

use crate::median;

/// Takes a timing test's lock (one timing test at a time: two cores) and
/// raises the test's priority above the machine's ordinary processes.
pub async fn serial(lock: &'static tokio::sync::Mutex<()>) -> tokio::sync::MutexGuard<'static, ()> {
    let guard = lock.lock().await;
    raise_priority();
    guard
}

/// Runs this test process's threads at nice −10, and so whatever they start
/// from now on (the delay line, the peers, the reference tools, the probe's
/// runtime): a neighbour busy at the ordinary priority then takes the CPU
/// from them much less often. The stalls it still causes are what
/// [`judge`] allows for. Threads already raised are left as they are.
pub fn raise_priority() {
    #[cfg(target_os = "linux")]
    {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return;
        };
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // Field 19 of stat, the 17th after the command's closing paren.
            let nice = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(16))
                .and_then(|n| n.parse::<i32>().ok());
            if nice == Some(0) {
                let _ = std::process::Command::new("renice")
                    .args(["-n", "-10", "-p"])
                    .arg(task.file_name())
                    .output();
            }
        }
    }
}

/// The summary of one figure's samples.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(samples: &[f64]) -> Spread {
        assert!(!samples.is_empty(), "no samples");
        let mut v = samples.to_vec();
        let m = median(&mut v);
        Spread {
            min: v[0],
            median: m,
            max: v[v.len() - 1],
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "min {:.3} median {:.3} max {:.3} ms",
            self.min, self.median, self.max
        )
    }
}

/// Checks `samples` of a figure that spans `truth` ms of delay line (one or
/// several round trips of `rtt` ms each) by the rules of this module;
/// `overhead` is the stated time the probe may add. Returns the spread.
pub fn judge(name: &str, samples: &[f64], truth: f64, overhead: f64, rtt: f64) -> Spread {
    let s = Spread::of(samples);
    println!(
        "{name}: truth {truth:.1} ms; {s} (fastest {:+.3})",
        s.min - truth
    );
    assert!(
        s.min >= truth,
        "{name}: {:.3} ms beats the delay line's {truth} ms",
        s.min
    );
    assert!(
        s.min <= truth + overhead,
        "{name}: even the fastest of {} samples, {:.3} ms, is more than {overhead} ms over the truth {truth} ms",
        samples.len(),
        s.min
    );
    assert!(
        s.median < truth + overhead + rtt / 2.0,
        "{name}: the median {:.3} ms is half a round trip ({rtt} ms) or more over the truth {truth} ms and the overhead {overhead} ms",
        s.median
    );
    s
}

/// Our fastest sample and the reference tool's, on the same path in the
/// same test, agree within `bound` ms.
pub fn agree(name: &str, ours: &Spread, reference: &Spread, bound: f64) {
    assert!(
        (ours.min - reference.min).abs() <= bound,
        "{name}: ours {:.3} ms vs the reference's {:.3} ms (fastest samples), more than {bound} ms apart",
        ours.min,
        reference.min
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_on_some_samples_pass_and_an_error_on_every_sample_fails() {
        // A correct probe on a busy machine: two samples stalled.
        let busy = [30.4, 30.6, 38.0, 30.5, 45.0, 30.7, 30.5];
        let s = judge("busy", &busy, 30.0, 2.0, 30.0);
        assert_eq!(s.min, 30.4);
        assert_eq!(s.median, 30.6);
        // A probe that adds 5 ms to every sample.
        let late = busy.map(|v| v + 5.0);
        assert!(std::panic::catch_unwind(|| judge("late", &late, 30.0, 2.0, 30.0)).is_err());
        // A probe that reports less than the line.
        let early = busy.map(|v| v - 1.0);
        assert!(std::panic::catch_unwind(|| judge("early", &early, 30.0, 2.0, 30.0)).is_err());
        // A probe with an extra round trip on most samples.
        let extra = [30.4, 60.5, 60.6, 60.4, 30.5, 60.7, 60.5];
        assert!(std::panic::catch_unwind(|| judge("extra", &extra, 30.0, 2.0, 30.0)).is_err());
    }
}
