//! What a test pull must undo so that containerd's image store is exactly as it was
//! before: the records the pull created, and the targets it moved. Pure: snapshots of
//! the store in, decisions out; [`super::ContainerdClient::pull_leaving_store_as_found`]
//! takes the snapshots and carries the decisions out.
//!
//! A CRI pull writes three records (measured on 1.6.20, 1.7.24 and 2.1.9): the name
//! pulled, `<repository>@<manifest digest>`, and CRI's `sha256:<config digest>` id.
//! Removing them through CRI `RemoveImage` would drop every other name of the image
//! too (`reg/app:v1` when `reg/app:latest` was test-pulled), so only records this pull
//! wrote are touched, one by one, through containerd's images service.
//!
//! Every CRI pull bumps the record's `updated_at`, also when nothing else changes. So a
//! record whose `updated_at` moved after our pull returned was written by someone else
//! (the kubelet pulling the same name) and is left alone. A pull by someone else that
//! finished *before* ours cannot be told apart from ours: CRI records no caller.

use std::collections::BTreeMap;

/// One record of containerd's images service, as much as undoing a pull needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub name: String,
    pub target_digest: String,
    pub target_media_type: String,
    pub target_size: i64,
    pub labels: BTreeMap<String, String>,
    /// containerd's `updated_at`, as (seconds, nanoseconds): every write moves it.
    pub updated: (i64, i32),
}

/// The image store of one namespace at one moment, by record name.
pub type StoreSnapshot = BTreeMap<String, ImageRecord>;

/// What to do after a test pull of `name` that CRI reported as image `image_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undo {
    /// Records the pull created, to delete (each only if still holding this target).
    pub delete: Vec<ImageRecord>,
    /// Records that existed before with another target, to put back as they were.
    pub restore: Vec<ImageRecord>,
    /// Records the pull wrote that someone else has written since: left as they are.
    pub left: Vec<String>,
}

/// The records a CRI pull of `name` writes: the name itself, the repository's digest
/// reference and CRI's image id reference.
fn written_by_pull(name: &str, image_id: &str, pulled: &ImageRecord) -> Vec<String> {
    let repository = repository_of(name);
    vec![
        name.to_string(),
        format!("{repository}@{}", pulled.target_digest),
        image_id.to_string(),
    ]
}

/// `reg:5000/app` of `reg:5000/app:tag` or `reg:5000/app@sha256:...`.
fn repository_of(name: &str) -> &str {
    if let Some((repo, _)) = name.split_once('@') {
        return repo;
    }
    // A `:` after the last `/` separates the tag; one before it is a port.
    match (name.rfind(':'), name.rfind('/')) {
        (Some(colon), Some(slash)) if colon > slash => &name[..colon],
        (Some(colon), None) => &name[..colon],
        _ => name,
    }
}

/// CRI's `sha256:<config digest>` id record of the image `name` holds in `store`, for a
/// pull whose answer was lost (containerd went away before it replied): the id record
/// has the same target as the name.
pub fn image_id_in(name: &str, store: &StoreSnapshot) -> Option<String> {
    let target = &store.get(name)?.target_digest;
    store
        .values()
        .find(|r| r.name.starts_with("sha256:") && &r.target_digest == target)
        .map(|r| r.name.clone())
}

/// Decides how to leave the store as `before` had it, given the store right after our
/// pull (`after_pull`) and now (`now`). Records the pull did not write are never named.
pub fn undo_pull(
    name: &str,
    image_id: &str,
    before: &StoreSnapshot,
    after_pull: &StoreSnapshot,
    now: &StoreSnapshot,
) -> Undo {
    let mut undo = Undo::default();
    let Some(pulled) = after_pull.get(name) else {
        return undo;
    };
    for record_name in written_by_pull(name, image_id, pulled) {
        let (Some(ours), Some(current)) = (after_pull.get(&record_name), now.get(&record_name))
        else {
            continue;
        };
        if current != ours {
            undo.left.push(record_name);
            continue;
        }
        match before.get(&record_name) {
            None => undo.delete.push(ours.clone()),
            Some(old) if old.target_digest != ours.target_digest => undo.restore.push(old.clone()),
            // Same target as before: only its `updated_at` moved, nothing to undo.
            Some(_) => {}
        }
    }
    undo
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "reg.test:5000/app:latest";
    const ID: &str = "sha256:1d";

    fn record(name: &str, target: &str, updated: i64) -> ImageRecord {
        ImageRecord {
            name: name.into(),
            target_digest: target.into(),
            target_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            target_size: 100,
            labels: [("io.cri-containerd.image".to_string(), "managed".to_string())].into(),
            updated: (updated, 0),
        }
    }

    fn store(records: &[ImageRecord]) -> StoreSnapshot {
        records
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect()
    }

    fn pulled(updated: i64) -> Vec<ImageRecord> {
        vec![
            record(NAME, "sha256:m1", updated),
            record("reg.test:5000/app@sha256:m1", "sha256:m1", updated),
            record(ID, "sha256:m1", updated),
        ]
    }

    fn names(records: &[ImageRecord]) -> Vec<&str> {
        records.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn a_pull_into_an_empty_store_deletes_its_three_records() {
        let after = store(&pulled(10));
        let undo = undo_pull(NAME, ID, &store(&[]), &after, &after);
        assert_eq!(
            names(&undo.delete),
            [NAME, "reg.test:5000/app@sha256:m1", ID]
        );
        assert!(undo.restore.is_empty() && undo.left.is_empty());
    }

    #[test]
    fn other_names_of_the_same_image_are_never_touched() {
        // The node had v1 of the same digest, and its id and digest records.
        let v1 = record("reg.test:5000/app:v1", "sha256:m1", 1);
        let before = store(&[
            v1.clone(),
            record("reg.test:5000/app@sha256:m1", "sha256:m1", 1),
            record(ID, "sha256:m1", 1),
        ]);
        let mut after_records = pulled(10);
        after_records.push(v1);
        let after = store(&after_records);
        let undo = undo_pull(NAME, ID, &before, &after, &after);
        assert_eq!(names(&undo.delete), [NAME]);
        assert!(undo.restore.is_empty());
    }

    #[test]
    fn a_tag_the_pull_moved_is_put_back_on_its_old_target() {
        let old = record(NAME, "sha256:m0", 1);
        let before = store(&[old.clone(), record("sha256:0d", "sha256:m0", 1)]);
        let mut after_records = pulled(10);
        after_records.push(record("sha256:0d", "sha256:m0", 1));
        let after = store(&after_records);
        let undo = undo_pull(NAME, ID, &before, &after, &after);
        assert_eq!(undo.restore, [old]);
        assert_eq!(names(&undo.delete), ["reg.test:5000/app@sha256:m1", ID]);
    }

    #[test]
    fn a_record_written_again_after_our_pull_stays() {
        let after = store(&pulled(10));
        // The kubelet pulled the same name after us: CRI moved its updated_at.
        let mut now_records = pulled(10);
        now_records[0].updated = (11, 0);
        let undo = undo_pull(NAME, ID, &store(&[]), &after, &store(&now_records));
        assert_eq!(undo.left, [NAME]);
        assert_eq!(names(&undo.delete), ["reg.test:5000/app@sha256:m1", ID]);
    }

    #[test]
    fn a_record_already_gone_is_not_deleted_twice() {
        let after = store(&pulled(10));
        let now = store(&pulled(10)[1..]);
        let undo = undo_pull(NAME, ID, &store(&[]), &after, &now);
        assert_eq!(names(&undo.delete), ["reg.test:5000/app@sha256:m1", ID]);
    }

    #[test]
    fn a_lost_answer_finds_the_id_record_by_the_names_target() {
        let mut records = pulled(10);
        records.push(record("sha256:other", "sha256:m9", 1));
        let now = store(&records);
        assert_eq!(image_id_in(NAME, &now).as_deref(), Some(ID));
        assert_eq!(image_id_in("reg.test:5000/absent:1", &now), None);
        // The pull's three records, found without the answer that named the id.
        let undo = undo_pull(NAME, ID, &store(&[]), &now, &now);
        assert_eq!(
            names(&undo.delete),
            [NAME, "reg.test:5000/app@sha256:m1", ID]
        );
    }

    #[test]
    fn repositories_are_cut_at_the_tag_not_the_port() {
        assert_eq!(repository_of("reg:5000/app:1"), "reg:5000/app");
        assert_eq!(repository_of("reg:5000/app"), "reg:5000/app");
        assert_eq!(repository_of("reg/app@sha256:ab"), "reg/app");
        assert_eq!(repository_of("app:1"), "app");
    }
}
