//! Durations as HAProxy writes them (`2000`, `10s`, `1m`), shared by both syntaxes.
//!
//! A bare number is milliseconds, as in HAProxy; suffixes `us`, `ms`, `s`, `m`, `h`, `d`.
//! [`format`] prints the largest unit that represents the value exactly, so a converted file
//! reads like a hand-written one and loads back to the same value.

use std::time::Duration;

/// Units from the largest to the smallest, with their length in microseconds.
const UNITS: [(&str, u64); 6] = [
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
    ("ms", 1_000),
    ("us", 1),
];

/// Parses `<number>[unit]`; the error is a sentence fragment naming the bad value.
pub fn parse(text: &str) -> Result<Duration, String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(format!("'{text}' is not a duration (expected a number with an optional unit: us, ms, s, m, h, d)"));
    }
    let micros_per_unit = match unit {
        "" => 1_000,
        other => match UNITS.iter().find(|(name, _)| *name == other) {
            Some((_, micros)) => *micros,
            None => {
                return Err(format!(
                    "'{text}' has an unknown time unit '{other}' (use us, ms, s, m, h or d)"
                ))
            }
        },
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is too large for a duration"))?;
    value
        .checked_mul(micros_per_unit)
        .map(Duration::from_micros)
        .ok_or_else(|| format!("'{text}' is too large for a duration"))
}

/// Prints a duration in the largest unit that is exact ("1m", "2s", "1500ms").
pub fn format(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros == 0 {
        return "0ms".to_string();
    }
    for (name, size) in UNITS {
        let size = u128::from(size);
        if micros.is_multiple_of(size) {
            return format!("{}{name}", micros / size);
        }
    }
    format!("{micros}us")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_number_is_milliseconds() {
        assert_eq!(parse("2000"), Ok(Duration::from_millis(2000)));
    }

    #[test]
    fn every_unit() {
        assert_eq!(parse("5us"), Ok(Duration::from_micros(5)));
        assert_eq!(parse("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        assert!(parse("").is_err());
        assert!(parse("s").is_err());
        assert!(parse("10x").unwrap_err().contains("unknown time unit 'x'"));
        assert!(parse("-1").is_err());
        assert!(parse("1.5s").is_err());
        assert!(parse("99999999999999999999999")
            .unwrap_err()
            .contains("too large"));
        assert!(parse("9999999999999999d")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn format_uses_largest_exact_unit() {
        assert_eq!(format(Duration::from_secs(60)), "1m");
        assert_eq!(format(Duration::from_secs(2)), "2s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_micros(7)), "7us");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::ZERO), "0ms");
    }

    #[test]
    fn format_then_parse_is_identity() {
        for ms in [
            1,
            999,
            1000,
            1500,
            60_000,
            3_600_000,
            86_400_000,
            123_456_789,
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
