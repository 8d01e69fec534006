//! A moto of a test's own, for what the shared local AWS must not be set
//! to (IAM enforced, an account's quota lowered): started with
//! `scripts/local-cloud serve-moto PORT` (the same strict extension) and
//! the given environment, stopped when dropped.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{call_url, workspace_root};

pub struct OwnMoto {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl OwnMoto {
    /// Starts one on a free port with `env` added to its environment, and
    /// waits until it answers; `what` names it in its log file and panics.
    pub fn start(what: &str, env: &[(&str, &str)]) -> OwnMoto {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{what}-moto-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(workspace_root().join("scripts/local-cloud"))
            .args(["serve-moto", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("scripts/local-cloud serve-moto");
        let mut moto = OwnMoto {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        moto.wait_until_it_answers(what);
        moto
    }

    fn wait_until_it_answers(&mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let addr = self.url.trim_start_matches("http://").parse().unwrap();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the {what} moto exited ({status}); see {}", self.log());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                && call_url("GET", &format!("{}/_local-aws/status", self.url), &[]).status == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the {what} moto does not answer; see {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The SDK's configuration aimed at this moto. Set on the loader: an
    /// endpoint set on a loaded `SdkConfig` loses to `AWS_ENDPOINT_URL`,
    /// which points at the shared moto.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.loader().load().await
    }

    /// [`Self::sdk_config`] signed with the access key `key_id`/`secret`
    /// of a user of this moto (which may enforce IAM).
    pub async fn sdk_config_as(&self, key_id: &str, secret: &str) -> aws_config::SdkConfig {
        let key = aws_sdk_sts::config::Credentials::new(key_id, secret, None, None, "own-moto");
        self.loader().credentials_provider(key).load().await
    }

    fn loader(&self) -> aws_config::ConfigLoader {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(super::region()))
            .endpoint_url(&self.url)
    }

    /// Its log file, for a failure's message.
    pub fn log(&self) -> String {
        self.log.display().to_string()
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
