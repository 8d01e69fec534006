//! The model inputs for one date, from the calendar alone (plus, for
//! runtimes, the predicted volume). Training and prediction build them the
//! same way, here.

use chrono::{Datelike, NaiveDate};

use crate::calendar::DayFacts;

/// The day the trend feature counts from.
pub const TREND_EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(2025, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Names of the calendar features, in column order (recorded in the manifest).
pub const CALENDAR_FEATURES: [&str; 12] = [
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
];

/// The extra feature of runtime models: predicted records of all feeds, in millions.
pub const VOLUME_FEATURE: &str = "predicted_total_records_millions";

/// The calendar features of a date, in [`CALENDAR_FEATURES`] order.
pub fn calendar_features(facts: &DayFacts) -> [f64; 12] {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let date = facts.date;
    [
        f64::from(date.weekday().num_days_from_monday()),
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
        (date - TREND_EPOCH).num_days() as f64,
    ]
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
