//! RDS's weekly maintenance window and daily backup window, as RDS writes
//! them (`ddd:hh24:mi-ddd:hh24:mi` and `hh24:mi-hh24:mi`, UTC), checked the
//! way ModifyDBInstance checks them: each at least 30 minutes, and the
//! backup window never inside the maintenance window. Parsing only.

use std::ops::Range;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY: u32 = 24 * 60;
const WEEK: u32 = 7 * DAY;
/// "Must be at least 30 minutes" (PreferredMaintenanceWindow and
/// PreferredBackupWindow, ModifyDBInstance).
const AT_LEAST_MINUTES: u32 = 30;

/// Minutes since midnight of `hh24:mi`.
fn time_of_day(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |t: &str| t.len() == 2 && t.chars().all(|c| c.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

/// Minutes since Monday 00:00 of `ddd:hh24:mi`.
fn time_of_week(text: &str) -> Option<u32> {
    let (day, time) = text.split_once(':')?;
    let day = DAYS.iter().position(|d| *d == day)? as u32;
    Some(day * DAY + time_of_day(time)?)
}

/// The minutes a window covers from its start, across midnight (or the end
/// of the week) when it ends earlier than it starts.
fn span(start: u32, end: u32, cycle: u32) -> Range<u32> {
    start..if end > start { end } else { end + cycle }
}

/// A maintenance window, lowercased as RDS reports it, or what is wrong.
pub fn maintenance(text: &str) -> Result<(String, Range<u32>), String> {
    let text = text.to_ascii_lowercase();
    let parsed = text
        .split_once('-')
        .and_then(|(from, to)| Some((time_of_week(from)?, time_of_week(to)?)));
    let Some((from, to)) = parsed else {
        return Err(format!("{text:?} is not a weekly window such as \"sun:05:00-sun:06:00\" (ddd:hh24:mi-ddd:hh24:mi, UTC; days mon to sun)"));
    };
    if from == to {
        return Err(format!("{text:?} starts and ends at the same time"));
    }
    let window = span(from, to, WEEK);
    if window.len() < AT_LEAST_MINUTES as usize {
        return Err(format!(
            "{text:?} is shorter than the 30 minutes RDS requires"
        ));
    }
    Ok((text, window))
}

/// A backup window, or what is wrong; `maintenance` is the maintenance
/// window it must stay out of.
pub fn backup(text: &str, maintenance: &Range<u32>) -> Result<String, String> {
    let parsed = text
        .split_once('-')
        .and_then(|(from, to)| Some((time_of_day(from)?, time_of_day(to)?)));
    let Some((from, to)) = parsed else {
        return Err(format!(
            "{text:?} is not a daily window such as \"03:00-04:00\" (hh24:mi-hh24:mi, UTC)"
        ));
    };
    if from == to {
        return Err(format!("{text:?} starts and ends at the same time"));
    }
    let daily = span(from, to, DAY);
    if daily.len() < AT_LEAST_MINUTES as usize {
        return Err(format!(
            "{text:?} is shorter than the 30 minutes RDS requires"
        ));
    }
    // The backup window comes back every day; the maintenance window once a
    // week, possibly across the week's end: compare over two weeks.
    let overlaps = (0..14).any(|day| {
        let backup = daily.start + day * DAY..daily.end + day * DAY;
        [
            maintenance.clone(),
            maintenance.start + WEEK..maintenance.end + WEEK,
        ]
        .iter()
        .any(|m| backup.start < m.end && m.start < backup.end)
    });
    if overlaps {
        return Err(format!(
            "{text:?} overlaps the maintenance window: RDS refuses a backup window inside it"
        ));
    }
    Ok(text.to_string())
}

/// Whether `at` falls inside the weekly `window` (as [`maintenance`]
/// accepts it); false for a window that does not parse.
pub fn includes(window: &str, at: std::time::SystemTime) -> bool {
    let Ok((_, span)) = maintenance(window) else {
        return false;
    };
    let seconds = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    // 1970-01-01 was a Thursday: day 3 of a week that starts on Monday.
    let day = ((seconds / 86_400 + 3) % 7) as u32;
    let minute = day * DAY + ((seconds % 86_400) / 60) as u32;
    span.contains(&minute) || span.contains(&(minute + WEEK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_is_inside_the_weekly_window_or_not() {
        let at = |secs: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        // 2027-01-03 was a Sunday.
        let sunday_0530 = at(1_798_954_200);
        assert!(includes("sun:05:00-sun:06:00", sunday_0530));
        assert!(!includes("sun:06:00-sun:07:00", sunday_0530));
        assert!(!includes("sat:05:00-sat:06:00", sunday_0530));
        // Across the week's end, from Monday's side.
        let monday_0010 = at(1_799_021_400);
        assert!(includes("sun:23:30-mon:00:30", monday_0010));
        assert!(!includes("not a window", monday_0010));
    }

    #[test]
    fn windows_are_read_as_rds_writes_them() {
        let (text, window) = maintenance("Sun:05:00-Sun:06:00").unwrap();
        assert_eq!(text, "sun:05:00-sun:06:00");
        assert_eq!(window.len(), 60);
        // Across the end of the week.
        assert_eq!(maintenance("sun:23:30-mon:00:30").unwrap().1.len(), 60);
        assert_eq!(backup("23:45-00:15", &window), Ok("23:45-00:15".into()));
    }

    #[test]
    fn what_rds_refuses_is_refused_with_the_reason() {
        let sunday = maintenance("sun:05:00-sun:06:00").unwrap().1;
        for (text, expected) in [
            ("sunday 5am", "is not a weekly window"),
            ("sun:24:00-mon:01:00", "is not a weekly window"),
            ("sun:05:00-sun:05:20", "shorter than the 30 minutes"),
            ("sun:05:00-sun:05:00", "starts and ends at the same time"),
        ] {
            let err = maintenance(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        for (text, expected) in [
            ("3am-4am", "is not a daily window"),
            ("03:00-03:10", "shorter than the 30 minutes"),
            ("05:30-06:30", "overlaps the maintenance window"),
            ("04:30-05:00", "ok"),
        ] {
            let got = backup(text, &sunday).err().unwrap_or_else(|| "ok".into());
            assert!(got.contains(expected), "{text}: {got}");
        }
        // A window across the week's end meets Monday's backup.
        let across = maintenance("sun:23:30-mon:01:00").unwrap().1;
        assert!(backup("00:30-01:30", &across)
            .unwrap_err()
            .contains("overlaps"));
    }
}
