//! ctrdiag's systemd client (zbus) on a real dbus-daemon, against the lab's stand-in
//! systemd that really restarts containerd.

#[macro_use]
mod lab;

use ctrdiag::systemd::{Systemd, SystemdError};
use lab::containerd::{LabContainerd, Version};
use lab::systemd::{Bus, FakeSystemd, RESTART_TIMEOUT, RestartBehaviour, UNIT};

#[tokio::test]
async fn restart_unit_waits_for_the_job_and_containerd_really_restarts() {
    let bus = Bus::start();
    let ctr = LabContainerd::start(Version::V2_1).await;
    let client = ctr.client();
    let pid_before = ctr.pid();
    let fake = FakeSystemd::serve(&bus, ctr).await;

    let systemd = Systemd::connect(Some(&bus.address)).await.expect("connect");
    let state = systemd.unit_state(UNIT).await.expect("state");
    assert_eq!(
        (state.active_state.as_str(), state.sub_state.as_str()),
        ("active", "running")
    );

    systemd
        .restart_unit(UNIT, RESTART_TIMEOUT)
        .await
        .expect("restart");
    assert_eq!(fake.restarts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_ne!(
        fake.containerd.lock().await.pid(),
        pid_before,
        "a new containerd process"
    );
    // The job is only removed once containerd answers again.
    assert!(
        client
            .runtime_status()
            .await
            .expect("CRI after restart")
            .runtime_ready
    );
}

#[tokio::test]
async fn a_failed_job_and_an_unknown_unit_are_reported() {
    let bus = Bus::start();
    let ctr = LabContainerd::start(Version::V1_6).await;
    let fake = FakeSystemd::serve(&bus, ctr).await;
    let systemd = Systemd::connect(Some(&bus.address)).await.expect("connect");

    fake.set_behaviour(RestartBehaviour::Fail).await;
    match systemd.restart_unit(UNIT, RESTART_TIMEOUT).await {
        Err(SystemdError::JobFailed { unit, result }) => {
            assert_eq!(unit, UNIT);
            assert_eq!(result, "failed");
        }
        other => panic!("{other:?}"),
    }
    let err = systemd
        .restart_unit("nonexistent.service", RESTART_TIMEOUT)
        .await
        .expect_err("unknown unit");
    assert!(err.to_string().contains("nonexistent.service"), "{err}");
}

#[tokio::test]
async fn an_unreachable_bus_is_a_clear_error() {
    let dir = lab::scratch_dir("nobus-");
    let address = format!("unix:path={}", dir.path().join("bus").display());
    let err = Systemd::connect(Some(&address))
        .await
        .err()
        .expect("no bus there");
    assert!(err.to_string().contains("cannot connect to D-Bus"), "{err}");
}

/// A bus that accepts connections and never says a word: every call ends by its
/// deadline with a message naming systemd, and the next call tries again.
#[tokio::test]
async fn a_hung_bus_times_out_instead_of_hanging() {
    let dir = lab::scratch_dir("hungbus-");
    let path = dir.path().join("bus");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    let _server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    let client = ctrdiag::systemd::SystemdClient::with_call_timeout(
        Some(format!("unix:path={}", path.display())),
        std::time::Duration::from_millis(300),
    );
    for _ in 0..2 {
        let err = client.unit_state(UNIT).await.expect_err("a hung bus");
        assert!(matches!(err, SystemdError::CallTimeout { .. }), "{err:?}");
        assert!(err.to_string().contains("did not answer within"), "{err}");
    }
    let err = client
        .restart_unit(UNIT, RESTART_TIMEOUT)
        .await
        .expect_err("a hung bus");
    assert!(matches!(err, SystemdError::CallTimeout { .. }), "{err:?}");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "each failed call dials afresh"
    );
}
