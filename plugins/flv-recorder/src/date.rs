//! UTC date and time for file names, without a date crate.

/// `YYYYmmddTHHMMSSZ` for a Unix time in milliseconds.
pub fn utc_stamp(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm,
/// restricted to days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        // 2000-02-29 12:34:56 UTC (a leap day in a century leap year).
        assert_eq!(utc_stamp(951_827_696_000), "20000229T123456Z");
        // 2024-12-31 23:59:59.999 UTC.
        assert_eq!(utc_stamp(1_735_689_599_999), "20241231T235959Z");
        assert_eq!(utc_stamp(1_735_689_600_000), "20250101T000000Z");
        // 2100-03-01 (2100 is not a leap year).
        assert_eq!(utc_stamp(4_107_542_400_000), "21000301T000000Z");
    }

    #[test]
    fn every_day_of_four_centuries_is_consistent() {
        // Days advance the date by exactly one, months and years roll over correctly.
        let mut prev = civil_from_days(0);
        for day in 1..146_097 * 2 {
            let cur = civil_from_days(day);
            let (y, m, d) = prev;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][(m - 1) as usize];
            let expected = if d < len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(cur, expected, "day {day}");
            prev = cur;
        }
    }
}
