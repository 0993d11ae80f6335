//! The plain-file log source on real files: appends, a restart that resumes, rotation by
//! rename and by copytruncate while following, a line still being written, a file
//! replaced while the daemon was down, a file or directory that appears later, and a file
//! renamed away that its writer keeps writing.

mod lab;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ctrdiag::logsource::{LogSourceError, Position, Source};
use lab::follower::{Follower, Seen, line};

/// containerd's log file in a fresh directory (not created yet).
fn log_path() -> (tempfile::TempDir, PathBuf) {
    let dir = lab::scratch_dir("file-source");
    let path = dir.path().join("containerd.log");
    (dir, path)
}

/// Appends `text` as containerd does (O_APPEND), closing the file after.
fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("append to the log");
}

fn follow(path: &Path, from: Option<Position>) -> Follower {
    Follower::start(Source::File(path.to_path_buf()), from)
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Waits until some read-only handle of this process on `path` has read `len` bytes:
/// the source's own file offset, from /proc/self/fdinfo.
async fn wait_until_read(path: &Path, len: u64) {
    let path = path.canonicalize().unwrap();
    lab::wait_for(
        &format!("the source to read {len} bytes of {}", path.display()),
        Duration::from_secs(10),
        || {
            let found = read_offsets(&path).into_iter().any(|pos| pos >= len);
            async move { found.then_some(()) }
        },
    )
    .await
}

/// The offsets of this process's read-only handles on `path`.
fn read_offsets(path: &Path) -> Vec<u64> {
    let mut offsets = Vec::new();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if std::fs::read_link(fd.path()).ok().as_deref() != Some(path) {
            continue;
        }
        let info_path = Path::new("/proc/self/fdinfo").join(fd.file_name());
        let Ok(info) = std::fs::read_to_string(info_path) else {
            continue;
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let read_only = field("flags:")
            .and_then(|f| u64::from_str_radix(&f, 8).ok())
            .is_some_and(|f| f & 3 == 0);
        if let (true, Some(pos)) = (read_only, field("pos:").and_then(|p| p.parse().ok())) {
            offsets.push(pos);
        }
    }
    offsets
}

/// An empty file at `path`, followed from its end (once the source says so).
async fn following_empty(path: &Path) -> Follower {
    append(path, "");
    let mut source = follow(path, None);
    source.following().await;
    source
}

/// Truncates the file at `path` in place, as logrotate's copytruncate does.
fn truncate(path: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// The top of the file now at `path`, as the source reports a switch to it.
fn top(path: &Path) -> Position {
    Position::File {
        inode: inode(path),
        offset: 0,
    }
}

#[tokio::test]
async fn lines_appended_after_start_arrive_and_older_ones_are_not_replayed() {
    let (_dir, path) = log_path();
    append(&path, "old 1\nold 2\n");
    let mut source = follow(&path, None);
    assert_eq!(
        source.following().await,
        Some(Position::File {
            inode: inode(&path),
            offset: 12
        }),
        "started at the end, and says where, so the start can be saved at once"
    );
    append(&path, "new 1\nnew 2\n");
    assert_eq!(source.until("new 2").await, [line("new 1"), line("new 2")]);
    assert_eq!(
        source.last,
        Some(Position::File {
            inode: inode(&path),
            offset: 24
        }),
        "the position is just past the last line's newline"
    );
    assert!(source.lines.iter().all(|l| l.time.is_none()));
    source
        .stop()
        .await
        .expect("a cancelled source ends cleanly");
}

#[tokio::test]
async fn a_burst_larger_than_the_channel_arrives_whole_and_in_order() {
    let (_dir, path) = log_path();
    let mut source = following_empty(&path).await;
    let burst: Vec<String> = (1..=5000).map(|n| format!("line {n}")).collect();
    append(&path, &(burst.join("\n") + "\n"));
    let seen = source.until("line 5000").await;
    let expected: Vec<Seen> = burst.iter().map(|l| line(l)).collect();
    assert_eq!(seen, expected, "nothing dropped, nothing reordered");
    source.stop().await.unwrap();
}

#[tokio::test]
async fn a_restart_resumes_at_the_saved_position_without_losing_or_repeating() {
    let (_dir, path) = log_path();
    let mut source = following_empty(&path).await;
    append(&path, "a\nb\n");
    assert_eq!(source.until("b").await, [line("a"), line("b")]);
    let saved = source.last.clone();
    source.stop().await.unwrap();

    append(&path, "c, written while the daemon was down\nd\n");
    let mut source = follow(&path, saved.clone());
    assert_eq!(source.following().await, saved, "resumed where it stopped");
    append(&path, "e\n");
    assert_eq!(
        source.until("e").await,
        [
            line("c, written while the daemon was down"),
            line("d"),
            line("e")
        ]
    );
    source.stop().await.unwrap();
}

#[tokio::test]
async fn rotation_by_rename_delivers_the_old_files_last_lines_then_the_new_file() {
    let (_dir, path) = log_path();
    let mut source = following_empty(&path).await;
    append(&path, "before 1\n");
    assert_eq!(source.until("before 1").await, [line("before 1")]);

    // logrotate's default: the last lines, then rename, then a new file at the path.
    append(&path, "before 2\nbefore 3\n");
    std::fs::rename(&path, path.with_extension("log.1")).unwrap();
    append(&path, "after 1\n");
    assert_eq!(
        source.until("after 1").await,
        [
            line("before 2"),
            line("before 3"),
            Seen::Following(Some(top(&path))),
            line("after 1")
        ]
    );
    assert_eq!(
        source.last,
        Some(Position::File {
            inode: inode(&path),
            offset: 8
        }),
        "positions now name the new file"
    );
    source.stop().await.unwrap();
}

#[tokio::test]
async fn copytruncate_while_following_starts_again_at_the_top() {
    let (_dir, path) = log_path();
    let mut source = following_empty(&path).await;
    append(&path, "line 1\nline 2\n");
    source.until("line 2").await;

    std::fs::copy(&path, path.with_extension("log.1")).unwrap();
    truncate(&path);
    append(&path, "t\n");
    assert_eq!(
        source.until("t").await,
        [Seen::Following(Some(top(&path))), line("t")]
    );
    source.stop().await.unwrap();
}

#[tokio::test]
async fn copytruncate_followed_by_more_text_than_was_read_is_noticed() {
    let (_dir, path) = log_path();
    let mut source = following_empty(&path).await;
    append(&path, "x\ny\n");
    source.until("y").await;

    // Truncated and written again past the old length before the source looks: only the
    // bytes before its read position tell the file was rewritten.
    truncate(&path);
    append(&path, "a longer first line\nsecond\n");
    assert_eq!(
        source.until("second").await,
        [
            Seen::Following(Some(top(&path))),
            line("a longer first line"),
            line("second")
        ]
    );
    source.stop().await.unwrap();
}

#[tokio::test]
async fn a_partial_line_is_held_until_its_newline() {
    let (_dir, path) = log_path();
    let mut source = following_empty(&path).await;
    let start = "level=error msg=\"PullImage \\\"r/app:1\\\" failed\" error=\"x509: ";
    append(&path, start);
    wait_until_read(&path, start.len() as u64).await;
    append(&path, "certificate signed by unknown authority\"\nnext\n");
    let whole = format!("{start}certificate signed by unknown authority\"");
    assert_eq!(source.until("next").await, [line(&whole), line("next")]);
    source.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_replaced_while_stopped_is_read_from_the_top() {
    let (_dir, path) = log_path();
    let mut source = following_empty(&path).await;
    append(&path, "a much longer line from the old file\n");
    source.until("a much longer line from the old file").await;
    let saved = source.last.clone();
    source.stop().await.unwrap();

    let replacement = path.with_extension("new");
    append(&replacement, "n1\nn2\n");
    std::fs::rename(&replacement, &path).unwrap();
    let mut source = follow(&path, saved);
    assert_eq!(
        source.following().await,
        Some(top(&path)),
        "the saved point is gone"
    );
    assert_eq!(source.until("n2").await, [line("n1"), line("n2")]);
    source.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_truncated_while_stopped_is_read_from_the_top() {
    let (_dir, path) = log_path();
    let mut source = following_empty(&path).await;
    append(&path, "a much longer line from before the truncation\n");
    source
        .until("a much longer line from before the truncation")
        .await;
    let saved = source.last.clone();
    source.stop().await.unwrap();

    truncate(&path);
    append(&path, "s1\n");
    let mut source = follow(&path, saved);
    assert_eq!(
        source.following().await,
        Some(top(&path)),
        "shorter than the saved offset"
    );
    assert_eq!(source.until("s1").await, [line("s1")]);
    source.stop().await.unwrap();
}

#[tokio::test]
async fn a_missing_file_is_waited_for_and_read_from_the_top() {
    let (_dir, path) = log_path();
    let mut source = follow(&path, None);
    assert_eq!(source.following().await, None);
    append(&path, "m1\nm2\n");
    assert_eq!(
        source.until("m2").await,
        [Seen::Following(Some(top(&path))), line("m1"), line("m2")]
    );
    source.stop().await.unwrap();
}

#[tokio::test]
async fn a_directory_is_an_error_that_names_it() {
    let (dir, _) = log_path();
    let source = follow(dir.path(), None);
    let err = source
        .ended()
        .await
        .expect_err("a directory cannot be followed");
    assert!(matches!(err, LogSourceError::NotAFile { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn a_file_renamed_away_and_not_replaced_is_still_read() {
    // A writer that keeps its handle (containerd's stdout redirected to the file) goes on
    // writing into the renamed file until something recreates the path.
    let (_dir, path) = log_path();
    let mut source = following_empty(&path).await;
    append(&path, "before\n");
    assert_eq!(source.until("before").await, [line("before")]);
    let renamed = path.with_extension("log.1");
    std::fs::rename(&path, &renamed).unwrap();
    append(&renamed, "still the old file\n");
    assert_eq!(
        source.until("still the old file").await,
        [line("still the old file")]
    );
    source.stop().await.unwrap();
}

#[tokio::test]
async fn a_log_whose_directory_appears_later_is_followed() {
    // Nothing to watch yet (the source polls then): /var/log/containerd/ made by a
    // package after ctrdiagd started.
    let dir = lab::scratch_dir("file-source");
    let path = dir.path().join("later").join("containerd.log");
    let mut source = follow(&path, None);
    assert_eq!(source.following().await, None);
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    append(&path, "m1\n");
    assert_eq!(
        source.until("m1").await,
        [Seen::Following(Some(top(&path))), line("m1")]
    );
    source.stop().await.unwrap();
}
