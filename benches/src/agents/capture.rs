//! What the in-process agents log, kept with the instant it happened: each `tunnel up` (an
//! agent's tunnel accepted, its HTTP/2 server running) and each warning (a failed dial, a
//! tunnel that ended), by cluster. Only podgate's own INFO and above is enabled, so hyper's
//! and h2's trace events cost nothing.

use std::sync::Mutex;
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::layer::{Context, Layer};

#[derive(Debug, Clone)]
pub struct Logged {
    pub at: Instant,
    /// The agent's index (`edge-{i}`), when the event names a cluster.
    pub agent: Option<usize>,
    pub up: bool,
    pub warning: bool,
    pub message: String,
}

static LOGGED: Mutex<Vec<Logged>> = Mutex::new(Vec::new());

/// Everything logged since `since`.
pub fn since(since: Instant) -> Vec<Logged> {
    LOGGED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|l| l.at >= since)
        .cloned()
        .collect()
}

pub fn install() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::registry().with(Capture).try_init();
}

struct Capture;

fn wanted(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("podgate") && *meta.level() <= Level::INFO
}

#[derive(Default)]
struct Fields {
    cluster: Option<String>,
    message: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "cluster" => self.cluster = Some(format!("{value:?}")),
            "message" => self.message = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "cluster" => self.cluster = Some(value.to_string()),
            "message" => self.message = value.to_string(),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        wanted(meta)
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let agent = f
            .cluster
            .as_deref()
            .and_then(|c| c.strip_prefix("edge-"))
            .and_then(|i| i.parse().ok());
        let logged = Logged {
            at: Instant::now(),
            agent,
            up: f.message == "tunnel up",
            warning: *event.metadata().level() <= Level::WARN,
            message: f.message,
        };
        LOGGED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(logged);
    }
}
