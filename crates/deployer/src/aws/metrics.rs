//! CloudWatch metrics: the series Lambda and API Gateway publish, read with
//! GetMetricData, as few calls as its limits allow (normally one).
//!
//! GetMetricData (CloudWatch API reference): at most 500 queries per call;
//! an answer holds at most `MaxDatapoints` (default 100,800) points and
//! continues under `NextToken` (a result then says `PartialData`); a query's
//! `Id` starts with a lower-case letter. `StartTime` is rounded down to the
//! minute (to five minutes past 15 days, to the hour past 63), and the
//! services' own metrics take a period that is a multiple of 60 s
//! (`MetricStat`): the caller aligns its window to that. Its one documented
//! error is `InvalidNextToken`.

use std::collections::HashMap;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StatusCode};
use aws_smithy_types::DateTime;

use super::AwsError;
use super::errors::aws_error;
use super::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`):
/// GetMetricData authorizes on no resource ("Actions, resources, and
/// condition keys for Amazon CloudWatch"), so `*`.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[call(
        "GetMetricData",
        "cloudwatch:GetMetricData",
        Scope::Any,
    )],
};

/// GetMetricData's limit on queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// One statistic of one metric over periods of `period_s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    /// Unique among the queries of a read; a lower-case letter first.
    pub id: String,
    pub namespace: &'static str,
    pub metric: &'static str,
    /// Exactly the combination the service publishes: CloudWatch keeps each
    /// combination as its own metric.
    pub dimensions: Vec<(&'static str, String)>,
    /// `Sum`, `SampleCount`, `Maximum`, `p99`, ...
    pub stat: String,
    pub period_s: i32,
}

/// The values of one query, `(epoch seconds at the period's start, value)`,
/// oldest first; a period with no data has no point.
pub type Points = Vec<(i64, f64)>;

/// Reads every query over `[start_s, end_s)`: its points by query id (a
/// query with no data maps to an empty list).
pub async fn metric_data(
    client: &Client,
    queries: &[MetricQuery],
    start_s: i64,
    end_s: i64,
) -> Result<HashMap<String, Points>, AwsError> {
    let mut points: HashMap<String, Points> = queries
        .iter()
        .map(|q| (q.id.clone(), Points::new()))
        .collect();
    for chunk in queries.chunks(MAX_QUERIES_PER_CALL) {
        let built: Vec<MetricDataQuery> = chunk.iter().map(to_sdk).collect();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .get_metric_data()
                .set_metric_data_queries(Some(built.clone()))
                .start_time(DateTime::from_secs(start_s))
                .end_time(DateTime::from_secs(end_s))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error("GetMetricData", describe(chunk), e))?;
            for result in page.metric_data_results() {
                if let Some(status @ (StatusCode::Forbidden | StatusCode::InternalError)) =
                    result.status_code()
                {
                    let messages: Vec<&str> =
                        result.messages().iter().filter_map(|m| m.value()).collect();
                    return Err(AwsError::invalid_answer(
                        "GetMetricData",
                        result.id().unwrap_or_default(),
                        format!("{}: {}", status.as_str(), messages.join("; ")),
                    ));
                }
                let Some(series) = result.id().and_then(|id| points.get_mut(id)) else {
                    continue;
                };
                series.extend(
                    result
                        .timestamps()
                        .iter()
                        .map(DateTime::secs)
                        .zip(result.values().iter().copied()),
                );
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
    }
    for series in points.values_mut() {
        series.sort_by_key(|(at, _)| *at);
    }
    Ok(points)
}

fn to_sdk(query: &MetricQuery) -> MetricDataQuery {
    let dimensions = query
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
        .collect();
    let metric = Metric::builder()
        .namespace(query.namespace)
        .metric_name(query.metric)
        .set_dimensions(Some(dimensions))
        .build();
    MetricDataQuery::builder()
        .id(&query.id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(query.period_s)
                .stat(&query.stat)
                .build(),
        )
        .return_data(true)
        .build()
}

/// `AWS/Lambda Invocations, ...`: what a failed call was reading.
fn describe(queries: &[MetricQuery]) -> String {
    let mut names: Vec<String> = queries
        .iter()
        .map(|q| format!("{} {}", q.namespace, q.metric))
        .collect();
    names.dedup();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_carries_its_metric_dimensions_stat_and_period() {
        let query = MetricQuery {
            id: "invocations".into(),
            namespace: "AWS/Lambda",
            metric: "Invocations",
            dimensions: vec![
                ("FunctionName", "app-dev".into()),
                ("Resource", "app-dev:dev".into()),
            ],
            stat: "Sum".into(),
            period_s: 60,
        };
        let sdk = to_sdk(&query);
        assert_eq!(sdk.id(), Some("invocations"));
        let stat = sdk.metric_stat().unwrap();
        assert_eq!((stat.period(), stat.stat()), (Some(60), Some("Sum")));
        let metric = stat.metric().unwrap();
        assert_eq!(metric.namespace(), Some("AWS/Lambda"));
        let dimensions: Vec<(&str, &str)> = metric
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap(), d.value().unwrap()))
            .collect();
        assert_eq!(
            dimensions,
            [("FunctionName", "app-dev"), ("Resource", "app-dev:dev")]
        );
        assert_eq!(describe(&[query.clone(), query]), "AWS/Lambda Invocations");
    }
}
