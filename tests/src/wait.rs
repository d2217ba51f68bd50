//! Waiting on a condition with a timeout (never a bare sleep), and reading a stream until
//! something shows.

use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// How often [`wait_for`] looks again.
const EVERY: Duration = Duration::from_millis(20);

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held. It
/// is always asked once, and once more at the deadline.
pub async fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    // Not through `wait_until`: a future holding an async closure is not `Send` for every
    // lifetime, and tests spawn tasks that wait.
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(EVERY).await;
    }
    true
}

/// Polls the asynchronous `cond` (a request, a command) every `every` until it holds or
/// `timeout` passes; returns whether it held, as [`wait_for`] does.
pub async fn wait_until(
    timeout: Duration,
    every: Duration,
    mut cond: impl AsyncFnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond().await {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
    true
}

/// Reads `r` into `seen` until `done(seen)` holds; panics with what was seen after `limit`
/// or at the end of the stream.
pub async fn read_until(
    r: &mut (impl AsyncRead + Unpin),
    seen: &mut Vec<u8>,
    limit: Duration,
    what: &str,
    done: impl Fn(&str) -> bool,
) {
    let found = tokio::time::timeout(limit, async {
        while !done(&String::from_utf8_lossy(seen)) {
            let mut buf = [0u8; 8192];
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "never saw {what} in {:?}",
        String::from_utf8_lossy(seen)
    );
}
