//! What `ctrdiag k8s pull-secrets` decides, without talking to anything: the saved list
//! in its annotation, and the guarded JSON patches that detach and restore
//! `imagePullSecrets`. Pure: the cluster adapter reads the ServiceAccount into a
//! [`ServiceAccountState`] and sends the patch these functions return.
//!
//! Every patch starts with `test` operations on what ctrdiag read, so the API server
//! applies it only to that exact state and answers 422 if anyone changed it meanwhile:
//! a concurrent edit makes the command fail instead of being lost. A `test` with the
//! value `null` on an absent member succeeds on Kubernetes (its JSON patch library,
//! evanphx/json-patch v4, treats a missing member as `null`), which is how a patch
//! asserts that the annotation is not there yet.

use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation, TestOperation,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The annotation on the ServiceAccount that holds the detached list, so a restore works
/// from any machine and anyone looking at the object sees what was taken away.
pub const SAVED_ANNOTATION: &str = "ctrdiag.dev/saved-image-pull-secrets";

/// One entry of `imagePullSecrets`: the name of a Secret in the same namespace. Never the
/// Secret's data, which ctrdiag does not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// Serialized like the API server does (Go's `omitempty`), so a `test` of a list with
    /// an empty name still matches the server's JSON.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl SecretRef {
    pub fn new(name: impl Into<String>) -> Self {
        SecretRef { name: name.into() }
    }
}

/// Who detached the list: the kubeconfig's context and user names, so `show` tells whom
/// to ask. Both are `None` for the in-cluster service account token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SavedBy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl std::fmt::Display for SavedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.user, &self.context) {
            (None, None) => f.write_str("the in-cluster service account"),
            (user, context) => write!(
                f,
                "user {} (context {})",
                user.as_deref().unwrap_or("-"),
                context.as_deref().unwrap_or("-")
            ),
        }
    }
}

/// The annotation's value: the list as it was (in the ServiceAccount's own shape, so it
/// can be pasted into `kubectl patch`), when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedList {
    pub image_pull_secrets: Vec<SecretRef>,
    /// RFC 3339, UTC.
    pub saved_at: String,
    pub saved_by: SavedBy,
}

impl SavedList {
    /// Reads an annotation value written by [`SavedList::to_annotation`].
    pub fn parse(value: &str) -> Result<Self, Refusal> {
        serde_json::from_str(value).map_err(|e| Refusal::UnreadableSaved {
            reason: e.to_string(),
        })
    }

    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).expect("a SavedList always serializes")
    }
}

/// What ctrdiag read from the ServiceAccount, and all the decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountState {
    pub namespace: String,
    pub name: String,
    /// `imagePullSecrets` in order; empty when the field is absent (the API server
    /// omits an empty list, so absent and empty are the same state).
    pub pull_secrets: Vec<SecretRef>,
    /// Whether `metadata.annotations` exists at all (decides the patch paths).
    pub has_annotations: bool,
    /// The raw value of [`SAVED_ANNOTATION`], if set.
    pub saved: Option<String>,
}

impl ServiceAccountState {
    /// The saved list, if the annotation is set; an error if it holds something else.
    pub fn saved_list(&self) -> Result<Option<SavedList>, Refusal> {
        self.saved.as_deref().map(SavedList::parse).transpose()
    }
}

/// Why ctrdiag will not change the ServiceAccount. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "a list is already saved in the annotation {SAVED_ANNOTATION} (saved at {saved_at} by {saved_by}); ctrdiag will not overwrite it: run `ctrdiag k8s pull-secrets restore` first"
    )]
    AlreadySaved { saved_at: String, saved_by: SavedBy },
    #[error(
        "the annotation {SAVED_ANNOTATION} holds something ctrdiag cannot read ({reason}); look at it with `kubectl get serviceaccount -o yaml` and remove it by hand if it is stale"
    )]
    UnreadableSaved { reason: String },
}

/// What `detach` will do.
#[derive(Debug, Clone, PartialEq)]
pub enum DetachPlan {
    /// `imagePullSecrets` is already empty: nothing to save, nothing to change.
    NothingToDetach,
    /// Save `saved` in the annotation and empty the list, with this one patch.
    Detach { saved: SavedList, patch: Patch },
}

/// What `restore` will do.
#[derive(Debug, Clone, PartialEq)]
pub enum RestorePlan {
    /// No annotation: nothing was detached (or it was restored already).
    NothingSaved,
    /// Put `restored` back and remove the annotation, with this one patch. `kept` are
    /// entries someone added after the detach: they stay, after the saved ones.
    Restore {
        saved: SavedList,
        restored: Vec<SecretRef>,
        kept: Vec<SecretRef>,
        patch: Patch,
    },
}

/// Plans `detach`: refuses to overwrite a saved list; otherwise one patch that tests the
/// current list and the annotation's absence, saves the list and empties it.
pub fn plan_detach(
    sa: &ServiceAccountState,
    saved_by: SavedBy,
    saved_at: String,
) -> Result<DetachPlan, Refusal> {
    if let Some(saved) = sa.saved_list()? {
        return Err(Refusal::AlreadySaved {
            saved_at: saved.saved_at,
            saved_by: saved.saved_by,
        });
    }
    if sa.pull_secrets.is_empty() {
        return Ok(DetachPlan::NothingToDetach);
    }
    let saved = SavedList {
        image_pull_secrets: sa.pull_secrets.clone(),
        saved_at,
        saved_by,
    };
    let value = Value::String(saved.to_annotation());
    let (absent, add) = if sa.has_annotations {
        (
            test(annotation_path(), Value::Null),
            add(annotation_path(), value),
        )
    } else {
        (
            test(annotations_path(), Value::Null),
            add(annotations_path(), json!({ SAVED_ANNOTATION: value })),
        )
    };
    let patch = Patch(vec![
        test(pull_secrets_path(), refs_json(&sa.pull_secrets)),
        absent,
        add,
        PatchOperation::Replace(ReplaceOperation {
            path: pull_secrets_path(),
            value: json!([]),
        }),
    ]);
    Ok(DetachPlan::Detach { saved, patch })
}

/// Plans `restore`: one patch that tests the annotation's exact value and the current
/// list, puts the saved entries back (followed by any added since) and removes the
/// annotation.
pub fn plan_restore(sa: &ServiceAccountState) -> Result<RestorePlan, Refusal> {
    let (Some(raw), Some(saved)) = (&sa.saved, sa.saved_list()?) else {
        return Ok(RestorePlan::NothingSaved);
    };
    let kept: Vec<SecretRef> = sa
        .pull_secrets
        .iter()
        .filter(|r| !saved.image_pull_secrets.contains(r))
        .cloned()
        .collect();
    let restored: Vec<SecretRef> = saved
        .image_pull_secrets
        .iter()
        .chain(&kept)
        .cloned()
        .collect();
    let current = if sa.pull_secrets.is_empty() {
        Value::Null
    } else {
        refs_json(&sa.pull_secrets)
    };
    let patch = Patch(vec![
        test(annotation_path(), Value::String(raw.clone())),
        test(pull_secrets_path(), current),
        add(pull_secrets_path(), refs_json(&restored)),
        PatchOperation::Remove(RemoveOperation {
            path: annotation_path(),
        }),
    ]);
    Ok(RestorePlan::Restore {
        saved,
        restored,
        kept,
        patch,
    })
}

/// The names alone, in order: what people and scripts are shown.
pub fn names(refs: &[SecretRef]) -> Vec<String> {
    refs.iter().map(|r| r.name.clone()).collect()
}

fn refs_json(refs: &[SecretRef]) -> Value {
    serde_json::to_value(refs).expect("secret references always serialize")
}

fn pull_secrets_path() -> PointerBuf {
    PointerBuf::from_tokens(["imagePullSecrets"])
}

fn annotations_path() -> PointerBuf {
    PointerBuf::from_tokens(["metadata", "annotations"])
}

/// `/metadata/annotations/ctrdiag.dev~1saved-image-pull-secrets` (the `/` escaped).
fn annotation_path() -> PointerBuf {
    PointerBuf::from_tokens(["metadata", "annotations", SAVED_ANNOTATION])
}

fn test(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Test(TestOperation { path, value })
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(secrets: &[&str], annotations: bool, saved: Option<&str>) -> ServiceAccountState {
        ServiceAccountState {
            namespace: "default".into(),
            name: "default".into(),
            pull_secrets: secrets.iter().map(|n| SecretRef::new(*n)).collect(),
            has_annotations: annotations || saved.is_some(),
            saved: saved.map(str::to_string),
        }
    }

    fn alice() -> SavedBy {
        SavedBy {
            context: Some("prod".into()),
            user: Some("alice".into()),
        }
    }

    const AT: &str = "2026-05-01T07:00:00Z";

    fn patch_json(patch: &Patch) -> Value {
        serde_json::to_value(patch).unwrap()
    }

    #[test]
    fn detach_tests_the_list_and_the_annotations_absence_before_saving_and_emptying() {
        let plan = plan_detach(&sa(&["regcred", "mirror"], true, None), alice(), AT.into());
        let DetachPlan::Detach { saved, patch } = plan.unwrap() else {
            panic!("expected a detach")
        };
        assert_eq!(names(&saved.image_pull_secrets), ["regcred", "mirror"]);
        let value = saved.to_annotation();
        assert_eq!(
            patch_json(&patch),
            json!([
                {"op": "test", "path": "/imagePullSecrets", "value": [{"name": "regcred"}, {"name": "mirror"}]},
                {"op": "test", "path": "/metadata/annotations/ctrdiag.dev~1saved-image-pull-secrets", "value": null},
                {"op": "add", "path": "/metadata/annotations/ctrdiag.dev~1saved-image-pull-secrets", "value": value},
                {"op": "replace", "path": "/imagePullSecrets", "value": []},
            ])
        );
    }

    #[test]
    fn detach_without_any_annotation_creates_the_map_after_testing_it_is_absent() {
        let DetachPlan::Detach { saved, patch } =
            plan_detach(&sa(&["regcred"], false, None), alice(), AT.into()).unwrap()
        else {
            panic!("expected a detach")
        };
        let ops = patch_json(&patch);
        assert_eq!(
            ops[1],
            json!({"op": "test", "path": "/metadata/annotations", "value": null})
        );
        assert_eq!(
            ops[2],
            json!({"op": "add", "path": "/metadata/annotations", "value": {SAVED_ANNOTATION: saved.to_annotation()}})
        );
    }

    #[test]
    fn the_annotation_holds_the_list_in_the_service_accounts_shape_with_time_and_who() {
        let DetachPlan::Detach { saved, .. } =
            plan_detach(&sa(&["b", "a"], true, None), alice(), AT.into()).unwrap()
        else {
            panic!("expected a detach")
        };
        let value: Value = serde_json::from_str(&saved.to_annotation()).unwrap();
        assert_eq!(
            value,
            json!({
                "imagePullSecrets": [{"name": "b"}, {"name": "a"}],
                "savedAt": AT,
                "savedBy": {"context": "prod", "user": "alice"},
            })
        );
        assert_eq!(SavedList::parse(&saved.to_annotation()).unwrap(), saved);
    }

    #[test]
    fn nothing_to_detach_changes_nothing() {
        assert_eq!(
            plan_detach(&sa(&[], true, None), alice(), AT.into()).unwrap(),
            DetachPlan::NothingToDetach
        );
    }

    #[test]
    fn detach_never_overwrites_a_saved_list_even_when_the_list_is_back() {
        let saved = SavedList {
            image_pull_secrets: vec![SecretRef::new("old")],
            saved_at: AT.into(),
            saved_by: alice(),
        }
        .to_annotation();
        for current in [&[][..], &["new"][..]] {
            let err =
                plan_detach(&sa(current, true, Some(&saved)), alice(), AT.into()).unwrap_err();
            assert_eq!(
                err,
                Refusal::AlreadySaved {
                    saved_at: AT.into(),
                    saved_by: alice()
                }
            );
            assert!(err.to_string().contains("restore` first"), "{err}");
        }
    }

    #[test]
    fn an_unreadable_annotation_is_refused_by_detach_and_restore() {
        let state = sa(&["x"], true, Some("by hand"));
        assert!(matches!(
            plan_detach(&state, alice(), AT.into()),
            Err(Refusal::UnreadableSaved { .. })
        ));
        assert!(matches!(
            plan_restore(&state),
            Err(Refusal::UnreadableSaved { .. })
        ));
    }

    #[test]
    fn restore_tests_the_annotations_exact_value_and_puts_the_list_back_in_order() {
        let raw = SavedList {
            image_pull_secrets: vec![SecretRef::new("b"), SecretRef::new("a")],
            saved_at: AT.into(),
            saved_by: alice(),
        }
        .to_annotation();
        let RestorePlan::Restore {
            restored,
            kept,
            patch,
            ..
        } = plan_restore(&sa(&[], true, Some(&raw))).unwrap()
        else {
            panic!("expected a restore")
        };
        assert_eq!(names(&restored), ["b", "a"]);
        assert!(kept.is_empty());
        assert_eq!(
            patch_json(&patch),
            json!([
                {"op": "test", "path": "/metadata/annotations/ctrdiag.dev~1saved-image-pull-secrets", "value": raw},
                {"op": "test", "path": "/imagePullSecrets", "value": null},
                {"op": "add", "path": "/imagePullSecrets", "value": [{"name": "b"}, {"name": "a"}]},
                {"op": "remove", "path": "/metadata/annotations/ctrdiag.dev~1saved-image-pull-secrets"},
            ])
        );
    }

    #[test]
    fn restore_keeps_entries_added_after_the_detach() {
        let raw = SavedList {
            image_pull_secrets: vec![SecretRef::new("a"), SecretRef::new("b")],
            saved_at: AT.into(),
            saved_by: alice(),
        }
        .to_annotation();
        let RestorePlan::Restore {
            restored,
            kept,
            patch,
            ..
        } = plan_restore(&sa(&["new", "b"], true, Some(&raw))).unwrap()
        else {
            panic!("expected a restore")
        };
        assert_eq!(names(&restored), ["a", "b", "new"]);
        assert_eq!(names(&kept), ["new"]);
        assert_eq!(
            patch_json(&patch)[1],
            json!({"op": "test", "path": "/imagePullSecrets", "value": [{"name": "new"}, {"name": "b"}]})
        );
    }

    #[test]
    fn restore_without_a_saved_list_changes_nothing() {
        assert_eq!(
            plan_restore(&sa(&["a"], true, None)).unwrap(),
            RestorePlan::NothingSaved
        );
    }

    #[test]
    fn an_empty_name_is_tested_as_the_server_writes_it() {
        assert_eq!(refs_json(&[SecretRef::new("")]), json!([{}]));
    }

    #[test]
    fn who_reads_as_names_or_in_cluster() {
        assert_eq!(alice().to_string(), "user alice (context prod)");
        assert_eq!(
            SavedBy::default().to_string(),
            "the in-cluster service account"
        );
    }
}
