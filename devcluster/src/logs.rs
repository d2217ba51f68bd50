//! `pods/{pod}/log`: each container's log is a few deterministic lines, and with `follow`
//! a new line every [`FOLLOW_EVERY`] until the client leaves, so `kubectl logs -f` through a
//! proxy has something to stream.

use bytes::Bytes;
use hyper::{Response, StatusCode};
use podgate_protocol::http::{Body, with_type};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const FOLLOW_EVERY: Duration = Duration::from_millis(200);
const INITIAL_LINES: u64 = 3;

fn line(pod: &str, container: &str, n: u64) -> Bytes {
    Bytes::from(format!("devcluster {pod}/{container}: log line {n}\n"))
}

pub fn serve(
    pod: &str,
    container: &str,
    query: &str,
    shutdown: CancellationToken,
) -> Response<Body> {
    use futures_util::StreamExt as _;
    let mut follow = false;
    let mut tail: Option<u64> = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "follow" => follow = v == "true" || v == "1",
            "tailLines" => tail = v.parse().ok(),
            _ => {}
        }
    }
    let first = INITIAL_LINES.saturating_sub(tail.unwrap_or(INITIAL_LINES).min(INITIAL_LINES)) + 1;
    let (pod, container) = (pod.to_string(), container.to_string());
    let initial: Vec<Result<hyper::body::Frame<Bytes>, std::io::Error>> = (first..=INITIAL_LINES)
        .map(|n| Ok(hyper::body::Frame::data(line(&pod, &container, n))))
        .collect();
    let more = futures_util::stream::unfold(INITIAL_LINES + 1, move |n| {
        let (pod, container, shutdown) = (pod.clone(), container.clone(), shutdown.clone());
        async move {
            if !follow {
                return None;
            }
            tokio::select! {
                _ = shutdown.cancelled() => None,
                _ = tokio::time::sleep(FOLLOW_EVERY) => Some((Ok(hyper::body::Frame::data(line(&pod, &container, n))), n + 1)),
            }
        }
    });
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(initial).chain(more));
    with_type(
        StatusCode::OK,
        "text/plain",
        http_body_util::BodyExt::boxed(body),
    )
}
