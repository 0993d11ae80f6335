//! The journal log source on a real, growing journal file (systemd-journal-remote writes
//! it, the real journalctl follows it): order, no replay of old entries, resume from a
//! saved cursor, other units ignored, binary messages, and the failures an operator sees.

mod lab;

use std::time::{Duration, UNIX_EPOCH};

use ctrdiag::logsource::{JournalSource, LogSourceError, Position, Source};
use lab::follower::{Follower, Seen, line};
use lab::journal::{CONTAINERD_UNIT, LabJournal};

fn follow_file(journal: &LabJournal, from: Option<Position>) -> Follower {
    let source = JournalSource::new(CONTAINERD_UNIT).with_file(journal.file());
    Follower::start(Source::Journal(source), from)
}

#[tokio::test]
async fn entries_after_start_arrive_in_order_and_older_ones_are_not_replayed() {
    let mut journal = LabJournal::start("journal-follow");
    journal.containerd("old 1");
    journal.containerd("old 2");
    journal.wait_written().await;
    let source = JournalSource::new(CONTAINERD_UNIT).with_directory(journal.dir());
    assert_eq!(
        Source::Journal(source.clone()).to_string(),
        "journal (unit containerd.service)"
    );
    let mut follower = Follower::start(Source::Journal(source), None);
    let start = follower.following().await;
    assert!(
        matches!(start, Some(Position::Journal { .. })),
        "started after the last entry, and says where: {start:?}"
    );
    for n in 1..=3 {
        journal.containerd(&format!("new {n}"));
    }
    assert_eq!(
        follower.until("new 3").await,
        [line("new 1"), line("new 2"), line("new 3")]
    );
    let a_while_ago = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert!(
        follower
            .lines
            .iter()
            .all(|l| l.time.is_some_and(|t| t > a_while_ago)),
        "every line has the entry's time: {:?}",
        follower.lines
    );
    follower
        .stop()
        .await
        .expect("a cancelled source ends cleanly");
}

#[tokio::test]
async fn a_restart_resumes_from_the_saved_cursor_without_losing_or_repeating() {
    let mut journal = LabJournal::start("journal-resume");
    journal.containerd("before start");
    journal.wait_written().await;
    let mut follower = follow_file(&journal, None);
    follower.following().await;
    journal.containerd("a");
    journal.containerd("b");
    assert_eq!(follower.until("b").await, [line("a"), line("b")]);
    let saved = follower.last.clone();
    assert!(matches!(saved, Some(Position::Journal { .. })), "{saved:?}");
    follower.stop().await.unwrap();

    journal.containerd("c, written while the daemon was down");
    journal.containerd("d");
    journal.wait_written().await;
    let mut follower = follow_file(&journal, saved.clone());
    assert_eq!(follower.following().await, saved, "resumed at the cursor");
    journal.containerd("e");
    assert_eq!(
        follower.until("e").await,
        [
            line("c, written while the daemon was down"),
            line("d"),
            line("e")
        ]
    );
    follower.stop().await.unwrap();
}

#[tokio::test]
async fn entries_of_other_units_are_ignored() {
    let mut journal = LabJournal::start("journal-units");
    journal.containerd("start");
    journal.wait_written().await;
    let mut follower = follow_file(&journal, None);
    follower.following().await;
    journal.containerd("ours 1");
    journal.write("kubelet.service", b"kubelet's line");
    journal.write("containerd-other.service", b"a unit with a similar name");
    journal.containerd("ours 2");
    assert_eq!(
        follower.until("ours 2").await,
        [line("ours 1"), line("ours 2")]
    );
    follower.stop().await.unwrap();
}

#[tokio::test]
async fn a_binary_message_is_decoded() {
    let mut journal = LabJournal::start("journal-binary");
    journal.containerd("start");
    journal.wait_written().await;
    let mut follower = follow_file(&journal, None);
    follower.following().await;
    let binary = b"pull failed: \xff\xfe not UTF-8\nand a second line";
    journal.write(CONTAINERD_UNIT, binary);
    journal.containerd("end");
    let text = String::from_utf8_lossy(binary).into_owned();
    assert_eq!(follower.until("end").await, [Seen::Line(text), line("end")]);
    follower.stop().await.unwrap();
}

#[tokio::test]
async fn a_unit_without_entries_yet_delivers_its_first_ones() {
    let mut journal = LabJournal::start("journal-empty");
    journal.write(
        "kubelet.service",
        b"the journal exists, containerd has said nothing",
    );
    journal.wait_written().await;
    let mut follower = follow_file(&journal, None);
    assert_eq!(follower.following().await, None);
    journal.containerd("first");
    assert_eq!(follower.until("first").await, [line("first")]);
    follower.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_cursor_falls_back_to_the_end() {
    let mut journal = LabJournal::start("journal-bad-cursor");
    journal.containerd("old");
    journal.wait_written().await;
    let vacuumed = Position::Journal {
        cursor: "not a cursor journalctl knows".into(),
    };
    let mut follower = follow_file(&journal, Some(vacuumed));
    let start = follower.following().await;
    assert!(
        matches!(&start, Some(Position::Journal { cursor }) if !cursor.contains("not a cursor")),
        "fell back to the end, and says where: {start:?}"
    );
    journal.containerd("new");
    assert_eq!(follower.until("new").await, [line("new")]);
    follower.stop().await.unwrap();
}

#[tokio::test]
async fn journalctl_dying_while_following_is_an_error_for_the_caller_to_restart() {
    let mut journal = LabJournal::start("journal-killed");
    journal.containerd("start");
    journal.wait_written().await;
    let mut follower = follow_file(&journal, None);
    follower.following().await;
    let file = journal.file().display().to_string();
    let pid = lab::wait_for("journalctl -f to run", Duration::from_secs(10), || {
        let pid = following_journalctl(&file);
        async move { pid }
    })
    .await;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let err = follower.ended().await.expect_err("journalctl is gone");
    assert!(
        matches!(err, LogSourceError::JournalctlExited { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("SIGKILL"), "{err}");
}

/// This process's `journalctl -f` child reading `file`.
fn following_journalctl(file: &str) -> Option<nix::unistd::Pid> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let stat = std::fs::read_to_string(p.path().join("stat")).ok()?;
        let ppid = stat.rsplit(')').next()?.split_whitespace().nth(1)?;
        let cmdline = std::fs::read_to_string(p.path().join("cmdline")).ok()?;
        let args: Vec<&str> = cmdline.split('\0').collect();
        let ours = ppid == me && args.contains(&"-f") && args.contains(&file);
        let pid = p.file_name().to_str()?.parse().ok()?;
        ours.then(|| nix::unistd::Pid::from_raw(pid))
    })
}

#[tokio::test]
async fn a_missing_journalctl_is_a_clear_error() {
    let source = JournalSource::new(CONTAINERD_UNIT).with_program("/nonexistent/journalctl");
    let err = Follower::start(Source::Journal(source), None)
        .ended()
        .await
        .expect_err("no journalctl, no journal");
    assert!(
        matches!(err, LogSourceError::JournalctlMissing { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("/nonexistent/journalctl"), "{message}");
    assert!(
        message.contains("containerd_log"),
        "says what else to do: {message}"
    );
}

#[tokio::test]
async fn a_journal_that_cannot_be_opened_is_an_error_with_journalctls_words() {
    let dir = lab::scratch_dir("journal-missing");
    let source = JournalSource::new(CONTAINERD_UNIT).with_file(dir.path().join("none.journal"));
    let err = Follower::start(Source::Journal(source), None)
        .ended()
        .await
        .expect_err("nothing to read");
    assert!(
        matches!(err, LogSourceError::JournalctlFailed { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
}
