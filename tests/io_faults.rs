//! I/O errors at every write, fsync, rename and journal append a fix makes, against
//! real containerd 2.1 and the real daemon (`CTRDIAG_IOFAULT`, `--features
//! failpoints`): a CA fix that must also insert `config_path` into config.toml and
//! restart containerd, with the nth call of each operation failing as a full disk
//! (ENOSPC) would, for every n until the fix runs clean. After each fault the change
//! is undone or refused with the device's own words, config.toml holds its old bytes
//! and parses, no temporary file is left, the journal stays readable, and the node
//! still pulls with the fix applied at the end. `CTRDIAG_RELIABILITY=long` adds EIO,
//! EDQUOT and EROFS (scripts/reliability.sh); every run prints one `RELIABILITY` line.

#[macro_use]
mod lab;

use serde_json::Value;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};

/// Every operation the executor and the journal route through the fault injector.
const OPS: [&str; 6] = [
    "write",
    "fsync",
    "rename",
    "dirsync",
    "journal",
    "journal-fsync",
];

fn errnos() -> Vec<(&'static str, &'static str)> {
    let mut errnos = vec![("ENOSPC", "No space left on device")];
    if std::env::var("CTRDIAG_RELIABILITY").as_deref() == Ok("long") {
        errnos.extend([
            ("EIO", "Input/output error"),
            ("EDQUOT", "Disk quota exceeded"),
            ("EROFS", "Read-only file system"),
        ]);
    }
    errnos
}

/// Files whose names say they are ctrdiag's temporary files, anywhere under `dir`.
fn temporaries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temporaries(&path));
        } else if path.to_string_lossy().ends_with(".tmp") {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test.sh sets it)"
)]
async fn every_io_fault_of_a_fix_is_undone_or_refused_and_nothing_is_half_written() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start_with(
        Version::V2_1,
        LabConfig {
            config_path: false,
            ..Default::default()
        },
    )
    .await;
    let bus = Bus::start();
    let mut daemon =
        Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    let (config_file, certs_d) = (ctr.config_file.clone(), ctr.certs_d.clone());
    let config_dir = config_file.parent().unwrap().to_path_buf();
    let _fake = FakeSystemd::serve(&bus, ctr).await;
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let image = registry.image_ref();
    let before = std::fs::read(&config_file).unwrap();

    let mut injected = 0;
    for (errno, words) in errnos() {
        for op in OPS {
            for nth in 1.. {
                let fault = format!("{op}:{nth}:{errno}");
                daemon
                    .restart_with_env(&[("CTRDIAG_IOFAULT", fault.as_str())])
                    .await;
                let known = daemon.cli(&["-o", "json", "changes"]).await.json()["changes"]
                    .as_array()
                    .map_or(0, |c| c.len());
                let run = daemon
                    .cli(&["-o", "json", "fix", &image, "--ca", &ca])
                    .await;
                let result: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
                let config = std::fs::read(&config_file).unwrap();
                toml::from_str::<toml::Table>(std::str::from_utf8(&config).unwrap())
                    .unwrap_or_else(|e| panic!("{fault}: config.toml does not parse: {e}"));
                assert_eq!(
                    temporaries(&config_dir),
                    Vec::<std::path::PathBuf>::new(),
                    "{fault}"
                );
                let changes = daemon.cli(&["-o", "json", "changes"]).await;
                assert_eq!(changes.code, 0, "{fault}: {changes:?}");
                let listed = changes.json()["changes"].as_array().unwrap().clone();
                assert!(
                    listed.iter().all(|c| c["state"] != "damaged"),
                    "{fault}: the journal stays readable: {listed:#?}"
                );
                if result["ok"] == true {
                    // Past the last call of `op`: the fault never fired; undo it for the next op.
                    assert_ne!(config, before, "{fault}");
                    let id = result["change_id"].as_str().unwrap();
                    daemon.restart().await;
                    let back = daemon.cli(&["-o", "json", "rollback", id]).await;
                    assert_eq!(back.code, 0, "{fault}: {back:?}");
                    assert_eq!(std::fs::read(&config_file).unwrap(), before, "{fault}");
                    break;
                }
                injected += 1;
                let said = format!("{}{}", run.stdout, run.stderr);
                assert!(said.contains(words), "{fault}: the device's words: {said}");
                assert_eq!(config, before, "{fault}: config.toml has its old bytes");
                assert!(
                    listed[known.min(listed.len())..]
                        .iter()
                        .all(|c| c["state"] == "rolled_back"),
                    "{fault}: undone (or never recorded): {:#?}\n{}",
                    &listed[known.min(listed.len())..],
                    daemon.log()
                );
                assert!(
                    !certs_d.join(&registry.host).join("hosts.toml").exists(),
                    "{fault}: no hosts.toml left"
                );
                assert!(nth < 100, "{fault}: the fix never ran clean");
            }
        }
    }
    println!(
        "RELIABILITY {{\"suite\":\"io_faults\",\"injected\":{injected},\"lost_or_corrupted\":0}}"
    );
    assert!(
        injected >= OPS.len(),
        "every operation failed at least once"
    );
}
