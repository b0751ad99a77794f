//! Logs as JSON lines on stderr, the shape shell-operator merges into its own log:
//! `{"level":"info","msg":"…","key":"value"}`. Never stdout: in config modes stdout is payload.

use std::fmt::Write as _;
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

struct JsonLines;

#[derive(Default)]
struct Fields(serde_json::Map<String, serde_json::Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, serde_json::Value::String(s));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        let key = if field.name() == "message" {
            "msg"
        } else {
            field.name()
        };
        self.0.insert(key.to_owned(), value);
    }
}

impl<S: Subscriber> Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        fields.0.insert("level".into(), level.into());
        event.record(&mut fields);
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        fields.0.insert("time".into(), time.into());
        let mut line = serde_json::Value::Object(fields.0).to_string();
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Installs the JSON logger. `LOG_LEVEL` (`debug`, `info`, `warn`, `error`) sets the level;
/// default `info`.
pub fn init() {
    let level = std::env::var("LOG_LEVEL")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let filter = match level.as_str() {
        "debug" | "trace" | "warn" | "error" => level,
        "fatal" => "error".to_owned(),
        _ => "info".to_owned(),
    };
    let _ = tracing_subscriber::registry()
        .with(JsonLines.with_filter(EnvFilter::new(format!("istio_hooks={filter},warn"))))
        .try_init();
}
