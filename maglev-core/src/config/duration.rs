//! Durations as the config writes them: Go's syntax (`500ms`, `2s`, `1m30s`).

use std::time::Duration;

/// Why a duration was refused. Each variant carries the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration: write a number with a unit, like 2s or 500ms")]
    Empty,
    /// A minus sign: durations are never negative.
    #[error("negative duration {0:?}")]
    Negative(String),
    /// A unit without a number before it (`s`, `1m.s`).
    #[error("invalid duration {0:?}: expected a number")]
    NoNumber(String),
    /// A number that is not one (`1.2.3s`).
    #[error("invalid duration {text:?}: {number:?} is not a number")]
    BadNumber {
        /// The whole text.
        text: String,
        /// The part that is not a number.
        number: String,
    },
    /// A number without a unit (`2`).
    #[error("invalid duration {0:?}: missing unit (ns, us, ms, s, m, h)")]
    MissingUnit(String),
    /// A unit that is not one of `ns`, `us`, `ms`, `s`, `m`, `h`.
    #[error("invalid duration {text:?}: unknown unit {unit:?} (ns, us, ms, s, m, h)")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit written.
        unit: String,
    },
    /// More than `u64::MAX` nanoseconds (about 584 years).
    #[error("duration {0:?} is too long")]
    TooLong(String),
}

/// Parses a duration with units, such as `500ms`, `2s`, `1m30s` or `1.5h`.
///
/// Units are `ns`, `us` (or `µs`), `ms`, `s`, `m` and `h`; a number without a
/// unit and a negative value are errors. The error says what was wrong.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(num_len);
        if number.is_empty() || number == "." {
            return Err(DurationError::NoNumber(text.to_owned()));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(DurationError::MissingUnit(text.to_owned())),
            other => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_owned(),
                    unit: other.to_owned(),
                });
            }
        };
        let value = scale(number, nanos_per_unit).ok_or_else(|| DurationError::BadNumber {
            text: text.to_owned(),
            number: number.to_owned(),
        })?;
        total = total
            .checked_add(value)
            .filter(|t| *t <= u128::from(u64::MAX))
            .ok_or_else(|| DurationError::TooLong(text.to_owned()))?;
        rest = next;
    }
    let nanos = u64::try_from(total).map_err(|_| DurationError::TooLong(text.to_owned()))?;
    Ok(Duration::from_nanos(nanos))
}

/// `number × nanos_per_unit` for a decimal `number` (at most one dot), or
/// `None` if it is not a number or overflows.
fn scale(number: &str, nanos_per_unit: u128) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) if !f.contains('.') => (i, f),
        Some(_) => return None,
        None => (number, ""),
    };
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = whole.checked_mul(nanos_per_unit)?;
    let mut unit = nanos_per_unit;
    for digit in frac.bytes() {
        unit /= 10;
        value = value.checked_add(u128::from(digit - b'0') * unit)?;
    }
    Some(value)
}

/// Formats a duration the way the config writes it (`1m30s`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let nanos = d.as_nanos();
    if !nanos.is_multiple_of(1_000_000_000) {
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}us", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in [
            "",
            "2",
            "2 sec",
            "-1s",
            "s",
            "1.2.3s",
            "1x",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            parse_duration("2"),
            Err(DurationError::MissingUnit("2".into()))
        );
        assert_eq!(
            parse_duration("2").unwrap_err().to_string(),
            "invalid duration \"2\": missing unit (ns, us, ms, s, m, h)"
        );
        assert_eq!(parse_duration(" "), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("-1s"),
            Err(DurationError::Negative("-1s".into()))
        );
        assert_eq!(
            parse_duration("s"),
            Err(DurationError::NoNumber("s".into()))
        );
        assert_eq!(
            parse_duration("1.2.3s"),
            Err(DurationError::BadNumber {
                text: "1.2.3s".into(),
                number: "1.2.3".into()
            })
        );
        assert_eq!(
            parse_duration("1x"),
            Err(DurationError::UnknownUnit {
                text: "1x".into(),
                unit: "x".into()
            })
        );
        assert_eq!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::TooLong("99999999999999999999h".into()))
        );
    }

    #[test]
    fn formats_round_trip() {
        for text in ["500ms", "2s", "1m30s", "1h", "250us", "7ns", "0s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }
}
