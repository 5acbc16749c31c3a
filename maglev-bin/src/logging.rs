//! The daemon's logging (SPEC §8.3): JSON lines (or text) on stdout at
//! `--log-level`, plus the [`LogLayer`] that feeds `WatchEvents`
//! subscribers at their own levels. The first record is `starting`.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::daemon::Parts;
use crate::events::LogLayer;

/// How log records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Installs the global subscriber and logs `starting`.
pub fn init_logging(level: &str, format: LogFormat, parts: &Parts) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("--log-level {level:?}: {e}"))?;
    let output = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stdout)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .with(
            LogLayer::new(parts.hub.clone(), parts.clock.clone())
                .with_filter(LogLayer::filter(parts.hub.clone())),
        )
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    tracing::info!(
        version = crate::VERSION,
        commit = crate::COMMIT,
        date = crate::BUILD_DATE,
        "starting"
    );
    Ok(())
}
