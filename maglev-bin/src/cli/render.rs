//! Rendering for people: aligned tables and key/value blocks that stay
//! aligned with and without color (widths are measured on the text, color
//! is added after padding), state colors (SPEC §16.6), and human
//! durations, ages and UTC times.

use std::time::Duration;

/// How a piece of text is painted when color is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    /// As is.
    Plain,
    /// Field labels and table headers (dark blue).
    Label,
    /// A healthy state.
    Green,
    /// A failed state, and errors.
    Red,
    /// An unknown state.
    Yellow,
    /// Paused, disabled or removed: out of service on purpose.
    Dim,
    /// Emphasis.
    Bold,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Paint::Plain => "",
            Paint::Label => "\x1b[34m",
            Paint::Green => "\x1b[32m",
            Paint::Red => "\x1b[31m",
            Paint::Yellow => "\x1b[33m",
            Paint::Dim => "\x1b[2m",
            Paint::Bold => "\x1b[1m",
        }
    }

    /// The paint of a backend or frontend state word.
    pub fn state(state: &str) -> Paint {
        match state {
            "up" => Paint::Green,
            "down" => Paint::Red,
            "unknown" => Paint::Yellow,
            "paused" | "disabled" | "removed" => Paint::Dim,
            _ => Paint::Plain,
        }
    }
}

/// Whether output is colored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Color on.
    pub color: bool,
}

impl Style {
    /// `text` painted (or as is with color off).
    pub fn paint(self, text: &str, paint: Paint) -> String {
        if !self.color || paint == Paint::Plain || text.is_empty() {
            text.to_owned()
        } else {
            format!("{}{text}\x1b[0m", paint.code())
        }
    }

    /// An error message as the shell and one-shot mode print it.
    pub fn error(self, message: &str) -> String {
        self.paint(message, Paint::Red)
    }
}

/// One table cell: its text and paint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// The text.
    pub text: String,
    /// Its paint.
    pub paint: Paint,
}

impl Cell {
    /// A plain cell.
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            paint: Paint::Plain,
        }
    }

    /// A cell painted as a state.
    pub fn state(text: &str) -> Cell {
        Cell {
            text: text.to_owned(),
            paint: Paint::state(text),
        }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::plain(s)
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::plain(s)
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// An aligned table with a header row.
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<Cell>>,
    indent: usize,
}

impl Table {
    /// A table with these column headers.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            indent: 0,
        }
    }

    /// Indents every line by `n` blanks.
    pub fn indent(mut self, n: usize) -> Table {
        self.indent = n;
        self
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The lines, each ending in a newline, with no trailing blanks.
    pub fn render(&self, style: Style) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(width(&c.text));
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<(&str, Paint)>, out: &mut String| {
            let start = out.len();
            out.push_str(&" ".repeat(self.indent));
            let n = cells.len();
            for (i, (text, paint)) in cells.into_iter().enumerate() {
                out.push_str(&style.paint(text, paint));
                if i + 1 < n {
                    out.push_str(&" ".repeat(widths[i] - width(text) + 2));
                }
            }
            // An empty last column leaves no padding behind.
            let kept = out[start..].trim_end_matches(' ').len();
            out.truncate(start + kept);
            out.push('\n');
        };
        line(
            self.header
                .iter()
                .map(|h| (h.as_str(), Paint::Label))
                .collect(),
            &mut out,
        );
        for r in &self.rows {
            line(
                r.iter()
                    .take(cols)
                    .map(|c| (c.text.as_str(), c.paint))
                    .collect(),
                &mut out,
            );
        }
        out
    }
}

/// A block of `label value` lines with the values aligned.
#[derive(Clone, Debug, Default)]
pub struct Block {
    rows: Vec<(String, Cell)>,
    indent: usize,
}

impl Block {
    /// An empty block.
    pub fn new() -> Block {
        Block::default()
    }

    /// Indents every line by `n` blanks.
    pub fn indent(mut self, n: usize) -> Block {
        self.indent = n;
        self
    }

    /// Adds a line.
    pub fn kv(&mut self, label: &str, value: impl Into<Cell>) -> &mut Block {
        self.rows.push((label.to_owned(), value.into()));
        self
    }

    /// The lines, each ending in a newline.
    pub fn render(&self, style: Style) -> String {
        let w = self.rows.iter().map(|(l, _)| width(l)).max().unwrap_or(0);
        let mut out = String::new();
        for (label, value) in &self.rows {
            out.push_str(&" ".repeat(self.indent));
            out.push_str(&style.paint(label, Paint::Label));
            out.push_str(&" ".repeat(w - width(label) + 2));
            out.push_str(&style.paint(&value.text, value.paint));
            out.push('\n');
        }
        out
    }
}

/// A duration for people: `45s`, `10m30s`, `1h12m`, `3d4h`; below a
/// second `850ms`, below a millisecond `120µs`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        let us = d.as_micros();
        return if us >= 1000 {
            format!("{}ms", d.as_millis())
        } else {
            format!("{us}µs")
        };
    }
    let (days, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        if h > 0 {
            format!("{days}d{h}h")
        } else {
            format!("{days}d")
        }
    } else if h > 0 {
        if m > 0 {
            format!("{h}h{m}m")
        } else {
            format!("{h}h")
        }
    } else if m > 0 {
        if sec > 0 {
            format!("{m}m{sec}s")
        } else {
            format!("{m}m")
        }
    } else {
        format!("{sec}s")
    }
}

/// The age of a Unix-nanosecond time at `now` (Unix nanoseconds), as
/// `10m30s`; `-` for 0 (never).
pub fn age(unix_nanos: i64, now: i64) -> String {
    if unix_nanos <= 0 {
        return "-".to_owned();
    }
    let d = now.saturating_sub(unix_nanos).max(0);
    // Whole seconds are enough for an age over a second.
    let d = Duration::from_nanos(u64::try_from(d).unwrap_or(0));
    if d.as_secs() > 0 {
        duration(Duration::from_secs(d.as_secs()))
    } else {
        duration(d)
    }
}

/// The time left from `now` until a Unix-nanosecond time, as `1m12s`
/// (whole seconds, like [`age`]); `None` for 0 (never) or a time already
/// past.
pub fn until(unix_nanos: i64, now: i64) -> Option<String> {
    (unix_nanos > 0 && unix_nanos > now).then(|| age(now, unix_nanos))
}

/// A setting's number as people write it: `3`, `2.5`, `0.75` (at most two
/// decimals, no trailing zeros).
pub fn number(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// A Unix-nanosecond time as `2026-12-01 21:00:58 UTC`; `-` for 0.
pub fn utc(unix_nanos: i64) -> String {
    if unix_nanos <= 0 {
        return "-".to_owned();
    }
    let (date, hms, _) = civil(unix_nanos);
    format!("{date} {hms} UTC")
}

/// The time of day of a Unix-nanosecond time, as `21:00:58.123` (UTC).
pub fn time_of_day(unix_nanos: i64) -> String {
    let (_, hms, ms) = civil(unix_nanos.max(0));
    format!("{hms}.{ms:03}")
}

/// (`YYYY-MM-DD`, `HH:MM:SS`, milliseconds) of a Unix-nanosecond time,
/// after Howard Hinnant's days-to-civil algorithm.
fn civil(unix_nanos: i64) -> (String, String, i64) {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let ms = unix_nanos.rem_euclid(1_000_000_000) / 1_000_000;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", tod / 3600, tod / 60 % 60, tod % 60),
        ms,
    )
}

/// `yes` or `no`.
pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A protocol number as a name: `tcp`, `udp`, `any` (255), else the number.
pub fn ip_proto(p: u32) -> String {
    match p {
        6 => "tcp".to_owned(),
        17 => "udp".to_owned(),
        255 => "any".to_owned(),
        n => n.to_string(),
    }
}

/// A per-second rate for people: `0`, `12.5`, `1.2k`, `3.4M`.
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 1e9 {
        format!("{:.1}G", per_sec / 1e9)
    } else if per_sec >= 1e6 {
        format!("{:.1}M", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1}k", per_sec / 1e3)
    } else if per_sec == 0.0 {
        "0".to_owned()
    } else {
        format!("{per_sec:.1}")
    }
}

/// `s` as a terminal shows it: without its color escapes.
#[cfg(test)]
pub(crate) fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\x1b') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(duration(Duration::from_secs(630)), "10m30s");
        assert_eq!(duration(Duration::from_secs(4320)), "1h12m");
        assert_eq!(duration(Duration::from_secs(45)), "45s");
        assert_eq!(duration(Duration::from_secs(3600)), "1h");
        assert_eq!(
            duration(Duration::from_secs(3 * 86_400 + 4 * 3600 + 5)),
            "3d4h"
        );
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_micros(120)), "120µs");
        assert_eq!(age(0, 5), "-");
        assert_eq!(age(1_000_000_000, 631_000_000_000), "10m30s");
        assert_eq!(
            until(73_500_000_000, 1_000_000_000).as_deref(),
            Some("1m12s")
        );
        assert_eq!(until(1_000_000_000, 1_000_000_000), None);
        assert_eq!(until(0, 1_000_000_000), None);
    }

    #[test]
    fn settings_numbers_drop_trailing_zeros() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(0.75), "0.75");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-0.001), "0");
    }

    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1), "1970-01-01 00:00:00 UTC");
        // 2026-12-01T21:00:58Z
        assert_eq!(
            utc(1_796_158_858 * 1_000_000_000),
            "2026-12-01 21:00:58 UTC"
        );
        assert_eq!(utc(951_782_400 * 1_000_000_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(time_of_day(1_796_158_858_123_000_000), "21:00:58.123");
    }

    #[test]
    fn tables_align_the_same_with_and_without_color() {
        let mut t = Table::new(&["NAME", "STATE", "WEIGHT"]);
        t.row(vec!["nginx0-ams".into(), Cell::state("up"), "100".into()]);
        t.row(vec!["b".into(), Cell::state("disabled"), "0".into()]);
        let plain = t.render(Style { color: false });
        let colored = t.render(Style { color: true });
        assert_ne!(plain, colored);
        assert!(colored.contains("\x1b[32mup\x1b[0m"));
        assert_eq!(strip(&colored), plain);
        assert_eq!(
            plain,
            "NAME        STATE     WEIGHT\nnginx0-ams  up        100\nb           disabled  0\n"
        );
        let mut b = Block::new();
        b.kv("name", "web").kv("src-ip-sticky", Cell::state("down"));
        let plain = b.render(Style { color: false });
        assert_eq!(plain, "name           web\nsrc-ip-sticky  down\n");
        assert_eq!(strip(&b.render(Style { color: true })), plain);
    }
}
