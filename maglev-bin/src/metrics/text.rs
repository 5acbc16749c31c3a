//! Writing exposition text by hand for the large families (one or more
//! series per backend), where the generic encoder's per-line cost adds up:
//! label values are borrowed and escaped only when they need it, numbers
//! are formatted into a stack buffer, nothing is allocated per line.
//!
//! The output is the same text prometheus-client writes: OpenMetrics 1.0,
//! or the Prometheus text format 0.0.4, which differ here only in the name
//! of a counter family (`foo` against `foo_total`).

use std::fmt::Write as _;

use super::Format;

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Gauge,
    Counter,
    Histogram,
}

/// Writes a family's `# HELP` and `# TYPE` lines. `name` is the family
/// name; for a counter, without `_total` (its samples carry it).
pub(super) fn header(out: &mut String, format: Format, name: &str, help: &str, kind: Kind) {
    let suffix = match (kind, format) {
        (Kind::Counter, Format::Text) => "_total",
        _ => "",
    };
    let ty = match kind {
        Kind::Gauge => " gauge\n",
        Kind::Counter => " counter\n",
        Kind::Histogram => " histogram\n",
    };
    for (what, rest) in [("# HELP ", None), ("# TYPE ", Some(ty))] {
        out.push_str(what);
        out.push_str(name);
        out.push_str(suffix);
        match rest {
            Some(ty) => out.push_str(ty),
            None => {
                out.push(' ');
                // As prometheus-client's registry writes help texts.
                out.push_str(help);
                out.push_str(".\n");
            }
        }
    }
}

/// Appends a label value, escaping `\`, `"` and newlines.
pub(super) fn label_value(out: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `name{k="v",...} ` (or `name ` without labels).
pub(super) fn start(out: &mut String, name: &str, labels: &[(&str, &str)]) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// Appends an unsigned integer.
pub(super) fn u64_value(out: &mut String, mut v: u64) {
    if v < 10 {
        // Most gauges are 0 or 1.
        out.push(char::from(b'0' + v as u8));
        return;
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        // `v % 10` is a single digit.
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

/// Appends a float as Rust writes it (shortest round-trip form).
pub(super) fn f64_value(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v > 0.0 {
        out.push_str("+Inf");
    } else {
        out.push_str("-Inf");
    }
}

/// Writes into `prefix` the start of samples that differ only in their
/// last label: `name{k="v",...,` (`name{` without labels).
pub(super) fn prefix(prefix: &mut String, name: &str, labels: &[(&str, &str)]) {
    prefix.clear();
    prefix.push_str(name);
    prefix.push('{');
    for (k, v) in labels {
        prefix.push_str(k);
        prefix.push_str("=\"");
        label_value(prefix, v);
        prefix.push_str("\",");
    }
}

/// One sample from a [`prefix`] and its last label, given whole and
/// already escaped (`le="0.5"`).
pub(super) fn sample_with(out: &mut String, prefix: &str, last: &str, v: u64) {
    out.push_str(prefix);
    out.push_str(last);
    out.push_str("} ");
    u64_value(out, v);
    out.push('\n');
}

/// One sample with an integer value.
pub(super) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], v: u64) {
    start(out, name, labels);
    u64_value(out, v);
    out.push('\n');
}

/// One sample with a signed integer value.
pub(super) fn sample_i64(out: &mut String, name: &str, labels: &[(&str, &str)], v: i64) {
    start(out, name, labels);
    if v < 0 {
        out.push('-');
    }
    u64_value(out, v.unsigned_abs());
    out.push('\n');
}

/// One sample with a float value.
pub(super) fn sample_f64(out: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    start(out, name, labels);
    f64_value(out, v);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_labels_are_written_as_the_formats_want() {
        let mut s = String::new();
        for v in [0, 7, 10, 1234567890, u64::MAX] {
            u64_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0 7 10 1234567890 18446744073709551615 ");
        let mut s = String::new();
        sample(&mut s, "m", &[("a", "x\"y\\z\nw"), ("b", "plain")], 3);
        assert_eq!(s, "m{a=\"x\\\"y\\\\z\\nw\",b=\"plain\"} 3\n");
        let mut p = String::new();
        prefix(&mut p, "m", &[("a", "1")]);
        let mut s = String::new();
        sample_with(&mut s, &p, "le=\"2\"", 12);
        assert_eq!(s, "m{a=\"1\",le=\"2\"} 12\n");
        let mut s = String::new();
        sample_i64(&mut s, "m", &[], -1);
        sample_i64(&mut s, "m", &[], 12);
        sample_f64(&mut s, "m", &[], 0.25);
        sample_f64(&mut s, "m", &[], f64::INFINITY);
        assert_eq!(s, "m -1\nm 12\nm 0.25\nm +Inf\n");
    }

    #[test]
    fn counter_families_are_named_per_format() {
        let mut om = String::new();
        header(&mut om, Format::OpenMetrics, "c", "Help", Kind::Counter);
        assert_eq!(om, "# HELP c Help.\n# TYPE c counter\n");
        let mut text = String::new();
        header(&mut text, Format::Text, "c", "Help", Kind::Counter);
        assert_eq!(text, "# HELP c_total Help.\n# TYPE c_total counter\n");
    }
}
