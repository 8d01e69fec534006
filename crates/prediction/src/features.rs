//! The model inputs for one date, from the calendar alone (plus, for
//! runtimes, the volume to process). Training and prediction build them the
//! same way, here.
//!
//! One row serves every learner: the forests read the compact calendar
//! columns (day of week as a number, counters), the linear models read
//! indicators, each effect of the calendar a column of its own, because a
//! linear model on `ln(1 + y)` turns the calendar's multiplicative effects
//! (Monday x month end) into sums.

use chrono::{Datelike, NaiveDate};

use crate::calendar::DayFacts;

/// The day the trend feature counts from.
pub const TREND_EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(2025, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// The trend column stops counting this many days after [`TREND_EPOCH`]
/// (and before it): a year of data says something about the growth over
/// the next, nothing about the one in ten years, and a linear model's trend
/// would carry a forecast for 2090 off any scale.
pub const TREND_HORIZON_DAYS: i64 = 730;

/// Names of the calendar features, in column order (recorded in the manifest).
pub const CALENDAR_FEATURES: [&str; N_CALENDAR] = [
    "day_of_week",
    "day_of_month",
    "month",
    "business_day",
    "business_day_index",
    "business_days_left",
    "month_end",
    "quarter_end",
    "holiday",
    "days_after_holiday",
    "days_before_holiday",
    "trend_days",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "light_holiday",
    "first_business_day_after_holiday",
    "first_business_day_of_month",
    "second_to_last_business_day",
];

/// How many calendar columns a row has.
pub const N_CALENDAR: usize = 23;
/// The volume column's index: right after the calendar.
pub const VOLUME_COLUMN: usize = N_CALENDAR;
/// The same volume in millions, as is: the next column.
pub const MILLIONS_COLUMN: usize = N_CALENDAR + 1;
/// An arrival model's own feed's records that day, in millions.
pub const FEED_MILLIONS_COLUMN: usize = N_CALENDAR + 2;
/// A full row: the calendar, the volume's two columns and the feed's records.
pub const ROW_LEN: usize = N_CALENDAR + 3;

/// The extra feature of runtime models: `ln(1 + m)` of the records the day's
/// run processes, in millions: the feeds' records of the day plus those of
/// the skipped holiday(s) just before, which the run catches up on. The
/// columns after it, `m` itself ([`MILLIONS_COLUMN`]) and an arrival's
/// feed's records ([`FEED_MILLIONS_COLUMN`]), are read only by the cost
/// models, which no shipped model is (issue #24's second round).
pub const VOLUME_FEATURE: &str = "ln1p_processed_records_millions";

/// The columns of a runtime's cost model: the millions processed and the
/// month and quarter ends. A batch job's runtime is a fixed part plus so
/// many minutes per million records (plus the month's closing work), a
/// line in the volume that a power of it (a fit on `ln(1 + y)` against
/// `ln(1 + m)`) bends away from on the rare heavy days: a quarter end has
/// twice an ordinary day's volume and three of them are in a year's data.
pub const RUNTIME_COST_COLUMNS: [usize; 3] = [MILLIONS_COLUMN, 6, 7];

/// The columns of an arrival's cost model: the feed's records, business
/// day, light holiday and the trend. A bigger file comes later by so many
/// minutes a record, on top of the day's usual time; the calendar's
/// effects on the volume multiply (a Monday month start after a holiday),
/// so the minutes they add follow the volume, not a sum of one term per
/// effect. The trend is there to take back the volume's growth, which
/// does not make a file later (without it, Nov-Dec forecasts ran a
/// minute late on simulated data).
pub const ARRIVAL_COST_COLUMNS: [usize; 4] = [FEED_MILLIONS_COLUMN, 3, 19, TREND];

/// The calendar's rare effects on the volume, the same for every feed: a
/// light holiday, the first business day after a holiday, the month's
/// second-to-last business day, month end and quarter end (each a handful
/// of days a year). A pooled record model
/// ([`crate::model::LearnerKind::PooledRidge`]) estimates them from all
/// feeds at once; each feed keeps its own weekdays, month start and trend.
pub const SHARED_CALENDAR_EFFECTS: [usize; 5] = [19, 20, 22, 6, 7];

/// The trend column.
pub const TREND: usize = 11;
/// The forests' columns: the compact calendar, trend included, but not the
/// month: with less than a year to learn from, a month's column only lets
/// a forest treat the months it never saw like the last one it did.
pub const FOREST_CALENDAR: [usize; 11] = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, TREND];
/// The linear models' columns: one indicator per calendar effect, and the
/// trend (days since [`TREND_EPOCH`]).
pub const LINEAR_CALENDAR: [usize; 14] = [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 6, 7, TREND];

/// The calendar features of a date, in [`CALENDAR_FEATURES`] order.
pub fn calendar_features(facts: &DayFacts) -> [f64; N_CALENDAR] {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let date = facts.date;
    let weekday = date.weekday().num_days_from_monday();
    let mut row = [0.0; N_CALENDAR];
    row[..12].copy_from_slice(&[
        f64::from(weekday),
        f64::from(date.day()),
        f64::from(date.month()),
        flag(facts.business_day),
        f64::from(facts.business_day_index),
        f64::from(facts.business_days_left),
        flag(facts.month_end),
        flag(facts.quarter_end),
        flag(facts.holiday_observed),
        facts.days_after_holiday as f64,
        facts.days_before_holiday as f64,
        (date - TREND_EPOCH).num_days().clamp(0, TREND_HORIZON_DAYS) as f64,
    ]);
    // A holiday's volume is the holiday's, whatever the weekday: on an
    // additive log scale a Monday effect would otherwise follow it (most
    // open holidays are Mondays, which put Veterans Day, a Tuesday, ~17 %
    // low).
    if !facts.holiday_observed {
        row[12 + weekday as usize] = 1.0;
    }
    row[19] = flag(facts.holiday_observed && !facts.pipeline_closed);
    row[20] = flag(facts.after_holiday);
    row[21] = flag(facts.business_day && facts.business_day_index == 1);
    row[22] = flag(facts.business_day && facts.business_days_left == 1);
    row
}

/// The volume columns' values, `ln(1 + m)` and `m`, of the records `m`
/// (millions) the run on `date` processes: `records_of(date)` plus, when
/// the pipeline skips holidays, `records_of` each observed holiday just
/// before it, whose files wait for the next run.
pub fn processed_volume(
    date: NaiveDate,
    skips_holidays: bool,
    records_of: impl Fn(NaiveDate) -> f64,
) -> [f64; 2] {
    let mut total = records_of(date);
    let mut day = date.pred_opt();
    while let Some(d) = day.filter(|d| skips_holidays && crate::calendar::is_holiday_observed(*d)) {
        total += records_of(d);
        day = d.pred_opt();
    }
    let millions = total.max(0.0) / 1e6;
    [millions.ln_1p(), millions]
}

/// Whether the calendar bends the day's volume: the models' error bands
/// differ between the two kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    Ordinary = 0,
    /// A holiday, the days next to one, or a month's first, second-to-last
    /// or last business day.
    Special = 1,
}

/// The kind of day `facts` describes.
pub fn day_kind(facts: &DayFacts) -> DayKind {
    let special = facts.holiday_observed
        || facts.after_holiday
        || facts.days_before_holiday == 1
        || facts.month_end
        || (facts.business_day && (facts.business_day_index == 1 || facts.business_days_left == 1));
    if special {
        DayKind::Special
    } else {
        DayKind::Ordinary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::day_facts;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_skipped_holidays_records_go_to_the_next_run() {
        // 2025-11-11 (Veterans Day, a Tuesday) is skipped: Wednesday's run
        // processes both days' records.
        let records = |date: NaiveDate| if date == d("2025-11-11") { 1e5 } else { 1e6 };
        let [ln1p, millions] = processed_volume(d("2025-11-12"), true, records);
        assert!((ln1p - 1.1f64.ln_1p()).abs() < 1e-12);
        assert!((millions - 1.1).abs() < 1e-12);
        assert!(
            (processed_volume(d("2025-11-12"), false, records)[0] - 1f64.ln_1p()).abs() < 1e-12
        );
        assert!((processed_volume(d("2025-11-14"), true, records)[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn indicators_and_a_bounded_trend() {
        let row = calendar_features(&day_facts(d("2025-11-28")));
        // Friday after Thanksgiving and November's last business day.
        assert_eq!(row[16], 1.0);
        assert_eq!(row[12..19].iter().sum::<f64>(), 1.0);
        assert_eq!((row[20], row[6], row[7]), (1.0, 1.0, 0.0));
        let veterans_day = calendar_features(&day_facts(d("2025-11-11")));
        assert_eq!(veterans_day[19], 1.0);
        // A holiday is a holiday whatever the weekday (a Tuesday here).
        assert_eq!(veterans_day[12..19].iter().sum::<f64>(), 0.0);
        assert_eq!(calendar_features(&day_facts(d("2025-11-18")))[13], 1.0);
        assert_eq!(calendar_features(&day_facts(d("2025-11-27")))[19], 0.0);
        assert_eq!(row[TREND], 331.0);
        let far = calendar_features(&day_facts(d("2090-06-01")))[TREND];
        assert_eq!(far, TREND_HORIZON_DAYS as f64);
        assert_eq!(calendar_features(&day_facts(d("2020-06-01")))[TREND], 0.0);
        assert_eq!(CALENDAR_FEATURES.len(), N_CALENDAR);
    }
}
