//! `--log`, `--log-format text|json` and `--debug`, in runc's shapes:
//! `{"level":"error","msg":"...","time":"..."}` per line for json, logfmt for text.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => bail!("unknown log format {other:?} (text or json)"),
        }
    }
}

struct Logger {
    format: Format,
    out: Mutex<Box<dyn Write + Send>>,
}

/// One log line for `level` and `msg`, without the newline.
pub fn format_line(format: Format, level: log::Level, msg: &str) -> String {
    let level = match level {
        log::Level::Warn => "warning".to_string(),
        l => l.as_str().to_ascii_lowercase(),
    };
    let time = crate::state::now_rfc3339();
    match format {
        Format::Json => serde_json::json!({"level": level, "msg": msg, "time": time}).to_string(),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}"),
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(self.format, record.level(), &record.args().to_string());
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }

    fn flush(&self) {}
}

/// Sets the global logger; with no file, lines go to stderr.
pub fn init(file: Option<&Path>, format: Format, debug: bool) -> Result<()> {
    let out: Box<dyn Write + Send> = match file {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    log::set_max_level(if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    });
    log::set_boxed_logger(Box::new(Logger {
        format,
        out: Mutex::new(out),
    }))
    .context("installing the logger")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_is_runc_shaped() {
        let line = format_line(Format::Json, log::Level::Error, "container \"x\" does not exist");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn text_line_quotes_message() {
        let line = format_line(Format::Text, log::Level::Warn, "a b");
        assert!(line.contains("level=warning msg=\"a b\""), "{line}");
    }
}
