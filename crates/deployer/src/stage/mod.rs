//! One model of a stage, shared by `plan`, `up`, `status` and `destroy`,
//! which all start from one [`survey`]: [`desired`] (the configuration
//! with its names and image), [`actual`] (every resource read once,
//! concurrently), [`plan`] (typed actions between the two), [`apply`]
//! (carries out the plan it is given) and [`teardown`] (deletes what the
//! survey found, callers first). The optional [`parts`] (the custom
//! [`domain`], the [`alarms`]) plug into each step through one module. The
//! stage [`lock`], the [`image`] as commands build and push it, the
//! [`release`] checks, the [`memory`] advice and the [`metrics`] read sit
//! beside them, below the commands.

use crate::aws::Connection;
use crate::config::Stage;

pub use survey::{Purpose, Survey, survey};

pub mod actual;
pub mod alarms;
pub mod apply;
pub mod deployed;
pub mod desired;
pub mod domain;
pub mod image;
pub(crate) mod lock;
pub(crate) mod memory;
pub(crate) mod metrics;
pub mod parts;
pub mod plan;
pub mod release;
pub mod survey;
pub mod teardown;

#[cfg(test)]
mod api_plan_tests;

impl Stage {
    /// Where and as whom the stage's AWS calls go.
    pub fn connection(&self) -> Connection {
        Connection {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            dummy_credentials: self.dummy_credentials,
        }
    }
}
