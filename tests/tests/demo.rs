//! `podgate demo` cannot become a remote root shell: its pods are this machine's processes and
//! its tokens are public, so it listens on loopback only.

use podgate::app::demo::{DemoError, DemoOptions, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_refuses_any_address_beyond_loopback() {
    for (listen, admin) in [
        ("0.0.0.0:0", None),
        ("[::]:0", None),
        ("127.0.0.1:0", Some("0.0.0.0:0")),
    ] {
        let refused = start(DemoOptions {
            listen: listen.parse().expect("an address"),
            admin_listen: admin.map(|a| a.parse().expect("an address")),
            kubeconfig_out: None,
            audit_out: None,
            recordings: None,
        })
        .await
        .err();
        let Some(e @ DemoError::NotLoopback(_)) = refused else {
            panic!(
                "the demo started on {listen} (admin {admin:?}), or failed otherwise: {refused:?}"
            );
        };
        let message = e.to_string();
        assert!(message.contains("loopback only"), "{message}");
        assert!(message.contains("processes on this machine"), "{message}");
    }
    // Loopback is what it is for.
    let demo = start(DemoOptions {
        listen: "127.0.0.1:0".parse().expect("an address"),
        admin_listen: None,
        kubeconfig_out: None,
        audit_out: None,
        recordings: None,
    })
    .await
    .expect("the demo starts on loopback");
    demo.shutdown().await;
}
