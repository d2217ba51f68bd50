//! Micro-benchmarks of the pure functions on podgate's per-frame and per-session paths:
//! the channel frame codec (every frame when translating between sub-protocols, and decode
//! for counting on every frame), sub-protocol negotiation and exec query parsing (every
//! session setup), and static token lookup (every request).
//!
//! `cargo bench -p podgate-benches --bench codec`; `-- --quick` for a fast pass.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use podgate_protocol::{Protocol, Subresource, frame, query, subprotocol};
use std::hint::black_box;
use std::path::Path;

/// A keystroke, a line of shell output, and builtin:flood's chunk.
const SIZES: [usize; 3] = [1, 80, 32 * 1024];

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| b"0123456789abcdef\n"[i % 17]).collect()
}

fn frame_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame/decode");
    for n in SIZES {
        g.throughput(Throughput::Bytes(n as u64));
        let bin = frame::encode(Protocol::V5, frame::STDOUT, &payload(n)).payload;
        g.bench_with_input(BenchmarkId::new("v5", n), &bin, |b, p| {
            b.iter(|| frame::decode(Protocol::V5, false, black_box(p)))
        });
        let text = frame::encode(Protocol::V4Base64, frame::STDOUT, &payload(n)).payload;
        g.bench_with_input(BenchmarkId::new("v4.base64", n), &text, |b, p| {
            b.iter(|| frame::decode(Protocol::V4Base64, true, black_box(p)))
        });
    }
    g.bench_function("v5/close_signal", |b| {
        b.iter(|| frame::decode(Protocol::V5, false, black_box(&[255, 0])))
    });
    g.finish();

    let mut g = c.benchmark_group("frame/encode");
    for n in SIZES {
        g.throughput(Throughput::Bytes(n as u64));
        let data = payload(n);
        g.bench_with_input(BenchmarkId::new("v5", n), &data, |b, d| {
            b.iter(|| frame::encode(Protocol::V5, frame::STDOUT, black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("v4.base64", n), &data, |b, d| {
            b.iter(|| frame::encode(Protocol::V4Base64, frame::STDOUT, black_box(d)))
        });
    }
    g.finish();
}

fn setup_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("subprotocol/negotiate");
    let bearer =
        subprotocol::bearer_entry("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl");
    let browser = format!("{bearer}, v4.base64.channel.k8s.io");
    let offers: [(&str, Vec<&str>); 3] = [
        ("kubectl", vec!["v5.channel.k8s.io"]),
        ("kube-rs", vec!["v5.channel.k8s.io, v4.channel.k8s.io"]),
        ("browser_bearer", vec![browser.as_str()]),
    ];
    for (name, headers) in &offers {
        g.bench_with_input(BenchmarkId::from_parameter(name), headers, |b, h| {
            b.iter(|| subprotocol::negotiate(black_box(h).iter().copied(), &Protocol::ALL))
        });
    }
    g.finish();

    c.bench_function("query/parse_exec", |b| {
        let q = "command=sh&command=-c&command=command%20-v%20bash%20%3E%2Fdev%2Fnull%20%26%26%20exec%20bash%20%7C%7C%20exec%20sh&container=main&stdin=true&stdout=true&stderr=false&tty=true";
        b.iter(|| query::parse(black_box(q), Subresource::Exec))
    });
}

fn tokens(c: &mut Criterion) {
    let mut g = c.benchmark_group("tokens/lookup");
    for n in [10usize, 1000] {
        let text: String = (0..n)
            .map(|i| format!("- token: {i:064x}\n  user: user-{i}\n  groups: [dev]\n"))
            .collect();
        let table = podgate_auth::parse_tokens(Path::new("tokens.yaml"), &text)
            .expect("a valid tokens file");
        let last = format!("{:064x}", n - 1);
        g.bench_with_input(BenchmarkId::new("hit_last", n), &last, |b, t| {
            b.iter(|| table.lookup(black_box(t)).is_some())
        });
        let miss = "f".repeat(64);
        g.bench_with_input(BenchmarkId::new("miss", n), &miss, |b, t| {
            b.iter(|| table.lookup(black_box(t)).is_some())
        });
    }
    g.finish();
}

criterion_group!(benches, frame_codec, setup_path, tokens);
criterion_main!(benches);
