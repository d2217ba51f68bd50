//! Every scenario, tiny, through an in-process podgate and directly against the devcluster
//! behind it: the load generator speaks the protocol right and reports every figure.

use podgate_benches::run::{self, Profile, Setup};
use podgate_benches::scenario::{Pods, Scenario, SoakMix};
use podgate_benches::target::{Kubeconfig, SourceAddrs, Target, TlsOptions};
use podgate_testkit::gateway;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_through_podgate_and_directly() {
    podgate_devcluster::install_crypto_provider();
    let demo = gateway::demo().await;
    let cluster = &demo.clusters[0];
    let tls = TlsOptions { resumption: false };
    let sources = Arc::new(SourceAddrs::new(16));
    let gateway = Target::gateway(
        &demo.url(),
        &demo.ids[0],
        gateway::ADMIN,
        &demo.ca_pem,
        tls,
        sources.clone(),
    )
    .await
    .unwrap();
    let direct = Target::direct(
        &Kubeconfig {
            server: cluster.url(),
            ca_pem: cluster.ca_pem().to_string(),
            token: cluster.token("admin").unwrap().to_string(),
        },
        tls,
        sources,
    )
    .await
    .unwrap();
    let setup = Setup {
        gateway: Some(Arc::new(gateway)),
        direct: Some(Arc::new(direct)),
        gateway_pid: None,
        cluster_pid: None,
        pods: Pods {
            namespace: "load".into(),
            echo_pod: "echo-0".into(),
            flood_pod: "flood-0".into(),
            container: None,
        },
        leak_timeout: Duration::from_secs(5),
    };
    let tiny = |s: Scenario| {
        let mut p = Profile::Quick.plan(s);
        p.sessions = match s {
            Scenario::Churn => 30,
            Scenario::Throughput => 2,
            _ => 6,
        };
        p.duration = Duration::from_millis(600);
        p.interval = Duration::from_millis(50);
        p.flood_bytes = 1 << 20;
        p.concurrency = 4;
        p.soak = SoakMix {
            interactive: 3,
            interval: Duration::from_millis(50),
            churn_workers: 2,
            churn_per_s: 20.0,
            floods: 1,
            flood_mb_s: 5.0,
        };
        p.timeout = Duration::from_secs(30);
        p
    };
    let plans: Vec<_> = Scenario::ALL.into_iter().map(tiny).collect();
    run::warm_up(&setup).await.expect("warm-up");
    let (reports, failures) = run::run_all(&setup, &plans).await;
    assert!(failures.is_empty(), "{failures:?}");
    for (name, r) in reports.iter() {
        for t in [r.gateway.as_ref().unwrap(), r.direct.as_ref().unwrap()] {
            assert_eq!(t.errors, 0, "{name}: {:?}", t.error_samples);
            assert!(t.sessions > 0, "{name}");
            assert!(t.setup_p99_ms.is_some(), "{name}");
        }
    }
    let get = |s: Scenario| reports.get(s.name()).unwrap();
    let inter = get(Scenario::Interactive).gateway.as_ref().unwrap();
    assert!(inter.echo_samples >= 6 * 5, "{}", inter.echo_samples);
    assert!(
        get(Scenario::Interactive)
            .ratios
            .contains_key("echo_p99_ms")
    );
    let tp = get(Scenario::Throughput);
    assert!(tp.ratios.contains_key("throughput_mb_s"));
    assert_eq!(
        tp.gateway
            .as_ref()
            .unwrap()
            .per_session_mb_s
            .map(|s| s.min > 0.0),
        Some(true)
    );
    let churn = get(Scenario::Churn).gateway.as_ref().unwrap();
    assert_eq!(churn.sessions, 30);
    assert!(churn.sessions_per_s.unwrap() > 0.0);
    let soak = get(Scenario::Soak).gateway.as_ref().unwrap();
    assert!(
        soak.echo_p99_ms.is_some()
            && soak.throughput_mb_s.is_some()
            && soak.sessions_per_s.is_some()
    );
    demo.shutdown().await;
}
