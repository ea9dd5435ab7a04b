//! The Prometheus text format, for the services' `/metrics`: a few counters and
//! gauges need no metrics framework.

use std::fmt::Write as _;

/// Writes one metric family's `# HELP` and `# TYPE` lines.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample; `labels` are `(name, value)` pairs (values are escaped).
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (label, value)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(out, "{label}=\"{escaped}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A family of one sample without labels (`kind`: `counter` or `gauge`).
pub fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    sample(out, name, &[], value);
}

/// The scaled mode's gauge, the same on both services: whether Redis answered
/// the node's last probe.
pub fn redis_up(out: &mut String, up: bool) {
    single(
        out,
        "authbridge_redis_up",
        "gauge",
        "1 when Redis answered this node's last probe (scaled mode).",
        u64::from(up),
    );
}

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_the_text_format() {
        let mut out = String::new();
        family(&mut out, "x_total", "counter", "Things.");
        sample(
            &mut out,
            "x_total",
            &[("result", "ok"), ("reason", "a \"b\"")],
            3,
        );
        sample(&mut out, "x_total", &[], 1);
        assert_eq!(
            out,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{result=\"ok\",reason=\"a \\\"b\\\"\"} 3\nx_total 1\n"
        );
    }
}
