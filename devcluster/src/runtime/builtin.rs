//! In-process containers: no child, no pty, a few hundred bytes each, so tens of thousands of
//! sessions fit on one machine for load tests.

use super::{Exit, Input, Output};
use bytes::Bytes;
use podgate_protocol::STDOUT;
use tokio::sync::mpsc;

/// Echoes stdin to stdout until stdin closes (exit 0) or the client goes away.
pub async fn echo(mut input: mpsc::Receiver<Input>, out: Output) -> Exit {
    while let Some(msg) = input.recv().await {
        match msg {
            Input::Stdin(data) => {
                if out.send(STDOUT, data).await.is_err() {
                    break;
                }
            }
            Input::StdinClosed => return Exit::Code(0, String::new()),
            Input::Resize(_) => {}
        }
    }
    Exit::Code(0, String::new())
}

const CHUNK: usize = 32 * 1024;

/// Writes `bytes` of output (0 = without end) as fast as the reader takes it, then exits 0.
/// Input is read and dropped meanwhile so resizes never block the client.
pub async fn flood(bytes: u64, mut input: mpsc::Receiver<Input>, out: Output) -> Exit {
    let chunk: Bytes = (0..CHUNK)
        .map(|i| b"0123456789abcdef\n"[i % 17])
        .collect::<Vec<u8>>()
        .into();
    let write = async {
        let mut left = bytes;
        while bytes == 0 || left > 0 {
            let n = if bytes == 0 {
                CHUNK as u64
            } else {
                left.min(CHUNK as u64)
            };
            // `n` is at most CHUNK, so it fits in usize.
            if out.send(STDOUT, chunk.slice(..n as usize)).await.is_err() {
                break;
            }
            left = left.saturating_sub(n);
        }
    };
    let drain = async {
        while input.recv().await.is_some() {}
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = write => {}
        _ = drain => {}
    }
    Exit::Code(0, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echo_echoes_then_exits_on_close() {
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let task = tokio::spawn(echo(in_rx, Output::new(out_tx)));
        in_tx
            .send(Input::Stdin(Bytes::from_static(b"hi")))
            .await
            .unwrap();
        assert_eq!(
            out_rx.recv().await.unwrap(),
            (STDOUT, Bytes::from_static(b"hi"))
        );
        in_tx.send(Input::StdinClosed).await.unwrap();
        assert_eq!(task.await.unwrap(), Exit::Code(0, String::new()));
    }

    #[tokio::test]
    async fn flood_writes_exactly_the_byte_count() {
        let (_in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let task = tokio::spawn(flood(100_000, in_rx, Output::new(out_tx)));
        let mut total = 0;
        while let Some((s, d)) = out_rx.recv().await {
            assert_eq!(s, STDOUT);
            total += d.len();
        }
        assert_eq!(total, 100_000);
        assert_eq!(task.await.unwrap(), Exit::Code(0, String::new()));
    }
}
