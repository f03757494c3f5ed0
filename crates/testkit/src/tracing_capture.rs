//! A `tracing` subscriber that keeps what the process logs, for tests that
//! check what reaches logs and spans (a link token must not; a span must
//! name the right client address).
//!
//! It records every span as it opens (its name and fields), every value
//! recorded into a span later, and every event, each as one line of text
//! — more than the log formatter prints, which shows a span's fields only
//! beside an event inside it. A test process has one global subscriber, so
//! [`captured_logs`] installs it once and every test of the process shares
//! it: tests look for their own marks (a request id, a random value) in it.

use std::fmt::{self, Write as _};
use std::sync::OnceLock;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::log::Log;

/// The lines captured so far in this process.
#[derive(Debug, Default)]
pub struct CapturedLogs {
    lines: Log<String>,
}

impl CapturedLogs {
    /// Every line so far.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.lines.snapshot()
    }

    /// Whether any line contains `needle`.
    #[must_use]
    pub fn contains(&self, needle: &str) -> bool {
        self.lines
            .with(|lines| lines.iter().any(|l| l.contains(needle)))
    }

    /// The lines that contain `needle`.
    #[must_use]
    pub fn matching(&self, needle: &str) -> Vec<String> {
        self.lines.with(|lines| {
            lines
                .iter()
                .filter(|l| l.contains(needle))
                .cloned()
                .collect()
        })
    }

    /// Waits until a line contains `needle`; false if `timeout` passed first.
    pub async fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.lines.len();
            if self.contains(needle) {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.lines.wait_for(seen + 1, left).await {
                return self.contains(needle);
            }
        }
    }
}

/// The process's captured logs, installing the capturing subscriber on the
/// first call (at `INFO`, what production logs by default; `TEST_LOG=1`
/// also prints to stderr, as `heliograph_runtime::init_tracing` would).
/// Call it before anything else installs a global subscriber.
pub fn captured_logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<&'static CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static CapturedLogs = Box::leak(Box::default());
        let printed = std::env::var_os("TEST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(LevelFilter::INFO)
        });
        // Another subscriber already installed means nothing is captured:
        // the tests that read the capture then fail, saying so.
        drop(
            tracing_subscriber::registry()
                .with(Capture { logs }.with_filter(LevelFilter::INFO))
                .with(printed)
                .try_init(),
        );
        logs
    })
}

struct Capture {
    logs: &'static CapturedLogs,
}

/// Writes fields as ` name=value`.
struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut line = format!("span {} #{}:", attrs.metadata().name(), id.into_u64());
        attrs.record(&mut Line(&mut line));
        self.logs.lines.push(line);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut line = format!("record #{}:", id.into_u64());
        values.record(&mut Line(&mut line));
        self.logs.lines.push(line);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let mut line = format!("event {} {}", metadata.level(), metadata.target());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let _ = write!(line, " in #{}", span.id().into_u64());
            }
        }
        line.push(':');
        event.record(&mut Line(&mut line));
        self.logs.lines.push(line);
    }
}
