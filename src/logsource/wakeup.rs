//! When the file source should look at its file again: as soon as the kernel says the
//! file or its name changed (inotify on the file's directory and on the open file), so
//! an idle daemon sleeps instead of polling; where inotify cannot be used (no watch
//! left, a directory that is not there yet or went away, a file system that does not
//! report changes), a short poll as before.
//!
//! A wakeup is only a hint: the tail decides what changed. So events are never parsed
//! beyond "is this ours", and a slow fallback tick covers what inotify does not see
//! (writes from another host on a network file system).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use tokio::io::unix::AsyncFd;

/// The wait between looks when inotify is not available: the delay before a new line
/// is seen, against the wakeups of an idle daemon.
const POLL: Duration = Duration::from_millis(25);

/// The longest wait with inotify: a look now and then in case a change was not
/// reported. Rare enough to cost nothing.
const FALLBACK: Duration = Duration::from_secs(1);

/// The directory events that concern the followed name: written or truncated,
/// created, renamed to or from, deleted. (The open file's own watch sees writes after
/// it has been renamed away.)
fn dir_mask() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_ONLYDIR
}

pub(super) struct Wakeup {
    notify: Option<Notify>,
}

struct Notify {
    fd: AsyncFd<NotifyFd>,
    dir: WatchDescriptor,
    /// The file being read, by inode (follows it when it is renamed away).
    file: Option<WatchDescriptor>,
    name: OsString,
}

/// `AsyncFd` wants `AsRawFd`; nix's `Inotify` offers `AsFd`.
struct NotifyFd(Inotify);

impl AsRawFd for NotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// What one look at the inotify queue found.
enum Queue {
    Ours,
    NotOurs,
    /// The directory's watch is gone (the directory was removed) or the queue failed.
    Broken,
}

impl Wakeup {
    /// Watches the directory that holds `path`; must be called before the file is first
    /// opened, so no change between the two goes unseen. Falls back to polling, with a
    /// warning, when the directory cannot be watched.
    pub(super) fn new(path: &Path) -> Wakeup {
        let notify = Notify::new(path)
            .inspect_err(|e| {
                tracing::warn!(
                    path = %path.display(),
                    "cannot watch the log's directory ({e}); polling it every {} ms",
                    POLL.as_millis()
                )
            })
            .ok();
        Wakeup { notify }
    }

    /// Watches the file now at `path` too (call after the tail opened or switched
    /// file). A file that cannot be watched is still seen through its directory.
    pub(super) fn watch_file(&mut self, path: &Path) {
        let Some(n) = self.notify.as_mut() else {
            return;
        };
        let wd =
            n.fd.get_ref()
                .0
                .add_watch(path, AddWatchFlags::IN_MODIFY)
                .ok();
        if let Some(old) = n.file.take().filter(|old| Some(*old) != wd) {
            // Already gone when the file was deleted; nothing to undo then.
            let _ = n.fd.get_ref().0.rm_watch(old);
        }
        n.file = wd;
    }

    /// Returns when the file may have changed, or after the longest wait.
    pub(super) async fn wait(&mut self) {
        let Some(n) = self.notify.as_ref() else {
            return tokio::time::sleep(POLL).await;
        };
        let deadline = tokio::time::sleep(FALLBACK);
        tokio::pin!(deadline);
        let queue = loop {
            tokio::select! {
                _ = &mut deadline => return,
                queue = n.next() => match queue {
                    Queue::NotOurs => continue,
                    other => break other,
                },
            }
        };
        if let Queue::Broken = queue {
            tracing::warn!(
                "stopped receiving changes of the log's directory; polling every {} ms",
                POLL.as_millis()
            );
            self.notify = None;
        }
    }
}

impl Notify {
    fn new(path: &Path) -> io::Result<Notify> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name")
            })?
            .to_os_string();
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let dir = inotify.add_watch(dir, dir_mask())?;
        // SAFETY: `NotifyFd` owns the inotify descriptor (an `OwnedFd` inside `Inotify`),
        // so it stays open and is the same descriptor for as long as the `AsyncFd` lives.
        let fd = unsafe { AsyncFd::register(NotifyFd(inotify)) }.map_err(|e| e.into_parts().1)?;
        Ok(Notify {
            fd,
            dir,
            file: None,
            name,
        })
    }

    /// Waits for the next batch of events and says whether any is ours.
    async fn next(&self) -> Queue {
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                return Queue::Broken;
            };
            match ready.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from)) {
                Ok(Ok(events)) => return self.classify(&events),
                Ok(Err(_)) => return Queue::Broken,
                Err(_would_block) => continue,
            }
        }
    }

    fn classify(&self, events: &[InotifyEvent]) -> Queue {
        let mut queue = Queue::NotOurs;
        for e in events {
            if e.wd == self.dir && e.mask.contains(AddWatchFlags::IN_IGNORED) {
                return Queue::Broken;
            }
            let ours = e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW)
                || Some(e.wd) == self.file
                || (e.wd == self.dir && e.name.as_deref() == Some(self.name.as_os_str()));
            if ours {
                queue = Queue::Ours;
            }
        }
        queue
    }
}
