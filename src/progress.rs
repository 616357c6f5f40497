//! Plain progress lines for long work when stderr is not a terminal (CI jobs,
//! `nohup`, redirected logs), where progress bars draw nothing: a line such as
//! `eval asdiv: 12/40 items (30%), 0.41 items/s, ETA 1m08s` at least every
//! 30 s, from a timer thread so the line comes even while one item runs long.
//! On a terminal the commands' progress bars do this job and no line is printed.
//!
//! `MSCR_PROGRESS_SECS=N` changes the interval (tests use a short one);
//! `MSCR_PROGRESS_SECS=0` turns the lines off.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The default interval between lines.
pub const DEFAULT_SECS: f64 = 30.0;

struct Shared {
    label: Mutex<String>,
    unit: String,
    total: AtomicUsize,
    done: AtomicUsize,
    start: Instant,
    /// Set (and notified) when the work ends.
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    fn line(&self) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let label = self.label.lock().unwrap_or_else(|p| p.into_inner()).clone();
        line(&label, &self.unit, done, total, self.start.elapsed())
    }
}

/// `label: done/total unit (pct), rate unit/s, ETA …` (rate and ETA once
/// something is done).
pub fn line(label: &str, unit: &str, done: usize, total: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let pct = if total == 0 {
        100.0
    } else {
        100.0 * done as f64 / total as f64
    };
    let mut s = format!("{label}: {done}/{total} {unit} ({pct:.0}%)");
    if done > 0 && secs > 0.0 {
        let rate = done as f64 / secs;
        let left = total.saturating_sub(done) as f64 / rate;
        s.push_str(&format!(
            ", {rate:.2} {unit}/s, ETA {}",
            duration(Duration::from_secs_f64(left))
        ));
    } else {
        s.push_str(&format!(", {} elapsed", duration(elapsed)));
    }
    s
}

/// `1h02m`, `3m05s`, `42s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The interval from `MSCR_PROGRESS_SECS` (None: lines off).
fn interval() -> Option<Duration> {
    let secs = match std::env::var("MSCR_PROGRESS_SECS") {
        Ok(v) => v.trim().parse::<f64>().unwrap_or(DEFAULT_SECS),
        Err(_) => DEFAULT_SECS,
    };
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Progress of one long piece of work. Lines are printed only when stderr is
/// not a terminal; dropping it prints a last line and stops the timer.
pub struct Progress {
    shared: Arc<Shared>,
    timer: Option<JoinHandle<()>>,
}

impl Progress {
    /// `label` names the work (`eval asdiv`), `unit` what is counted (`items`).
    pub fn new(label: &str, unit: &str, total: usize) -> Progress {
        let enabled = !std::io::stderr().is_terminal();
        Self::with_lines(label, unit, total, enabled)
    }

    /// As [`Progress::new`], printing lines when `lines` is true (and the
    /// interval is not turned off).
    pub fn with_lines(label: &str, unit: &str, total: usize, lines: bool) -> Progress {
        let shared = Arc::new(Shared {
            label: Mutex::new(label.to_string()),
            unit: unit.to_string(),
            total: AtomicUsize::new(total),
            done: AtomicUsize::new(0),
            start: Instant::now(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let timer = match (lines, interval()) {
            (true, Some(every)) => {
                let sh = shared.clone();
                Some(std::thread::spawn(move || {
                    let mut stopped = sh.stop.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        let (guard, _) = sh
                            .wake
                            .wait_timeout(stopped, every)
                            .unwrap_or_else(|p| p.into_inner());
                        stopped = guard;
                        if *stopped {
                            break;
                        }
                        eprintln!("{}", sh.line());
                    }
                }))
            }
            _ => None,
        };
        Progress { shared, timer }
    }

    pub fn inc(&self, n: usize) {
        self.shared.done.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set_total(&self, total: usize) {
        self.shared.total.store(total, Ordering::Relaxed);
    }

    /// Renames the work (e.g. the campaign cell now running).
    pub fn set_label(&self, label: &str) {
        *self.shared.label.lock().unwrap_or_else(|p| p.into_inner()) = label.to_string();
    }

    /// The line as it would be printed now.
    pub fn line(&self) -> String {
        self.shared.line()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            *self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
            self.shared.wake.notify_all();
            let _ = t.join();
            eprintln!("{}", self.shared.line());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_counts_rate_and_eta() {
        let l = line("eval asdiv", "items", 10, 40, Duration::from_secs(20));
        assert_eq!(l, "eval asdiv: 10/40 items (25%), 0.50 items/s, ETA 1m00s");
        let l = line("campaign", "questions", 0, 8, Duration::from_secs(3725));
        assert_eq!(l, "campaign: 0/8 questions (0%), 1h02m elapsed");
    }

    #[test]
    fn counts_and_labels_update() {
        let p = Progress::with_lines("a", "items", 3, false);
        p.inc(2);
        p.set_label("b");
        p.set_total(4);
        assert!(p.line().starts_with("b: 2/4 items (50%)"), "{}", p.line());
    }
}
