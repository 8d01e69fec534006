//! A `deployer` that runs until it is stopped (`dev`, `up --watch`): its
//! stdout read line by line as it comes, its stderr kept for the failure
//! message, Ctrl-C (SIGINT) to stop it as a user would, and a kill if the
//! test fails first.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a line may take before the test gives up on it: a hang guard,
/// not a measurement (a first compile of the function can take minutes).
const LINE_WAIT: Duration = Duration::from_secs(900);

pub struct Running {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `command` with its stdout and stderr piped.
    pub fn start(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Running {
            child,
            lines,
            stderr,
        }
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next line of stdout; fails the test (with stderr) if it exits
    /// or prints nothing for a long time.
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(LINE_WAIT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                panic!(
                    "deployer ended ({status:?}) without another line\nstderr:\n{}",
                    self.stderr()
                )
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("no line for {LINE_WAIT:?}\nstderr:\n{}", self.stderr())
            }
        }
    }

    /// Waits until stderr holds `needle` (a progress line such as `ready`);
    /// fails the test if it exits first or never does.
    pub fn wait_stderr(&mut self, needle: &str) {
        let give_up = std::time::Instant::now() + LINE_WAIT;
        while !self.stderr().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "deployer ended ({status}) before {needle:?}\nstderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                std::time::Instant::now() < give_up,
                "no {needle:?} for {LINE_WAIT:?}\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The next stdout line, as JSON.
    pub fn next_json(&mut self) -> serde_json::Value {
        let line = self.next_line();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\nstderr:\n{}", self.stderr()))
    }

    /// Ctrl-C, then waits for it to end; returns how it ended.
    pub fn interrupt(&mut self) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid, with a valid signal.
        unsafe { libc::kill(pid, libc::SIGINT) };
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
