//! deploy/monitoring/ as the tests read it: the PrometheusRule's alerts and the Grafana
//! dashboard's queries.

use serde_json::Value;

use super::{deploy, read};

/// The PrometheusRule's `spec`: a Prometheus rule file (`groups:`), as promtool reads it.
pub fn rule_groups() -> Value {
    let path = deploy("monitoring/prometheusrule.yaml");
    let rule: Value = serde_norway::from_str(&read(&path)).expect("PrometheusRule YAML");
    assert_eq!(rule["kind"], "PrometheusRule");
    rule["spec"].clone()
}

/// `(alert name, expression)` for every alerting rule.
pub fn alerts() -> Vec<(String, String)> {
    let spec = rule_groups();
    let mut out = Vec::new();
    for group in spec["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().expect("alerting rules only");
            let expr = rule["expr"].as_str().expect("expr");
            out.push((name.to_string(), expr.trim().to_string()));
        }
    }
    assert!(!out.is_empty());
    out
}

pub fn dashboard() -> Value {
    let path = deploy("monitoring/podgate-dashboard.json");
    serde_json::from_str(&read(&path)).expect("dashboard JSON")
}

/// Every panel of the dashboard, rows' nested panels included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `(panel title, refId, expression)` for every query of the dashboard.
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("?").to_string(),
                t["refId"].as_str().unwrap_or("?").to_string(),
                t["expr"]
                    .as_str()
                    .expect("every target has an expr")
                    .to_string(),
            ));
        }
    }
    out
}
