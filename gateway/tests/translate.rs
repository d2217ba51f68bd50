//! Protocol translation in the relay: a client and a cluster that speak different versions
//! of the remote-command protocol still understand each other through the gateway.

use futures_util::{SinkExt as _, StreamExt as _};
use podgate::app::StartOptions;
use podgate::clusters::{Cluster, ClusterSpec, Registry};
use podgate_devcluster::{DevCluster, Options, Topology};
use podgate_protocol::frame::{self, ChannelFrame};
use podgate_protocol::{Protocol, Status};
use rustls::pki_types::pem::PemObject as _;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};

const TOKEN: &str = "translate-test-admin-token";

struct Env {
    gateway: podgate::app::Running,
    _cluster: DevCluster,
    ca_pem: String,
}

/// A gateway in front of one devcluster that speaks only `protocols`.
async fn start(protocols: &[Protocol]) -> Env {
    podgate_devcluster::install_crypto_provider();
    let mut topology = Topology::builtin();
    topology.protocols = protocols.iter().map(|p| p.name().to_string()).collect();
    let dc = DevCluster::start(Options {
        topology,
        ..Options::default()
    })
    .await
    .expect("devcluster");
    let kc = kube::config::Kubeconfig::from_yaml(&dc.kubeconfig().to_yaml()).expect("kubeconfig");
    let opts = kube::config::KubeConfigOptions {
        context: Some("podgate".into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .expect("kube config");
    let registry = Registry::new();
    let cluster = Cluster::from_kube_config("old", config, true).expect("cluster");
    let summary = registry
        .apply(
            [ClusterSpec::Prebuilt(Arc::new(cluster))],
            &Default::default(),
        )
        .await;
    assert!(summary.failed.is_empty());
    let pem = podgate_devcluster::tls::generate_pem(&["127.0.0.1".into()]).expect("cert");
    let cert =
        podgate::tls::ReloadingCert::from_pem(pem.cert_pem.as_bytes(), pem.key_pem.as_bytes())
            .expect("cert");
    let tokens = podgate_config::parse_tokens(
        std::path::Path::new("t"),
        &format!("- token: {TOKEN}\n  user: admin\n  groups: [system:masters]\n"),
    )
    .expect("tokens");
    let (session_limits, sessions, connections) =
        StartOptions::settings_from(&Default::default(), &Default::default());
    let gateway = podgate::app::start(StartOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: podgate::tls::server_config(Arc::new(cert)),
        clusters: registry,
        authenticator: Arc::new(podgate_auth::StaticTokens::new(tokens)),
        session_limits,
        sessions,
        connections,
    })
    .await
    .expect("gateway");
    Env {
        gateway,
        _cluster: dc,
        ca_pem: pem.ca_pem,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn connect(env: &Env, path: &str, protocols: &[&str]) -> (Ws, Option<String>) {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(env.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(env.gateway.addr)
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let mut req = format!("wss://{}/clusters/old{path}", env.gateway.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {TOKEN}").parse().unwrap());
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        protocols.join(", ").parse().unwrap(),
    );
    let (ws, resp) = tokio_tungstenite::client_async(req, tls)
        .await
        .expect("upgrade");
    let p = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (ws, p)
}

async fn frames(ws: &mut Ws, protocol: Protocol) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("answer within 20 s");
        let (text, payload) = match m {
            Some(Ok(Message::Binary(b))) => (false, b.to_vec()),
            Some(Ok(Message::Text(t))) => (true, t.as_bytes().to_vec()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return out,
            Some(Ok(_)) => continue,
        };
        match frame::decode(protocol, text, &payload)
            .expect("a valid frame for the client's protocol")
        {
            ChannelFrame::Data { stream, data } => out.push((stream, data.into_owned())),
            ChannelFrame::Close { stream } => out.push((255, vec![stream])),
        }
    }
}

fn stream(f: &[(u8, Vec<u8>)], id: u8) -> Vec<u8> {
    f.iter()
        .filter(|(s, _)| *s == id)
        .flat_map(|(_, d)| d.clone())
        .collect()
}

/// A browser speaking only base64 text frames, to a cluster speaking only binary v5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_client_to_binary_cluster() {
    let env = start(&[Protocol::V5]).await;
    let path = "/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=head%20-c%205%3B%20printf%20%27%5C377%5C000%27%3B%20exit%206&stdin=true&stdout=true&stderr=true";
    let (mut ws, chosen) = connect(&env, path, &["v4.base64.channel.k8s.io"]).await;
    assert_eq!(chosen.as_deref(), Some("v4.base64.channel.k8s.io"));
    let stdin = frame::encode(Protocol::V4Base64, frame::STDIN, b"hello");
    ws.send(Message::text(String::from_utf8(stdin.payload).unwrap()))
        .await
        .unwrap();
    let f = frames(&mut ws, Protocol::V4Base64).await;
    assert_eq!(f[0], (frame::STDOUT, vec![]));
    assert_eq!(stream(&f, frame::STDOUT), b"hello\xff\x00");
    let status: Status = serde_json::from_slice(&stream(&f, frame::STATUS)).expect("status JSON");
    assert_eq!(status.exit_code_value(), Some(6));
    env.gateway.shutdown().await;
}

/// kubectl 1.30+ offers only v5; a cluster that speaks only v4 gets the stdin half-close as
/// the close of its WebSocket, the only way v4 has to say it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_client_to_v4_cluster() {
    let env = start(&[Protocol::V4]).await;
    let ok = "/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=exit%209&stdout=true&stderr=true";
    let (mut ws, chosen) = connect(&env, ok, &["v5.channel.k8s.io"]).await;
    assert_eq!(chosen.as_deref(), Some("v5.channel.k8s.io"));
    let f = frames(&mut ws, Protocol::V5).await;
    let status: Status = serde_json::from_slice(&stream(&f, frame::STATUS)).expect("status JSON");
    assert_eq!(status.exit_code_value(), Some(9));

    let cat =
        "/api/v1/namespaces/load/pods/echo-0/exec?command=x&stdin=true&stdout=true&stderr=false";
    let (mut ws, _) = connect(&env, cat, &["v5.channel.k8s.io"]).await;
    ws.send(Message::binary(vec![frame::STDIN, b'h', b'i']))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got != b"hi" {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("echo in time")
        {
            Some(Ok(Message::Binary(b))) if b.len() > 1 && b[0] == frame::STDOUT => {
                got.extend_from_slice(&b[1..])
            }
            Some(Ok(_)) => {}
            other => panic!("session ended early: {other:?}"),
        }
    }
    ws.send(Message::binary(vec![255, frame::STDIN]))
        .await
        .unwrap();
    // The cluster sees its socket closed and ends the session; so does the client.
    frames(&mut ws, Protocol::V5).await;
    let sessions = env.gateway.gateway.limits.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sessions.active() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the session never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.gateway.shutdown().await;
}
