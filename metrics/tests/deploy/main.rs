//! Tests of deploy/: the kustomizations render and every object parses into its Kubernetes type
//! (manifests), and the alert rules pass promtool's checks and unit tests (rules). That every
//! PromQL expression of the alerts and the dashboard returns data from a real Prometheus
//! scraping a running gateway is tested end to end, in tests/tests/prometheus.rs.

mod manifests;
mod rules;
