//! Scheduled probes and automatic remediation against real parts: containerd 2.1, a real
//! TLS registry with a private CA, the real daemon, CLI and metrics endpoint.

#[macro_use]
mod lab;

use std::time::Duration;

use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};
use lab::{free_port, scrape, wait_for};

const SOON: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_probe_records_the_certificate_warns_before_it_expires_and_leaves_the_store() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    ctr.trust_registry_ca(&registry);
    let image = registry.image_ref();
    let host = registry.host.clone();
    let metrics = format!("127.0.0.1:{}", free_port());
    // The lab's leaf is valid for 30 days: inside a 40-day window.
    let daemon = Daemon::start_with(
        &ctr,
        &format!(
            "metrics_address = \"{metrics}\"\nprobe_images = [\"{image}\"]\nprobe_interval_secs = 3600\ncert_expiry_warning_days = 40\n"
        ),
    )
    .await;

    let expiring = wait_for("a certificate_expiring event", SOON, || async {
        let v = daemon
            .cli(&["-o", "json", "events", "--cause", "tls_expiring_soon"])
            .await
            .json();
        v["events"].as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(expiring["kind"], "certificate_expiring", "{expiring}");
    assert_eq!(expiring["host"], host.as_str());

    let not_after = registry.tls.as_ref().unwrap().not_after.unix_timestamp();
    let exposition = wait_for("the probe's metrics", SOON, || async {
        let text = scrape(&metrics).await;
        text.contains(&format!(
            "ctrdiag_probes_total{{registry=\"{host}\",result=\"ok\"}} 1"
        ))
        .then_some(text)
    })
    .await;
    for line in [
        format!(
            "ctrdiag_registry_certificate_expiry_timestamp_seconds{{registry=\"{host}\"}} {not_after}"
        ),
        format!(
            "ctrdiag_registry_problem{{registry=\"{host}\",area=\"certificate\",cause=\"tls_expiring_soon\"}} 1"
        ),
        format!("ctrdiag_last_successful_probe_timestamp_seconds{{registry=\"{host}\"}}"),
    ] {
        assert!(exposition.contains(&line), "{line} missing:\n{exposition}");
    }
    assert!(
        !daemon.lists_image(&image).await,
        "the probe's test pull left the store as it was"
    );

    // diagnose warns too, before any pull fails (and the pull works: healthy).
    let d = daemon.cli(&["-o", "json", "diagnose", &image]).await;
    assert_eq!(d.code, 0, "{d:?}");
    let findings = d.json()["findings"].as_array().unwrap().clone();
    let w = findings
        .iter()
        .find(|f| f["cause"] == "tls_expiring_soon")
        .unwrap_or_else(|| panic!("no expiry warning in {findings:#?}"));
    assert_eq!(w["severity"], "warning");
    let check = daemon.cli(&["check"]).await;
    assert_eq!(check.code, 1, "{check:?}");
    assert!(check.stdout.contains("tls_expiring_soon"), "{check:?}");
}

#[tokio::test]
async fn an_untrusted_registry_is_a_probe_failure_and_auto_fix_trusts_the_listed_ca() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let bus = Bus::start();
    let image = registry.image_ref();
    let host = registry.host.clone();
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let daemon = Daemon::start_with(
        &ctr,
        &format!(
            "dbus_address = \"{}\"\nprobe_images = [\"{image}\"]\nprobe_interval_secs = 3600\n[auto_fix_ca]\n\"{host}\" = \"{ca}\"\n",
            bus.address
        ),
    )
    .await;
    let fake = FakeSystemd::serve(&bus, ctr).await;

    // The probe at start finds the unknown authority itself (TLS) and through the
    // log of its own test pull; auto-fix then trusts the listed CA.
    let probe_failed = wait_for("a probe_failed event", SOON, || async {
        let v = daemon.cli(&["-o", "json", "events"]).await.json();
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "probe_failed")
            .cloned()
    })
    .await;
    assert_eq!(
        probe_failed["cause"], "tls_unknown_authority",
        "{probe_failed}"
    );
    let change = wait_for("an applied automatic fix", SOON, || async {
        let v = daemon.cli(&["-o", "json", "changes"]).await.json();
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["state"] == "applied")
            .cloned()
    })
    .await;
    assert!(
        change["title"].as_str().unwrap_or_default().contains(&host),
        "{change}"
    );
    let pulled = fake.containerd.lock().await.cri_pull(&image).await;
    assert!(
        pulled.is_ok(),
        "the kubelet's pull works after the automatic fix: {pulled:?}"
    );
    let logs = daemon.log();
    assert!(
        logs.contains("auto-fix applied and proven by a pull"),
        "{logs}"
    );
}
