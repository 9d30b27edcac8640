//! `--log`, `--log-format text|json` and `--debug`, in runc's shapes:
//! `{"level":"error","msg":"...","time":"..."}` per line for json, logfmt for text,
//! and logrus's short `ERRO[0000] ...` for text on a terminal.

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
    /// Text to a terminal: logrus's `LEVL[secs] msg`.
    terminal: bool,
    started: std::time::Instant,
    out: Mutex<Box<dyn Write + Send>>,
}

static TO_FILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `--log` sent the lines to a file (then fatal errors also go to
/// stderr as the plain message, as runc prints them).
pub fn to_file() -> bool {
    TO_FILE.load(std::sync::atomic::Ordering::Relaxed)
}

/// logrus's text line on a terminal: `ERRO[0012] msg`.
pub fn terminal_line(level: log::Level, secs: u64, msg: &str) -> String {
    let tag = match level {
        log::Level::Error => "ERRO",
        log::Level::Warn => "WARN",
        log::Level::Info => "INFO",
        log::Level::Debug => "DEBU",
        log::Level::Trace => "TRAC",
    };
    format!("{tag}[{secs:04}] {msg}")
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
        let msg = record.args().to_string();
        let line = if self.terminal {
            terminal_line(record.level(), self.started.elapsed().as_secs(), &msg)
        } else {
            format_line(self.format, record.level(), &msg)
        };
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
    TO_FILE.store(file.is_some(), std::sync::atomic::Ordering::Relaxed);
    let terminal = file.is_none() && format == Format::Text && nix::unistd::isatty(2).unwrap_or(false);
    log::set_max_level(if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    });
    log::set_boxed_logger(Box::new(Logger {
        format,
        terminal,
        started: std::time::Instant::now(),
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
    fn terminal_line_is_logrus_shaped() {
        assert_eq!(
            terminal_line(log::Level::Error, 3, "container not running"),
            "ERRO[0003] container not running"
        );
    }

    #[test]
    fn text_line_quotes_message() {
        let line = format_line(Format::Text, log::Level::Warn, "a b");
        assert!(line.contains("level=warning msg=\"a b\""), "{line}");
    }
}
