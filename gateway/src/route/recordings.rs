//! Recordings, for the people allowed to replay them (`operators.replay`):
//!
//! - `GET /podgate/recordings?cluster=&namespace=&pod=&user=&since=&until=&limit=&continue=`:
//!   newest first, in pages (`since`/`until`: RFC 3339 or Unix seconds);
//! - `GET /podgate/recordings/{id}`: the asciicast file itself (`application/x-asciicast`),
//!   for asciinema, asciinema-player or the web UI's replay view. Every replay is audited.

use super::operators::{Operators, Right};
use crate::http::{Body, json, status, with_type};
use crate::recording::store::{self, Query};
use crate::recording::{Key, Recording};
use crate::session::audit::Audit;
use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use podgate_auth::Identity;
use podgate_protocol::Status;
use serde::Serialize;
use std::net::SocketAddr;
use tokio::io::AsyncReadExt as _;

/// A page holds at most this many recordings (`limit`); 50 when the query does not say.
const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 50;

pub struct Recordings<'a> {
    pub recording: &'a Recording,
    pub operators: &'a Operators,
    pub audit: &'a Audit,
}

#[derive(Serialize)]
struct Replayed<'a> {
    user: &'a str,
    groups: Vec<&'a str>,
    source: String,
    recording: &'a str,
    time: String,
}

impl Recordings<'_> {
    pub async fn handle(
        &self,
        method: &Method,
        query: Option<&str>,
        peer: Option<SocketAddr>,
        who: &Identity,
        rest: &[&str],
    ) -> Response<Body> {
        if method != Method::GET {
            return status(&Status::api_error(
                405,
                "MethodNotAllowed",
                format!("{method} is not allowed on recordings: they are read-only"),
            ));
        }
        if !self.operators.allows(Right::Replay, who, "") {
            return status(&Status::api_error(
                403,
                "Forbidden",
                format!(
                    "podgate: user \"{}\" may not list or replay recordings (operators.replay in podgate's config)",
                    who.user()
                ),
            ));
        }
        let Some(sink) = self.recording.sink() else {
            return status(&Status::api_error(
                404,
                "NotFound",
                "this podgate keeps no recordings (recording.dir is not set)",
            ));
        };
        match rest {
            [] => self.list(sink.as_ref(), query).await,
            [id] => self.replay(sink.as_ref(), peer, who, id).await,
            _ => status(&Status::api_error(
                404,
                "NotFound",
                "podgate serves /podgate/recordings and /podgate/recordings/{id}",
            )),
        }
    }

    async fn list(&self, sink: &dyn crate::recording::Sink, query: Option<&str>) -> Response<Body> {
        let q = match parse_query(query) {
            Ok(q) => q,
            Err(message) => return status(&Status::bad_request(message)),
        };
        match store::list(sink, &q).await {
            Ok(page) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "kind": "RecordingList",
                    "items": page.items,
                    "continue": page.next,
                }),
            ),
            Err(e) => {
                tracing::error!("listing recordings failed: {e}");
                status(&Status::api_error(
                    500,
                    "InternalError",
                    format!("podgate could not list its recordings: {e}"),
                ))
            }
        }
    }

    async fn replay(
        &self,
        sink: &dyn crate::recording::Sink,
        peer: Option<SocketAddr>,
        who: &Identity,
        id: &str,
    ) -> Response<Body> {
        let not_found = || {
            status(&Status::api_error(
                404,
                "NotFound",
                format!(
                    "recording \"{}\" not found",
                    id.chars().take(100).collect::<String>()
                ),
            ))
        };
        let Some(key) = Key::parse(id) else {
            return not_found();
        };
        let (file, size) = match sink.open(&key).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
            Err(e) => {
                tracing::error!(recording = %key, "reading a recording failed: {e}");
                return status(&Status::api_error(
                    500,
                    "InternalError",
                    format!("podgate could not read recording \"{key}\": {e}"),
                ));
            }
        };
        self.audit.event(
            "recording_replayed",
            &Replayed {
                user: who.user(),
                groups: who.groups().iter().map(|g| g.as_str()).collect(),
                source: peer.map(|p| p.to_string()).unwrap_or_default(),
                recording: id,
                time: crate::session::audit::timestamp(std::time::SystemTime::now()),
            },
        );
        // The file as it is now (a live session's still grows).
        let body = file_body(file, size);
        let mut resp = with_type(StatusCode::OK, "application/x-asciicast", body);
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{key}.cast\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        resp
    }
}

/// The first `size` bytes of `file`, as a body streamed in chunks of 64 KiB.
fn file_body(file: crate::recording::sink::Reader, size: u64) -> Body {
    let chunks = futures_util::stream::unfold((file, size), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; left.min(64 << 10) as usize];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                let frame = hyper::body::Frame::data(Bytes::from(buf));
                Some((Ok(frame), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    http_body_util::StreamBody::new(chunks).boxed()
}

/// A time as `since`/`until` take it: RFC 3339 or Unix seconds.
fn parse_time(name: &str, v: &str) -> Result<u64, String> {
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(secs);
    }
    v.parse::<k8s_openapi::jiff::Timestamp>()
        .map(|t| t.as_second().max(0) as u64)
        .map_err(|_| {
            format!(
                "{name}={v:?} is not a time: give RFC 3339 (2026-12-01T20:00:00Z) or Unix seconds"
            )
        })
}

fn parse_query(query: Option<&str>) -> Result<Query, String> {
    let mut q = Query {
        limit: DEFAULT_LIMIT,
        ..Query::default()
    };
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let v = v.into_owned();
        match &*k {
            "cluster" => q.cluster = Some(v),
            "namespace" => q.namespace = Some(v),
            "pod" => q.pod = Some(v),
            "user" => q.user = Some(v),
            "since" => q.since = Some(parse_time("since", &v)?),
            "until" => q.until = Some(parse_time("until", &v)?),
            "limit" => {
                q.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| format!("limit={v:?}: give a number from 1 to {MAX_LIMIT}"))?
            }
            "continue" => {
                q.after = Some(store::parse_continue(&v).ok_or_else(|| {
                    "continue: not a token from a previous page of this list".to_string()
                })?)
            }
            other => {
                return Err(format!(
                    "unknown parameter {:?}: recordings filter by cluster, namespace, pod, user, since, until, limit, continue",
                    other.chars().take(40).collect::<String>()
                ));
            }
        }
    }
    if let Some(c) = &q.cluster
        && !crate::recording::key::is_cluster(c)
    {
        return Err(format!("cluster={c:?} is not a cluster id"));
    }
    if !store::valid_range(&q) {
        return Err("since must be before until".into());
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_or_say_why_not() {
        let q = parse_query(Some(
            "cluster=east&user=zo%C3%AB&since=2026-12-01T00:00:00Z&until=1796200000&limit=10",
        ))
        .expect("a query");
        assert_eq!(q.cluster.as_deref(), Some("east"));
        assert_eq!(q.user.as_deref(), Some("zoë"));
        assert_eq!(q.since, Some(1_796_083_200));
        assert_eq!(q.until, Some(1_796_200_000));
        assert_eq!(q.limit, 10);
        assert_eq!(parse_query(None).expect("defaults").limit, DEFAULT_LIMIT);
        for (bad, says) in [
            ("limit=0", "limit"),
            ("limit=100000", "limit"),
            ("since=yesterday", "since"),
            ("since=10&until=5", "before"),
            ("continue=../../etc", "continue"),
            ("cluster=../x", "cluster"),
            ("sort=desc", "unknown parameter"),
        ] {
            let e = parse_query(Some(bad)).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
