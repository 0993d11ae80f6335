//! Purging a registry's images from the node's cache, so the next pull fetches them
//! again (the runbook's `crictl rmi`): every name of every image of that registry,
//! through CRI so the kubelet's view stays consistent, and never an image a container
//! uses unless the operator insists. Pure: the image records and the containers in,
//! a plan out.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Plan, Step};
use crate::registry::host::RegistryHost;
use crate::registry::reference::ImageRef;

/// One image record of containerd's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    pub name: String,
    /// The target's digest: records with the same one are one image.
    pub digest: String,
}

/// A container (CRI's or anyone's) and the image record it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub namespace: String,
    pub id: String,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurgeError {
    #[error("no cached image of {host} on this node: nothing to purge")]
    NothingCached { host: RegistryHost },
    #[error("containers use images of {host}: {}; stop them first, or purge anyway with --force (they keep running, but cannot restart from the cache)", .uses.join("; "))]
    InUse {
        host: RegistryHost,
        uses: Vec<String>,
    },
}

/// The registry an image record's name belongs to, if it names one.
fn registry_of(name: &str) -> Option<RegistryHost> {
    if name.starts_with("sha256:") {
        return None;
    }
    name.parse::<ImageRef>().ok().map(|r| r.host().clone())
}

/// The plan that removes every cached image of `host`, refusing (unless `force`) while
/// `containers` use one of them under any of its names.
pub fn plan_purge(
    host: &RegistryHost,
    images: &[CachedImage],
    containers: &[ContainerRef],
    force: bool,
) -> Result<Plan, PurgeError> {
    // Every name of an image (CRI's `sha256:` id, the digest reference...), by digest.
    let mut names_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in images {
        names_of.entry(&i.digest).or_default().insert(&i.name);
    }
    let ours: Vec<&CachedImage> = images
        .iter()
        .filter(|i| registry_of(&i.name).as_ref() == Some(host))
        .collect();
    if ours.is_empty() {
        return Err(PurgeError::NothingCached { host: host.clone() });
    }
    let digests: BTreeSet<&str> = ours.iter().map(|i| i.digest.as_str()).collect();
    let uses: Vec<String> = containers
        .iter()
        .filter(|c| {
            digests.iter().any(|d| {
                names_of
                    .get(d)
                    .is_some_and(|n| n.contains(c.image.as_str()))
            })
        })
        .map(|c| format!("container {} ({}) uses {}", c.id, c.namespace, c.image))
        .collect();
    if !uses.is_empty() && !force {
        return Err(PurgeError::InUse {
            host: host.clone(),
            uses,
        });
    }
    let steps = ours
        .iter()
        .map(|i| Step::RemoveImage {
            image: i.name.clone(),
            why: if uses.is_empty() {
                format!("cached image of {host}: the next pull fetches it again")
            } else {
                format!(
                    "cached image of {host}, removed although containers use images of it (--force)"
                )
            },
        })
        .collect();
    Ok(Plan {
        title: format!("purge the cached images of {host}"),
        steps,
        verify_pull: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(name: &str, digest: &str) -> CachedImage {
        CachedImage {
            name: name.into(),
            digest: digest.into(),
        }
    }

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn store() -> Vec<CachedImage> {
        let (a, b, c) = (digest('a'), digest('b'), digest('c'));
        vec![
            img("r.test:5000/app:v1", &a),
            img("r.test:5000/app:latest", &a),
            img(&format!("r.test:5000/app@{a}"), &a),
            img("sha256:ida", &a),
            img("r.test:5000/db:1", &b),
            img("q.test/other:1", &c),
        ]
    }

    fn removed(plan: &Plan) -> Vec<&str> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::RemoveImage { image, .. } => Some(image.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_name_of_the_registrys_images_and_nothing_else() {
        let host: RegistryHost = "r.test:5000".parse().unwrap();
        let plan = plan_purge(&host, &store(), &[], false).unwrap();
        assert_eq!(
            removed(&plan),
            [
                "r.test:5000/app:v1".to_string(),
                "r.test:5000/app:latest".to_string(),
                format!("r.test:5000/app@{}", digest('a')),
                "r.test:5000/db:1".to_string(),
            ]
        );
        assert!(!plan.restarts());
    }

    #[test]
    fn an_image_a_container_uses_under_any_name_is_refused_unless_forced() {
        let host: RegistryHost = "r.test:5000".parse().unwrap();
        // CRI names the image of its containers by its id.
        let c = ContainerRef {
            namespace: "k8s.io".into(),
            id: "web-1".into(),
            image: "sha256:ida".into(),
        };
        let err = plan_purge(&host, &store(), std::slice::from_ref(&c), false).unwrap_err();
        assert!(
            err.to_string()
                .contains("container web-1 (k8s.io) uses sha256:ida"),
            "{err}"
        );
        let forced = plan_purge(&host, &store(), &[c], true).unwrap();
        assert_eq!(removed(&forced).len(), 4);
        // A container of another registry's image does not stop anything.
        let other = ContainerRef {
            namespace: "default".into(),
            id: "x".into(),
            image: "q.test/other:1".into(),
        };
        assert!(plan_purge(&host, &store(), &[other], false).is_ok());
    }

    #[test]
    fn nothing_cached_is_said_so() {
        let host: RegistryHost = "none.test".parse().unwrap();
        assert!(matches!(
            plan_purge(&host, &store(), &[], false),
            Err(PurgeError::NothingCached { .. })
        ));
    }
}
