//! Logs and traces: `tracing-subscriber` to stderr (text or JSON, the level from `RUST_LOG`),
//! and with the `otel` feature and `[server] otlp_endpoint`, the sessions' and turns' spans
//! (`session`, `turn`) exported over OTLP/HTTP.

use crate::config::LogFormat;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the trace exporter alive; dropping it flushes what is left and stops it.
#[must_use = "dropping the guard stops the trace export"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("claude-supervisor: flushing the traces failed: {e}");
        }
    }
}

/// Installs the global subscriber: logs at `default_level` (unless `RUST_LOG` says otherwise)
/// in `format`, and spans to `otlp_endpoint` (the full URL, `http://collector:4318/v1/traces`)
/// when given.
///
/// # Errors
///
/// The exporter could not be built, or `otlp_endpoint` was given to a build without `otel`.
pub fn init(
    default_level: &str,
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> Result<Telemetry, String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    match otlp_endpoint {
        None => {
            registry.init();
            Ok(Telemetry {
                #[cfg(feature = "otel")]
                provider: None,
            })
        }
        #[cfg(feature = "otel")]
        Some(endpoint) => {
            use opentelemetry::trace::TracerProvider as _;
            use opentelemetry_otlp::WithExportConfig as _;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| format!("config key `server.otlp_endpoint` ({endpoint}): {e}"))?;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("claude-supervisor")
                        .build(),
                )
                .build();
            let tracer = provider.tracer("claude-supervisor");
            registry
                .with(tracing_opentelemetry::layer().with_tracer(tracer))
                .init();
            Ok(Telemetry {
                provider: Some(provider),
            })
        }
        #[cfg(not(feature = "otel"))]
        Some(_) => Err(
            "config key `server.otlp_endpoint`: this build has no OpenTelemetry export (build with the `otel` feature)"
                .into(),
        ),
    }
}
