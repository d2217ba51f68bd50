//! Reading samples out of the Prometheus text exposition.

/// The value of the sample `name{...}` carrying every label pair in `labels` (in any order,
/// among others); with no labels, also the unlabelled `name`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| {
            l.starts_with(&format!("{name}{{"))
                || (labels.is_empty() && l.starts_with(&format!("{name} ")))
        })
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// `podgate_auth_failures_total{reason}` as the gateway of `env` exports it now (0 before the
/// first).
pub fn auth_failures(env: &crate::gateway::Env, reason: &str) -> u64 {
    let text = env.gateway.metrics().render();
    sample(&text, "podgate_auth_failures_total", &[("reason", reason)]).map_or(0, |v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn samples_are_found_by_some_of_their_labels() {
        let text = "# TYPE x counter\nx{a=\"1\",b=\"2\"} 3\nx{a=\"2\"} 4\ny 5\n";
        assert_eq!(sample(text, "x", &[("b", "2")]), Some(3.0));
        assert_eq!(sample(text, "x", &[("a", "2")]), Some(4.0));
        assert_eq!(sample(text, "y", &[]), Some(5.0));
        assert_eq!(sample(text, "x", &[("a", "3")]), None);
    }
}
