//! What a shell behind a terminal says its window size is.

use crate::wait::read_until;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};

/// How long the shell has to report a size.
const LIMIT: Duration = Duration::from_secs(20);

/// Asks the shell (typing on `w`, reading `r`) for its window size until it reports `want`
/// (`"rows cols"`), within 20 s; returns whether it did. A size travels asynchronously (the
/// first one and a resize alike, on a real cluster too), so the first answers may predate it.
/// `enter` ends the typed line (`"\r"` on a terminal, `"\n"` for a piped shell).
pub async fn until_size(
    w: &mut (impl AsyncWrite + Unpin),
    r: &mut (impl AsyncRead + Unpin),
    want: &str,
    enter: &str,
) -> bool {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        w.write_all(format!("echo SIZE=$(stty size)={enter}").as_bytes())
            .await
            .expect("typed into the shell");
        let mut seen = Vec::new();
        read_until(r, &mut seen, LIMIT, "a size report", |s| {
            reported(s).is_some()
        })
        .await;
        if reported(&String::from_utf8_lossy(&seen)) == Some(want) {
            return true;
        }
    }
    false
}

/// The first `SIZE=<rows cols>=` answer in `text` (the echoed command line has `$(` there).
fn reported(text: &str) -> Option<&str> {
    text.match_indices("SIZE=").find_map(|(i, _)| {
        let rest = &text[i + 5..];
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        rest.find('=').map(|end| &rest[..end])
    })
}

#[cfg(test)]
mod tests {
    use super::reported;

    #[test]
    fn the_answer_is_told_from_the_echoed_command() {
        assert_eq!(reported("echo SIZE=$(stty size)=\r\n"), None);
        assert_eq!(
            reported("echo SIZE=$(stty size)=\r\nSIZE=31 97=\r\n"),
            Some("31 97")
        );
        assert_eq!(reported("SIZE=4"), None);
    }
}
