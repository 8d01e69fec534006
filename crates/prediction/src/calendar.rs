//! The business calendar the pipeline runs on: US federal holidays with
//! their observed days (computed for any year, not tabled), business days,
//! a business day's place in its month, month and quarter ends, and the
//! days around a holiday.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// How far [`DayFacts::days_after_holiday`] and its twin look; beyond this a
/// holiday no longer shapes the day.
pub const HOLIDAY_HORIZON_DAYS: i64 = 4;

/// One federal holiday in a given year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    pub name: &'static str,
    /// The legal date.
    pub date: NaiveDate,
    /// The day offices close: a Saturday holiday is observed on the Friday
    /// before, a Sunday one on the Monday after.
    pub observed: NaiveDate,
}

/// The federal holidays of `year`, in date order (5 U.S.C. 6103).
pub fn federal_holidays(year: i32) -> Vec<Holiday> {
    let fixed = |month, day| NaiveDate::from_ymd_opt(year, month, day);
    let nth = |month, weekday, n| NaiveDate::from_weekday_of_month_opt(year, month, weekday, n);
    let last_monday_of_may = || {
        let first_of_june = NaiveDate::from_ymd_opt(year, 6, 1)?;
        let back = (first_of_june.weekday().num_days_from_monday() + 6) % 7 + 1;
        Some(first_of_june - Duration::days(i64::from(back)))
    };
    let mut days: Vec<(&'static str, Option<NaiveDate>)> = vec![
        ("New Year's Day", fixed(1, 1)),
        ("Martin Luther King Jr. Day", nth(1, Weekday::Mon, 3)),
        ("Washington's Birthday", nth(2, Weekday::Mon, 3)),
        ("Memorial Day", last_monday_of_may()),
    ];
    // Juneteenth became a federal holiday in 2021.
    if year >= 2021 {
        days.push(("Juneteenth National Independence Day", fixed(6, 19)));
    }
    days.extend([
        ("Independence Day", fixed(7, 4)),
        ("Labor Day", nth(9, Weekday::Mon, 1)),
        ("Columbus Day", nth(10, Weekday::Mon, 2)),
        ("Veterans Day", fixed(11, 11)),
        ("Thanksgiving Day", nth(11, Weekday::Thu, 4)),
        ("Christmas Day", fixed(12, 25)),
    ]);
    days.into_iter()
        .filter_map(|(name, date)| {
            let date = date?;
            let observed = match date.weekday() {
                Weekday::Sat => date - Duration::days(1),
                Weekday::Sun => date + Duration::days(1),
                _ => date,
            };
            Some(Holiday {
                name,
                date,
                observed,
            })
        })
        .collect()
}

/// The federal holiday that falls on `date`, or is observed on it. An
/// observed day is named after its holiday, e.g. "Christmas Day (observed)".
pub fn holiday_name(date: NaiveDate) -> Option<String> {
    // New Year's Day on a Saturday is observed on December 31 of the year before.
    for year in [date.year(), date.year() + 1] {
        for holiday in federal_holidays(year) {
            if holiday.date == date {
                return Some(holiday.name.to_string());
            }
            if holiday.observed == date {
                return Some(format!("{} (observed)", holiday.name));
            }
        }
    }
    None
}

/// The holidays on which no feed sends a file at all, so the pipeline has
/// nothing to do (its observed day): the other federal holidays are light
/// days, with a trickle of files.
pub const CLOSING_HOLIDAYS: [&str; 3] = ["New Year's Day", "Thanksgiving Day", "Christmas Day"];

/// Whether `date` is the observed day of a holiday that closes the pipeline
/// (one of [`CLOSING_HOLIDAYS`]): no files, no runs.
pub fn closes_pipeline(date: NaiveDate) -> bool {
    [date.year(), date.year() + 1].iter().any(|&year| {
        federal_holidays(year)
            .iter()
            .any(|h| h.observed == date && CLOSING_HOLIDAYS.contains(&h.name))
    })
}

/// Whether offices are closed for a holiday on `date` (the observed day).
pub fn is_holiday_observed(date: NaiveDate) -> bool {
    [date.year(), date.year() + 1]
        .iter()
        .any(|&year| federal_holidays(year).iter().any(|h| h.observed == date))
}

/// Monday to Friday and not an observed federal holiday.
pub fn is_business_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_holiday_observed(date)
}

/// Everything about one date that the features and the generator use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayFacts {
    pub date: NaiveDate,
    pub business_day: bool,
    /// The date is a holiday or its observed day.
    pub holiday: bool,
    /// Offices are closed for a holiday (the observed day).
    pub holiday_observed: bool,
    /// The observed day of a holiday that closes the pipeline: no files at
    /// all (see [`closes_pipeline`]).
    pub pipeline_closed: bool,
    /// 1 for the month's first business day; on other days the index of the
    /// last business day so far (0 before the first).
    pub business_day_index: u32,
    /// Business days left in the month after this date.
    pub business_days_left: u32,
    /// The month's last business day.
    pub month_end: bool,
    /// The last business day of March, June, September or December.
    pub quarter_end: bool,
    /// The first business day after an observed holiday (catch-up day).
    pub after_holiday: bool,
    /// Days since the last observed holiday, capped at [`HOLIDAY_HORIZON_DAYS`].
    pub days_after_holiday: i64,
    /// Days until the next observed holiday, capped at [`HOLIDAY_HORIZON_DAYS`].
    pub days_before_holiday: i64,
}

/// Works the calendar out for `date`. Cheap enough (a few dozen date
/// computations) to call per prediction.
pub fn day_facts(date: NaiveDate) -> DayFacts {
    let first = date.with_day(1).unwrap_or(date);
    let month_days: Vec<NaiveDate> = first
        .iter_days()
        .take_while(|d| d.month() == date.month())
        .collect();
    let holidays: Vec<NaiveDate> = (date.year() - 1..=date.year() + 1)
        .flat_map(federal_holidays)
        .map(|h| h.observed)
        .collect();
    let closed = |d: NaiveDate| holidays.contains(&d);
    let business = |d: NaiveDate| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !closed(d);

    let business_day = business(date);
    let business_day_index = month_days
        .iter()
        .filter(|d| **d <= date && business(**d))
        .count() as u32;
    let business_days_left = month_days
        .iter()
        .filter(|d| **d > date && business(**d))
        .count() as u32;
    let month_end = business_day && business_days_left == 0;
    let quarter_end = month_end && date.month().is_multiple_of(3);

    let days_after_holiday = (1..=HOLIDAY_HORIZON_DAYS)
        .find(|n| closed(date - Duration::days(*n)))
        .unwrap_or(HOLIDAY_HORIZON_DAYS);
    let days_before_holiday = (1..=HOLIDAY_HORIZON_DAYS)
        .find(|n| closed(date + Duration::days(*n)))
        .unwrap_or(HOLIDAY_HORIZON_DAYS);
    // Catch-up: the first business day since the last observed holiday.
    let after_holiday = business_day && {
        let mut d = date - Duration::days(1);
        while !business(d) && !closed(d) {
            d -= Duration::days(1);
        }
        closed(d)
    };

    DayFacts {
        date,
        business_day,
        holiday: holiday_name(date).is_some(),
        holiday_observed: closed(date),
        pipeline_closed: closes_pipeline(date),
        business_day_index,
        business_days_left,
        month_end,
        quarter_end,
        after_holiday,
        days_after_holiday,
        days_before_holiday,
    }
}

/// `Monday` .. `Sunday`.
pub fn weekday_name(date: NaiveDate) -> &'static str {
    match date.weekday() {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn holidays_2025_with_observed_days() {
        let observed: Vec<String> = federal_holidays(2025)
            .iter()
            .map(|h| h.observed.to_string())
            .collect();
        assert_eq!(
            observed,
            [
                "2025-01-01",
                "2025-01-20",
                "2025-02-17",
                "2025-05-26",
                "2025-06-19",
                "2025-07-04",
                "2025-09-01",
                "2025-10-13",
                "2025-11-11",
                "2025-11-27",
                "2025-12-25"
            ]
        );
    }

    #[test]
    fn weekend_holidays_move_to_the_nearest_weekday() {
        // 2026-07-04 is a Saturday: observed Friday 2026-07-03.
        assert_eq!(
            holiday_name(d("2026-07-03")).as_deref(),
            Some("Independence Day (observed)")
        );
        assert_eq!(
            holiday_name(d("2026-07-04")).as_deref(),
            Some("Independence Day")
        );
        assert!(!is_business_day(d("2026-07-03")));
        // 2027-12-25 is a Saturday; 2028-01-01 too, observed 2027-12-31.
        assert!(is_holiday_observed(d("2027-12-24")));
        assert_eq!(
            holiday_name(d("2027-12-31")).as_deref(),
            Some("New Year's Day (observed)")
        );
        // 2023-01-01 was a Sunday: observed Monday 2023-01-02.
        assert!(!is_business_day(d("2023-01-02")));
        // Juneteenth only from 2021.
        assert!(holiday_name(d("2020-06-19")).is_none());
    }

    #[test]
    fn business_days_and_month_ends() {
        assert!(is_business_day(d("2025-10-20")));
        assert!(!is_business_day(d("2025-10-19")));
        let oct31 = day_facts(d("2025-10-31"));
        assert!(oct31.month_end && !oct31.quarter_end);
        let dec31 = day_facts(d("2025-12-31"));
        assert!(dec31.month_end && dec31.quarter_end);
        // 2025-11-30 is a Sunday: the month's last business day is Friday the 28th.
        assert!(day_facts(d("2025-11-28")).month_end);
        assert!(!day_facts(d("2025-11-30")).month_end);
        // 2025-01-01 is a holiday, so January's first business day is the 2nd.
        assert_eq!(day_facts(d("2025-01-02")).business_day_index, 1);
        assert_eq!(day_facts(d("2025-01-01")).business_day_index, 0);
    }

    #[test]
    fn only_new_year_thanksgiving_and_christmas_close_the_pipeline() {
        let closed: Vec<String> = d("2025-01-01")
            .iter_days()
            .take_while(|x| *x <= d("2025-12-31"))
            .filter(|x| closes_pipeline(*x))
            .map(|x| x.to_string())
            .collect();
        assert_eq!(closed, ["2025-01-01", "2025-11-27", "2025-12-25"]);
        // The observed day closes, not the Saturday itself.
        assert!(closes_pipeline(d("2027-12-24")) && !closes_pipeline(d("2027-12-25")));
        // A light holiday is no closed day.
        assert!(
            is_holiday_observed(d("2025-11-11")) && !day_facts(d("2025-11-11")).pipeline_closed
        );
    }

    #[test]
    fn days_around_holidays() {
        let after = day_facts(d("2025-11-28"));
        assert!(after.after_holiday);
        assert_eq!(after.days_after_holiday, 1);
        // Tuesday after Monday's Labor Day.
        assert!(day_facts(d("2025-09-02")).after_holiday);
        assert_eq!(day_facts(d("2025-12-23")).days_before_holiday, 2);
        assert!(!day_facts(d("2025-10-22")).after_holiday);
    }
}
