//! Durations as the view writes them.

/// A duration the block shows: `~42s`, `~3m05s`, `~2h10m`.
pub fn seconds(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    match s {
        0..60 => format!("~{s}s"),
        60..3600 => format!("~{}m{:02}s", s / 60, s % 60),
        _ => format!("~{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A measured duration: `1.25s`, `42.3s`, `12m05s`.
pub fn duration(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else if ms < 600_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
