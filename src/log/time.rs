//! Wall-clock formatting for log lines, in local time as HAProxy prints it.
//!
//! Uses `localtime_r` rather than a date crate: the three formats below are all warren
//! needs, and the C library already knows the machine's time zone.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Broken-down local time with milliseconds and the UTC offset in seconds.
#[derive(Debug, Clone, Copy)]
pub struct LocalTime {
    pub year: i32,
    /// 0-based.
    pub month: usize,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    pub micros: u32,
    pub utc_offset: i64,
}

impl LocalTime {
    pub fn of(t: SystemTime) -> LocalTime {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() as libc::time_t;
        // SAFETY: localtime_r only writes into the struct we pass; a zeroed `tm` is valid.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
        if !ok {
            tm = unsafe { std::mem::zeroed() };
        }
        LocalTime {
            year: tm.tm_year + 1900,
            month: tm.tm_mon.clamp(0, 11) as usize,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            min: tm.tm_min as u32,
            sec: tm.tm_sec as u32,
            micros: since.subsec_micros(),
            utc_offset: tm.tm_gmtoff,
        }
    }

    pub fn now() -> LocalTime {
        LocalTime::of(SystemTime::now())
    }

    /// `25/Nov/2026:06:40:12.123`: tcplog's accept date.
    pub fn accept_date(&self) -> String {
        format!(
            "{:02}/{}/{}:{:02}:{:02}:{:02}.{:03}",
            self.day,
            MONTHS[self.month],
            self.year,
            self.hour,
            self.min,
            self.sec,
            self.micros / 1000
        )
    }

    /// `Nov 25 06:40:12`: RFC 3164's timestamp (day padded with a space).
    pub fn rfc3164(&self) -> String {
        format!(
            "{} {:>2} {:02}:{:02}:{:02}",
            MONTHS[self.month], self.day, self.hour, self.min, self.sec
        )
    }

    /// `2026-11-25T06:40:12.123456+00:00`: RFC 5424 and `format iso`.
    pub fn iso(&self) -> String {
        let sign = if self.utc_offset < 0 { '-' } else { '+' };
        let off = self.utc_offset.abs();
        format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02}",
            self.year,
            self.month + 1,
            self.day,
            self.hour,
            self.min,
            self.sec,
            self.micros,
            sign,
            off / 3600,
            (off % 3600) / 60
        )
    }
}
