//! Injected I/O errors for the reliability suite (`--features failpoints`; compiled
//! to plain calls otherwise): `CTRDIAG_IOFAULT=<op>:<nth>:<errno>` makes the `nth`
//! call (from 1, counted in this process) of `op` fail with `errno` (`ENOSPC`, `EIO`,
//! `EDQUOT`, `EROFS`), as a full disk or a failing device would. Ops: `write` (a
//! file's contents: half the bytes land first, a short write), `fsync` (a file),
//! `rename`, `dirsync` (the fsync of a directory after a rename), `journal` (a
//! journal line: half of it lands first) and `journal-fsync`.

use std::io::Write;

/// Fails when the fault names this call of `op`.
#[cfg(feature = "failpoints")]
pub fn inject(op: &str) -> std::io::Result<()> {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};
    static FAULT: OnceLock<Option<(String, usize, i32)>> = OnceLock::new();
    static CALLS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
    let fault = FAULT.get_or_init(|| {
        let spec = std::env::var("CTRDIAG_IOFAULT").ok()?;
        let mut parts = spec.splitn(3, ':');
        let op = parts.next()?.to_string();
        let nth = parts.next()?.parse().ok()?;
        let errno = match parts.next()? {
            "ENOSPC" => nix::libc::ENOSPC,
            "EIO" => nix::libc::EIO,
            "EDQUOT" => nix::libc::EDQUOT,
            "EROFS" => nix::libc::EROFS,
            _ => return None,
        };
        Some((op, nth, errno))
    });
    let Some((faulty, nth, errno)) = fault else {
        return Ok(());
    };
    if faulty != op {
        return Ok(());
    }
    let mut calls = CALLS.lock().unwrap_or_else(|p| p.into_inner());
    let count = calls.entry(op.to_string()).or_insert(0);
    *count += 1;
    match *count == *nth {
        true => Err(std::io::Error::from_raw_os_error(*errno)),
        false => Ok(()),
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn inject(_op: &str) -> std::io::Result<()> {
    Ok(())
}

/// `write_all`, where an injected fault of `op` lands half of `bytes` first.
pub fn write_all(op: &str, out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    if let Err(e) = inject(op) {
        out.write_all(&bytes[..bytes.len() / 2])?;
        return Err(e);
    }
    out.write_all(bytes)
}
