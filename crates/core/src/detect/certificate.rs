//! What a probe's view of a registry certificate means over time: expiring soon (a
//! warning before any pull fails), or renewed (the warning ends).

use super::events::EventKind;
use crate::diagnose::ExpiryWarning;

/// The event a certificate valid until `not_after` raises, given what the last probe
/// saw (`previous`): `CertificateExpiring` inside the window, `CertificateRenewed` when
/// it replaced one that was inside the window or already over; nothing otherwise.
pub fn certificate_event(
    host: &str,
    previous: Option<i64>,
    not_after: i64,
    w: ExpiryWarning,
) -> Option<(EventKind, String)> {
    let when = |t: i64| crate::probe::Timestamp::from_unix(t).rfc3339;
    if let Some(left) = w.left(not_after) {
        return Some((
            EventKind::CertificateExpiring,
            format!(
                "the certificate of {host} expires at {} (in {} day(s)): renew it before pulls fail",
                when(not_after),
                left / 86_400
            ),
        ));
    }
    let was_ending = previous.is_some_and(|p| p != not_after && p - w.now_unix <= w.window_secs);
    (was_ending && not_after > w.now_unix).then(|| {
        (
            EventKind::CertificateRenewed,
            format!(
                "the certificate of {host} was renewed: valid until {}",
                when(not_after)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;
    const W: ExpiryWarning = ExpiryWarning {
        now_unix: NOW,
        window_secs: 14 * DAY,
    };

    #[test]
    fn warned_inside_the_window_renewed_after_and_quiet_otherwise() {
        let (kind, text) = certificate_event("r", None, NOW + 3 * DAY, W).unwrap();
        assert_eq!(kind, EventKind::CertificateExpiring);
        assert!(text.contains("in 3 day(s)"), "{text}");
        assert_eq!(certificate_event("r", None, NOW + 30 * DAY, W), None);
        let renewed = certificate_event("r", Some(NOW + 3 * DAY), NOW + 90 * DAY, W).unwrap();
        assert_eq!(renewed.0, EventKind::CertificateRenewed);
        assert_eq!(
            certificate_event("r", Some(NOW + 90 * DAY), NOW + 90 * DAY, W),
            None,
            "the same certificate again is not news"
        );
        assert_eq!(
            certificate_event("r", Some(NOW + 60 * DAY), NOW + 90 * DAY, W),
            None,
            "renewed long before the window: nothing was wrong"
        );
        assert_eq!(
            certificate_event("r", None, NOW - DAY, W),
            None,
            "expired is a probe failure"
        );
    }
}
