//! One file followed by path, in small blocking steps (the async side runs each on the
//! blocking pool and sleeps between idle ones). Knows rotation by rename (a new inode at
//! the path: the old handle is read to its end, then the new file from its top) and
//! truncation (the file is shorter than what was read, or the bytes just before the read
//! position changed: read again from the top).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::lines::LineSplitter;
use super::{LogLine, LogSourceError, Position, SourceEvent};

/// Bytes read per step: bounds the work and memory of one step.
const CHUNK: usize = 64 * 1024;
/// How many already-read bytes are compared to notice a file rewritten in place (a
/// copytruncate followed by at least as much new text as was read). A few lines' worth:
/// containerd's lines share long suffixes (`... unknown authority"`), so a short window
/// matches a different line at the same offset (found by the rotation test).
const TAIL: usize = 4096;

pub(super) struct Tail {
    path: PathBuf,
    open: Option<OpenFile>,
}

struct OpenFile {
    file: File,
    inode: u64,
    /// Bytes consumed from `file` (its own read offset is kept equal to it).
    read_pos: u64,
    lines: LineSplitter,
    /// The last bytes before `read_pos`, as they were read.
    tail: Vec<u8>,
}

/// What one step found, in order.
pub(super) struct Step {
    pub(super) events: Vec<SourceEvent>,
    /// More is ready to read: step again without waiting.
    pub(super) more: bool,
}

impl Step {
    /// The tail (re)started a file: opened one that appeared, or read one from its top.
    pub(super) fn switched(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, SourceEvent::Following { .. }))
    }

    fn idle() -> Step {
        Step {
            events: Vec::new(),
            more: false,
        }
    }
}

impl Tail {
    /// Opens `path` where `from` says, if that point is still in the same file; otherwise
    /// at its end (`from` is `None` or not a file position) or its top (the file was
    /// replaced or truncated since). A missing file will be read from its top when it
    /// appears. Returns the start to report in [`SourceEvent::Following`].
    pub(super) fn start(
        path: PathBuf,
        from: Option<Position>,
    ) -> Result<(Tail, Option<Position>), LogSourceError> {
        let Some((file, inode, len)) = open_path(&path)? else {
            return Ok((Tail { path, open: None }, None));
        };
        let offset = match from {
            Some(Position::File {
                inode: saved,
                offset,
            }) if saved == inode && offset <= len => offset,
            Some(Position::File { .. }) => 0,
            Some(Position::Journal { .. }) | None => len,
        };
        let started = Some(Position::File { inode, offset });
        let open = OpenFile::at(file, inode, offset).map_err(unreadable(&path))?;
        Ok((
            Tail {
                path,
                open: Some(open),
            },
            started,
        ))
    }

    /// Reads what is new, or notices a rotation or truncation, or finds nothing to do.
    pub(super) fn step(&mut self) -> Result<Step, LogSourceError> {
        let Some(open) = self.open.as_mut() else {
            return self.switch(Vec::new());
        };
        let len = open.file.metadata().map_err(unreadable(&self.path))?.len();
        if len < open.read_pos || !open.tail_unchanged().map_err(unreadable(&self.path))? {
            open.rewind().map_err(unreadable(&self.path))?;
            return Ok(Step {
                events: vec![SourceEvent::Following {
                    from: Some(Position::File {
                        inode: open.inode,
                        offset: 0,
                    }),
                }],
                more: true,
            });
        }
        if len > open.read_pos {
            let lines = open.read_chunk().map_err(unreadable(&self.path))?;
            return Ok(Step {
                events: lines_event(lines),
                more: open.read_pos < len,
            });
        }
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.ino() != open.inode => {
                let lines = open.drain().map_err(unreadable(&self.path))?;
                self.open = None;
                self.switch(lines_event(lines))
            }
            Ok(_) => Ok(Step::idle()),
            // Renamed away and not yet recreated: the writer may still add to the old file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Step::idle()),
            Err(e) => Err(unreadable(&self.path)(e)),
        }
    }

    /// Opens the file now at the path from its top, after `events` (the end of the
    /// previous file); nothing happens while the path is missing.
    fn switch(&mut self, mut events: Vec<SourceEvent>) -> Result<Step, LogSourceError> {
        let Some((file, inode, _)) = open_path(&self.path)? else {
            return Ok(Step {
                events,
                more: false,
            });
        };
        self.open = Some(OpenFile::at(file, inode, 0).map_err(unreadable(&self.path))?);
        events.push(SourceEvent::Following {
            from: Some(Position::File { inode, offset: 0 }),
        });
        Ok(Step { events, more: true })
    }
}

/// `lines` as the event that carries them, if there are any.
fn lines_event(lines: Vec<LogLine>) -> Vec<SourceEvent> {
    if lines.is_empty() {
        Vec::new()
    } else {
        vec![SourceEvent::Lines(lines)]
    }
}

/// The regular file at `path` with its inode and length; `None` if there is none.
fn open_path(path: &Path) -> Result<Option<(File, u64, u64)>, LogSourceError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(path)(e)),
    };
    let meta = file.metadata().map_err(unreadable(path))?;
    if !meta.is_file() {
        return Err(LogSourceError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(Some((file, meta.ino(), meta.len())))
}

fn unreadable(path: &Path) -> impl FnOnce(std::io::Error) -> LogSourceError + '_ {
    move |source| LogSourceError::FileUnreadable {
        path: path.to_path_buf(),
        source,
    }
}

impl OpenFile {
    /// `file` positioned at `offset`, remembering the bytes just before it.
    fn at(mut file: File, inode: u64, offset: u64) -> std::io::Result<OpenFile> {
        let start = offset.saturating_sub(TAIL as u64);
        let mut tail = vec![0; (offset - start) as usize];
        file.read_exact_at(&mut tail, start)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(OpenFile {
            file,
            inode,
            read_pos: offset,
            lines: LineSplitter::new(inode, offset),
            tail,
        })
    }

    /// Starts again from the top of the same file (it was truncated or rewritten); a
    /// held partial line belonged to the old text and is dropped.
    fn rewind(&mut self) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.read_pos = 0;
        self.lines = LineSplitter::new(self.inode, 0);
        self.tail.clear();
        Ok(())
    }

    /// Reads up to [`CHUNK`] bytes and returns the lines they complete.
    fn read_chunk(&mut self) -> std::io::Result<Vec<LogLine>> {
        let mut buf = vec![0; CHUNK];
        let n = self.file.read(&mut buf)?;
        buf.truncate(n);
        self.read_pos += n as u64;
        let keep = self.tail.len().min(TAIL - n.min(TAIL));
        self.tail.drain(..self.tail.len() - keep);
        self.tail.extend_from_slice(&buf[n.saturating_sub(TAIL)..]);
        Ok(self.lines.push(&buf))
    }

    /// Reads a file that has been rotated away to its end, its last line even without `\n`.
    fn drain(&mut self) -> std::io::Result<Vec<LogLine>> {
        let mut lines = Vec::new();
        loop {
            let before = self.read_pos;
            lines.extend(self.read_chunk()?);
            if self.read_pos == before {
                lines.extend(self.lines.finish());
                return Ok(lines);
            }
        }
    }

    /// Whether the bytes before `read_pos` are still those that were read.
    fn tail_unchanged(&self) -> std::io::Result<bool> {
        let mut now = vec![0; self.tail.len()];
        match self
            .file
            .read_exact_at(&mut now, self.read_pos - self.tail.len() as u64)
        {
            Ok(()) => Ok(now == self.tail),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    }
}
