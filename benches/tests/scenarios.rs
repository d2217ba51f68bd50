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
    // The reference relay in front of the same cluster, in-process.
    let pem = podgate_devcluster::tls::generate_pem(&["127.0.0.1".into()]).unwrap();
    let relay = podgate_benches::relay::Relay::new(
        &pem.cert_pem,
        &pem.key_pem,
        cluster.addr(),
        "127.0.0.1",
        cluster.ca_pem(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!("https://{}", listener.local_addr().unwrap());
    let relay_task = tokio::spawn(Arc::new(relay).serve(listener));
    let reference = Target::relay(
        &relay_url,
        &pem.ca_pem,
        &Kubeconfig {
            server: cluster.url(),
            ca_pem: cluster.ca_pem().to_string(),
            token: cluster.token("admin").unwrap().to_string(),
        },
        tls,
        Arc::new(SourceAddrs::new(16)),
    )
    .await
    .unwrap();
    let setup = Setup {
        gateway: Some(Arc::new(gateway)),
        direct: Some(Arc::new(direct)),
        reference: Some(Arc::new(reference)),
        reference_pid: None,
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
    // Throughput, churn and interactive ran through the reference relay too (throughput
    // byte-exact and measured); idle and soak did not.
    let floor = tp
        .reference_relay
        .as_ref()
        .expect("the reference relay's result");
    assert_eq!(floor.errors, 0, "{:?}", floor.error_samples);
    assert_eq!(floor.sessions, 2);
    assert_eq!(floor.stdout_bytes, 2 << 20);
    assert!(tp.ratios_to_reference.contains_key("throughput_mb_s"));
    for (name, r) in reports.iter() {
        let through_relay = [Scenario::Throughput, Scenario::Churn, Scenario::Interactive]
            .iter()
            .any(|s| s.name() == *name);
        match &r.reference_relay {
            Some(f) => {
                assert!(through_relay, "{name} ran through the reference relay");
                assert_eq!(f.errors, 0, "{name}: {:?}", f.error_samples);
                assert!(f.sessions > 0, "{name}: no session through the relay");
            }
            None => assert!(
                !through_relay,
                "{name} did not run through the reference relay"
            ),
        }
    }
    let floor = get(Scenario::Interactive)
        .reference_relay
        .as_ref()
        .expect("interactive through the reference relay");
    assert!(floor.echo_p99_ms.is_some_and(|p| p > 0.0));
    let churn = get(Scenario::Churn).gateway.as_ref().unwrap();
    assert_eq!(churn.sessions, 30);
    assert!(churn.sessions_per_s.unwrap() > 0.0);
    let soak = get(Scenario::Soak).gateway.as_ref().unwrap();
    assert!(
        soak.echo_p99_ms.is_some()
            && soak.throughput_mb_s.is_some()
            && soak.sessions_per_s.is_some()
    );
    relay_task.abort();
    demo.shutdown().await;
}
