//! The memory budget: what a run may use, and the refusal, with the figures, of what would not
//! fit — before anything is allocated.

use retroprop_models::memory::human_bytes;

/// Fraction of physical memory a run may use unless `--memory-budget` says otherwise.
const DEFAULT_FRACTION: f64 = 0.5;
/// Assumed physical memory where it cannot be read (`/proc/meminfo` absent).
const FALLBACK_TOTAL: usize = 8 << 30;

/// A budget in bytes, and where it comes from (for messages).
pub struct Budget {
    pub bytes: usize,
    origin: String,
}

impl Budget {
    /// `--memory-budget GIB` if given, else half of this machine's memory.
    pub fn new(gib: Option<f64>) -> Self {
        match gib {
            Some(g) => Self {
                bytes: (g * f64::from(1u32 << 30)) as usize,
                origin: "--memory-budget".to_string(),
            },
            None => {
                let total = physical_memory().unwrap_or(FALLBACK_TOTAL);
                Self {
                    bytes: (total as f64 * DEFAULT_FRACTION) as usize,
                    origin: format!(
                        "half of this machine's {}; change it with --memory-budget <GiB>",
                        human_bytes(total)
                    ),
                }
            }
        }
    }

    /// `Ok` if `needed` bytes fit; otherwise the message: what, how much, the budget, and what
    /// to change.
    pub fn check(&self, needed: usize, what: &str, change: &str) -> Result<(), String> {
        if needed <= self.bytes {
            return Ok(());
        }
        Err(format!(
            "{what} needs about {}, over the memory budget of {} ({}): {change}",
            human_bytes(needed),
            human_bytes(self.bytes),
            self.origin
        ))
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn physical_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Parses `--memory-budget`: a positive number of GiB.
pub fn parse_gib(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "expected a positive number of GiB (for example 4 or 0.5), got `{s}`"
        )),
    }
}
