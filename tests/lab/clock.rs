//! The daemon's clock as a file (`CTRDIAG_TEST_CLOCK`, `--features failpoints`): tests
//! move time forward by writing to it, never by waiting.

use std::path::PathBuf;

pub struct TestClock {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestClock {
    /// A clock that starts at the real time.
    pub fn new() -> TestClock {
        let dir = super::scratch_dir("clock-");
        let path = dir.path().join("now");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        std::fs::write(&path, now.to_string()).expect("write the clock");
        TestClock { path, _dir: dir }
    }

    pub fn now(&self) -> u64 {
        std::fs::read_to_string(&self.path)
            .expect("read the clock")
            .trim()
            .parse()
            .expect("a number")
    }

    /// Moves the daemon's time forward by `secs`.
    pub fn advance(&self, secs: u64) {
        let next = self.now() + secs;
        std::fs::write(&self.path, next.to_string()).expect("write the clock");
    }

    /// The environment that makes a daemon read this clock.
    pub fn env(&self) -> (&'static str, &str) {
        (
            "CTRDIAG_TEST_CLOCK",
            self.path.to_str().expect("UTF-8 path"),
        )
    }
}
