//! `promtool check rules` and `promtool test rules` on the PrometheusRule.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use podgate_testkit::prometheus as support;

/// Writes the rule groups as `rules.yaml` (JSON is YAML) in a fresh directory.
fn rules_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let groups = serde_json::to_string_pretty(&support::monitoring::rule_groups()).expect("json");
    std::fs::write(dir.path().join("rules.yaml"), groups).expect("write rules");
    dir
}

#[test]
fn alert_rules_pass_promtool_check_rules() {
    let Some(promtool) = support::tool("promtool") else {
        return;
    };
    let dir = rules_dir();
    let out = support::run(
        Command::new(promtool)
            .args(["check", "rules", "rules.yaml"])
            .current_dir(dir.path()),
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_has_a_passing_promtool_unit_test() {
    let tests_path = support::deploy("monitoring/alerts.test.yaml");
    let tests_text = support::read(&tests_path);
    let tests: Value = serde_norway::from_str(&tests_text).expect("alerts.test.yaml");

    // Each alert is expected to fire in some test, and to stay quiet at some evaluation.
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for test in tests["tests"].as_array().expect("tests") {
        for case in test["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            let expected = case["exp_alerts"].as_array().map_or(0, Vec::len);
            if expected > 0 {
                fires.insert(name);
            } else {
                quiet.insert(name);
            }
        }
    }
    let alerts: BTreeSet<String> = support::monitoring::alerts()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(fires, alerts, "alerts with a test where they fire");
    assert_eq!(quiet, alerts, "alerts with a test where they stay quiet");

    let Some(promtool) = support::tool("promtool") else {
        return;
    };
    let dir = rules_dir();
    std::fs::write(dir.path().join("alerts.test.yaml"), tests_text).expect("copy tests");
    let out = support::run(
        Command::new(promtool)
            .args(["test", "rules", "alerts.test.yaml"])
            .current_dir(dir.path()),
    );
    assert!(out.contains("SUCCESS"), "{out}");
}
