//! What the load generator reads about processes: a server's memory and CPU
//! time from `/proc`, and its own open-files limit.

use std::time::Duration;

use crate::error::LoadError;

/// `VmRSS` of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .ok_or_else(|| std::io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

/// User + system CPU time process `pid` has used so far (10 ms resolution).
pub fn cpu_time(pid: u32) -> std::io::Result<Duration> {
    let (user, system) = cpu_times(pid)?;
    Ok(user + system)
}

/// User and system CPU time process `pid` has used so far, apart (10 ms
/// resolution): on loopback the system share holds the kernel's TCP work
/// on both ends of each write.
pub use service::process::cpu_times;

/// CPU time a process used between two readings.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: u32,
    start: (Duration, Duration),
}

impl CpuMeter {
    pub fn start(pid: u32) -> std::io::Result<Self> {
        Ok(Self {
            pid,
            start: cpu_times(pid)?,
        })
    }

    pub fn elapsed(&self) -> std::io::Result<Duration> {
        let (user, system) = self.elapsed_apart()?;
        Ok(user + system)
    }

    /// User and system time since the start, apart.
    pub fn elapsed_apart(&self) -> std::io::Result<(Duration, Duration)> {
        let (user, system) = cpu_times(self.pid)?;
        Ok((
            user.saturating_sub(self.start.0),
            system.saturating_sub(self.start.1),
        ))
    }
}

/// Raises this process's soft open-files limit to its hard limit (every held
/// connection is a descriptor); returns the new soft limit.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let (_, hard) = rlimit::Resource::NOFILE.get()?;
    rlimit::Resource::NOFILE.set(hard, hard)?;
    Ok(hard)
}

/// The current soft open-files limit.
pub fn open_files_limit() -> std::io::Result<u64> {
    Ok(rlimit::Resource::NOFILE.get()?.0)
}

/// Server CPU per unit of work, in milliseconds, when the server was watched.
pub(crate) fn cpu_ms_per(cpu: Option<Duration>, count: usize) -> Option<f64> {
    cpu.filter(|_| count > 0)
        .map(|cpu| crate::stats::millis(cpu) / count as f64)
}

/// Starts the server's CPU meter when a pid was given.
pub(crate) fn cpu_meter(pid: Option<u32>) -> Result<Option<CpuMeter>, LoadError> {
    pid.map(CpuMeter::start)
        .transpose()
        .map_err(LoadError::Process)
}

pub(crate) fn cpu_used(meter: Option<CpuMeter>) -> Result<Option<Duration>, LoadError> {
    meter
        .map(|meter| meter.elapsed())
        .transpose()
        .map_err(LoadError::Process)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_set_and_cpu_time() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).expect("rss") > 0);
        assert!(cpu_time(pid).is_ok());
    }
}
