//! A process's CPU time, from `/proc`: what the socket-server reads of itself
//! (its allocator's background thread runs only while it is idle) and the load
//! generator of the server it measures.

use std::time::Duration;

/// Linux reports CPU times in clock ticks of `USER_HZ`, 100 on every
/// mainstream architecture.
const TICKS_PER_SECOND: u64 = 100;

/// User and system CPU time process `pid` has used so far, apart (10 ms
/// resolution).
pub fn cpu_times(pid: u32) -> std::io::Result<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count from its closing paren.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime); `fields[0]` is field 3.
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<u64>().ok())
    };
    let time = |ticks: u64| Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND);
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((time(user), time(system))),
        _ => Err(std::io::Error::other(format!(
            "unreadable /proc/{pid}/stat"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_used_some_cpu_time() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(30) {
            std::hint::black_box(0_u64);
        }
        let (user, system) = super::cpu_times(std::process::id()).expect("readable");
        assert!(user + system >= std::time::Duration::from_millis(10));
        assert!(super::cpu_times(u32::MAX).is_err());
    }
}
