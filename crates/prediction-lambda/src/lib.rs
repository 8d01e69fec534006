//! The /predict function as a library: everything between the API Gateway
//! proxy event and the proxy response, kept apart from the Lambda runtime
//! (`main.rs`) so that tests drive [`handle`] directly with real models.
//!
//! The flow: `event::parse_event` reads the raw event, `request::route`
//! checks path, method, size and input and names what to predict, and
//! [`handle`] asks the [`prediction::Predictor`] and builds the answer with
//! `response` (CORS on every answer) plus one [`RequestLog`]. The modules
//! are private; what `main.rs` and the tests use is re-exported here.

pub mod config;
mod event;
mod handler;
mod request;
mod response;

pub use config::FunctionConfig;
pub use handler::{Invocation, RequestLog, handle};
pub use response::{ApiError, Cors, ProxyResponse};
