//! Building the image from the context tar with the Docker engine, through
//! bollard (no `docker` CLI needed).

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use super::{BuildError, BuildStep, ImageEvent, ImageRef, OnEvent, Tail};
use crate::config::{Architecture, Stage};

/// Lines of the build log kept for the error message.
const TAIL_LINES: usize = 60;

/// Where bollard looks for the engine: `DOCKER_HOST`, else the local socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// Passes each non-empty line of a log message on, keeping the tail.
fn log(tail: &mut Tail, on_event: OnEvent<'_>, text: &str) {
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        tail.push(line);
        on_event(ImageEvent::BuildLog(line.to_string()));
    }
}

/// Connects to the engine named by `DOCKER_HOST` (default: the local
/// socket); see [`connect_docker_at`].
pub async fn connect_docker() -> Result<Docker, BuildError> {
    connect_docker_at(&docker_host()).await
}

/// Connects to the engine at `host` (`unix://...`, `tcp://...`) and checks
/// that it answers, so that a stopped engine is one clear error here rather
/// than an obscure one mid-build.
pub async fn connect_docker_at(host: &str) -> Result<Docker, BuildError> {
    let unreachable = |detail: bollard::errors::Error| {
        BuildError::new(
            BuildStep::Build,
            format!(
                "cannot reach the Docker engine at {host}: {detail}; start it \
                 (scripts/local-cloud up) or set DOCKER_HOST"
            ),
        )
    };
    let docker = Docker::connect_with_host(host).map_err(unreachable)?;
    docker.ping().await.map_err(unreachable)?;
    Ok(docker)
}

/// The platform the image is built for; Lambda refuses an image whose
/// architecture differs from the function's.
pub fn platform(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::X86_64 => "linux/amd64",
        Architecture::Arm64 => "linux/arm64",
    }
}

/// Builds `context` (from [`super::build_context`]) into `image.by_tag()`,
/// with the stage's base image as the `BASE_IMAGE` build argument. Each log
/// line goes to `on_event` as [`ImageEvent::BuildLog`]; a failed build's
/// error carries the end of the log.
pub async fn build_image(
    docker: &Docker,
    stage: &Stage,
    context: Vec<u8>,
    image: &ImageRef,
    on_event: OnEvent<'_>,
) -> Result<(), BuildError> {
    let build_args = HashMap::from([("BASE_IMAGE".to_string(), stage.image.base_image.clone())]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(&image.by_tag())
        .buildargs(&build_args)
        .platform(platform(stage.function.architecture))
        .rm(true)
        .forcerm(true)
        .build();

    let mut tail = Tail::new(TAIL_LINES);
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                    log(&mut tail, on_event, text);
                }
                if let Some(message) = info.error_detail.and_then(|detail| detail.message) {
                    log(&mut tail, on_event, &message);
                    failure = Some(message);
                    break;
                }
            }
            // The engine reports a failing step (a bad COPY, a RUN that
            // exits non-zero) as an error inside the stream.
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                log(&mut tail, on_event, &error);
                failure = Some(error);
                break;
            }
            Err(e @ bollard::errors::Error::DockerResponseServerError { .. }) => {
                failure = Some(e.to_string());
                break;
            }
            Err(e) => failure = Some(format!("lost the Docker engine during the build: {e}")),
        }
        if failure.is_some() {
            break;
        }
    }
    drop(stream);
    if let Some(message) = failure {
        return Err(BuildError::new(
            BuildStep::Build,
            format!("the Docker build of {} failed: {message}", image.by_tag()),
        )
        .with_output(tail.into_lines()));
    }
    Ok(())
}

/// Whether the engine already has `image` (by tag).
pub async fn image_exists(docker: &Docker, image: &ImageRef) -> bool {
    docker.inspect_image(&image.by_tag()).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_engine_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}/docker.sock", dir.path().display());
        let error = connect_docker_at(&host).await.unwrap_err();
        assert_eq!(error.step, BuildStep::Build);
        let text = error.to_string();
        assert!(
            text.contains(&format!("cannot reach the Docker engine at {host}")),
            "{text}"
        );
        assert!(text.contains("scripts/local-cloud up"), "{text}");
        assert!(text.contains("DOCKER_HOST"), "{text}");
    }
}
