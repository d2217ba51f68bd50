//! A client of podgate's resume protocol (docs/protocol.md, "Resume"), as the web UI speaks
//! it: opts in, keeps the offset of what it read, acknowledges, drops its connection without
//! a close, and resumes with the credential and its offset.

use crate::gateway::Env;
use crate::ws::{self, Ws};
use futures_util::{SinkExt as _, StreamExt as _};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub const OPT_IN: &str = "podgate.resume.v1";
pub const CONTROL: u8 = 128;

/// One resumable session as its page holds it.
pub struct Page {
    pub ws: Option<Ws>,
    pub session: String,
    pub credential: String,
    /// Output bytes (stdout and stderr) read so far: the offset a resume presents.
    pub offset: u64,
    /// Everything read, in order.
    pub output: Vec<u8>,
    /// The control messages read, as JSON.
    pub control: Vec<serde_json::Value>,
    /// Stream-3 payloads.
    pub status: Vec<Vec<u8>>,
    /// The close frame's code and reason, once the server closed.
    pub close: Option<(u16, String)>,
}

/// What reading next found.
#[derive(Debug, PartialEq)]
pub enum Read {
    Output(usize),
    Control(serde_json::Value),
    Status,
    Closed,
}

impl Page {
    /// Opens `query` on `ns/pod` of the env's first cluster as `token`, opted in, and reads
    /// the `hello`.
    pub async fn open(env: &Env, token: &str, ns: &str, pod: &str, query: &str) -> Page {
        let path = format!(
            "/clusters/{}/api/v1/namespaces/{ns}/pods/{pod}/exec?{query}",
            env.ids[0]
        );
        let (ws, chosen) = ws::open(env, token, &path, &[ws::V5, OPT_IN], &[])
            .await
            .unwrap_or_else(|(code, body)| panic!("exec refused: {code} {body}"));
        assert_eq!(chosen.as_deref(), Some(ws::V5));
        let mut page = Page::detached("", "", 0);
        page.ws = Some(ws);
        let hello = page.next_control(Duration::from_secs(10)).await;
        assert_eq!(hello["type"], "hello", "{hello}");
        page.session = hello["session"].as_str().expect("a session id").to_string();
        page.credential = hello["credential"]
            .as_str()
            .expect("a credential")
            .to_string();
        page
    }

    /// A page that holds `session`'s id and `credential` (maybe not the real one) and has
    /// read `offset` bytes, but no connection: what another tab, another person or a replay
    /// of a stolen credential would present.
    pub fn detached(session: &str, credential: &str, offset: u64) -> Page {
        Page {
            ws: None,
            session: session.to_string(),
            credential: credential.to_string(),
            offset,
            output: Vec::new(),
            control: Vec::new(),
            status: Vec::new(),
            close: None,
        }
    }

    fn ws(&mut self) -> &mut Ws {
        self.ws.as_mut().expect("attached")
    }

    /// Reads the next message within `limit`.
    pub async fn read(&mut self, limit: Duration) -> Read {
        // One deadline for the call: pings skipped on the way do not extend it.
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws().next())
                .await
                .unwrap_or_else(|_| panic!("nothing from podgate within {limit:?}"));
            match next {
                Some(Ok(Message::Binary(b))) if b.len() > 1 => match b[0] {
                    1 | 2 => {
                        self.output.extend_from_slice(&b[1..]);
                        self.offset += (b.len() - 1) as u64;
                        return Read::Output(b.len() - 1);
                    }
                    3 => {
                        self.status.push(b[1..].to_vec());
                        return Read::Status;
                    }
                    CONTROL => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&b[1..]).expect("control JSON");
                        self.control.push(v.clone());
                        return Read::Control(v);
                    }
                    other => panic!("unexpected stream {other}"),
                },
                Some(Ok(Message::Close(f))) => {
                    self.close = Some(f.map_or((1005, String::new()), |f| {
                        (f.code.into(), f.reason.to_string())
                    }));
                    // Our close reply goes out as tungstenite reads the close; flush it.
                    let _ = self.ws().flush().await;
                    return Read::Closed;
                }
                None => return Read::Closed,
                Some(Err(e)) => panic!("websocket error: {e}"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next control message (output read meanwhile is kept).
    pub async fn next_control(&mut self, limit: Duration) -> serde_json::Value {
        loop {
            match self.read(limit).await {
                Read::Control(v) => return v,
                Read::Closed => panic!("closed before a control message"),
                _ => {}
            }
        }
    }

    /// Reads until `done` holds for the output read so far (control messages and status kept).
    pub async fn read_until(&mut self, limit: Duration, done: impl Fn(&[u8]) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(&self.output) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.read(left.max(Duration::from_millis(1))).await == Read::Closed {
                panic!(
                    "closed before the output was complete: {:?}",
                    String::from_utf8_lossy(&self.output)
                );
            }
        }
    }

    /// Reads to the close.
    pub async fn read_to_close(&mut self, limit: Duration) {
        while self.read(limit).await != Read::Closed {}
    }

    pub async fn send_stdin(&mut self, data: &[u8]) {
        ws::send_stdin(self.ws(), data).await;
    }

    /// Acknowledges everything read.
    pub async fn ack(&mut self) {
        let m = format!("{{\"type\":\"ack\",\"offset\":{}}}", self.offset);
        let mut frame = vec![CONTROL];
        frame.extend_from_slice(m.as_bytes());
        self.ws()
            .send(Message::binary(frame))
            .await
            .expect("ack sent");
    }

    /// Drops the connection without a close frame (a network that vanished).
    pub fn drop_connection(&mut self) {
        self.ws = None;
    }

    /// Resumes as `token` with this page's credential and offset: the `resumed` message, or
    /// the `refused` one (the connection is then closed).
    pub async fn resume(&mut self, env: &Env, token: &str) -> serde_json::Value {
        let (credential, offset) = (self.credential.clone(), self.offset);
        self.resume_with(env, token, &credential, offset).await
    }

    pub async fn resume_with(
        &mut self,
        env: &Env,
        token: &str,
        credential: &str,
        offset: u64,
    ) -> serde_json::Value {
        let path = format!("/podgate/sessions/{}/resume", self.session);
        let c = format!("resume.podgate.io.{credential}");
        let o = format!("offset.podgate.io.{offset}");
        let (ws, chosen) = ws::open(env, token, &path, &[ws::V5, OPT_IN, &c, &o], &[])
            .await
            .unwrap_or_else(|(code, body)| panic!("resume upgrade refused: {code} {body}"));
        assert_eq!(chosen.as_deref(), Some(ws::V5));
        self.ws = Some(ws);
        self.close = None;
        self.next_control(Duration::from_secs(10)).await
    }
}

/// `name{labels}` from the gateway's metrics now (0 when absent).
pub fn metric(env: &Env, name: &str, labels: &[(&str, &str)]) -> f64 {
    crate::metrics::sample(&env.gateway.metrics().render(), name, labels).unwrap_or(0.0)
}
