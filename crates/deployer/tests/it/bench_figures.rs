//! The arithmetic of `benches/local_invoke` (`bench/run`'s figures of the
//! function), tested here: a bench target with its own `main` runs no tests.

use std::time::Duration;

#[path = "../../benches/local_invoke/figures.rs"]
mod figures;

use figures::{parse_vm_hwm, peak_rss_kb, percentile};

#[test]
fn percentiles_take_the_nearest_rank() {
    let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(50));
    assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
    assert_eq!(percentile(&sorted[..1], 0.99), Duration::from_millis(1));
    assert_eq!(percentile(&[], 0.5), Duration::ZERO);
}

#[test]
fn vm_hwm_is_read_in_kb() {
    let status = "Name:\tbootstrap\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
    assert_eq!(parse_vm_hwm(status), Some(5120));
    assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    assert!(peak_rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
}
