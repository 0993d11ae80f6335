//! `ctrdiag k8s pull-secrets show|detach|restore`: the runbook's "empty the default
//! ServiceAccount's imagePullSecrets, note the old value by hand", done with a saved
//! copy and a patch that cannot lose a concurrent edit. Talks to the Kubernetes API
//! server with the operator's kubeconfig, never to ctrdiagd.

use crate::cli::stdout::outln;

use serde_json::{Value, json};

use super::print_json;
use crate::cli::{Exit, Failure, K8sTarget, Output, PullSecretsAction};
use crate::k8s::cluster::{Cluster, ClusterError, Target};
use crate::k8s::local::{CopyKey, LocalCopies, LocalCopy, LocalError};
use crate::k8s::pull_secrets::{
    DetachPlan, Refusal, RestorePlan, SAVED_ANNOTATION, SavedList, ServiceAccountState, names,
    plan_detach, plan_restore,
};

pub async fn run(action: PullSecretsAction, output: Output) -> Result<Exit, Failure> {
    match action {
        PullSecretsAction::Show(target) => show(&target, output).await,
        PullSecretsAction::Detach { target, dry_run } => detach(&target, dry_run, output).await,
        PullSecretsAction::Restore { target, dry_run } => restore(&target, dry_run, output).await,
    }
}

async fn show(target: &K8sTarget, output: Output) -> Result<Exit, Failure> {
    let (cluster, sa) = read(target).await?;
    let saved = sa.saved_list();
    let local = local_copy(&cluster, &sa);
    match output {
        Output::Json => print_json(&json!({
            "namespace": sa.namespace,
            "service_account": sa.name,
            "image_pull_secrets": names(&sa.pull_secrets),
            "saved": saved.as_ref().ok().and_then(|s| s.as_ref()).map(saved_json),
            "saved_error": saved.as_ref().err().map(ToString::to_string),
            "local_copy": local.as_ref().map(|(path, c)| json!({"path": path, "saved": saved_json(&c.saved)})),
        })),
        Output::Table => {
            outln!("ServiceAccount {}/{}", sa.namespace, sa.name);
            outln!("imagePullSecrets: {}", list(&names(&sa.pull_secrets)));
            match &saved {
                Ok(None) => outln!("saved list: none"),
                Ok(Some(s)) => outln!(
                    "saved list: {} (saved at {} by {}; put it back with `ctrdiag k8s pull-secrets restore`)",
                    list(&names(&s.image_pull_secrets)),
                    s.saved_at,
                    s.saved_by
                ),
                Err(e) => outln!("saved list: unreadable: {e}"),
            }
            if let Some((path, c)) = &local {
                outln!(
                    "local copy: {} (saved at {} by {}, in {path})",
                    list(&names(&c.saved.image_pull_secrets)),
                    c.saved.saved_at,
                    c.saved.saved_by
                );
            }
        }
    }
    Ok(Exit::Ok)
}

async fn detach(target: &K8sTarget, dry_run: bool, output: Output) -> Result<Exit, Failure> {
    let (cluster, sa) = read(target).await?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let plan = plan_detach(&sa, cluster.saved_by().clone(), now).map_err(refused)?;
    let DetachPlan::Detach { saved, patch } = plan else {
        match output {
            Output::Json => print_json(&json!({
                "namespace": sa.namespace,
                "service_account": sa.name,
                "outcome": "nothing_to_detach",
                "image_pull_secrets": [],
            })),
            Output::Table => outln!(
                "nothing to detach: ServiceAccount {}/{} has no imagePullSecrets; nothing was changed",
                sa.namespace,
                sa.name
            ),
        }
        return Ok(Exit::Ok);
    };
    let detached = names(&saved.image_pull_secrets);
    let (when, gets) = if dry_run {
        (
            "once detached for real, every Pod created afterwards",
            "would no longer get",
        )
    } else {
        ("every Pod created from now on", "no longer gets")
    };
    let warning = format!(
        "{when} with ServiceAccount {}/{} {gets} the pull credentials {} from it (running Pods keep theirs) until `ctrdiag k8s pull-secrets restore`",
        sa.namespace,
        sa.name,
        list(&detached)
    );
    eprintln!("ctrdiag: warning: {warning}");
    let patch_json = serde_json::to_value(&patch).expect("a JSON patch always serializes");
    if dry_run {
        print_dry_run(output, &sa, &patch_json, &detached);
        return Ok(Exit::Ok);
    }
    let copies = LocalCopies::from_env().map_err(local_failure)?;
    let key = copy_key(&cluster, &sa);
    copies
        .put(LocalCopy {
            key: key.clone(),
            saved: saved.clone(),
        })
        .map_err(local_failure)?;
    if let Err(e) = cluster.patch(&sa.name, &patch).await {
        // Refused: nothing changed, so the copy would only mislead. A lost connection
        // or an unreadable answer keeps it, since the patch may have been applied.
        if e.refused_by_server() {
            let _ = copies.remove(&key);
        }
        return Err(cluster_failure(e));
    }
    let path = copies.path().display().to_string();
    match output {
        Output::Json => print_json(&json!({
            "namespace": sa.namespace,
            "service_account": sa.name,
            "outcome": "detached",
            "image_pull_secrets": detached,
            "saved": saved_json(&saved),
            "annotation": SAVED_ANNOTATION,
            "local_copy": path,
            "patch": patch_json,
            "warning": warning,
        })),
        Output::Table => {
            outln!(
                "detached {} from ServiceAccount {}/{}",
                list(&detached),
                sa.namespace,
                sa.name
            );
            outln!("saved in the annotation {SAVED_ANNOTATION} and in {path}");
            outln!("put them back with `ctrdiag k8s pull-secrets restore`");
        }
    }
    Ok(Exit::Ok)
}

async fn restore(target: &K8sTarget, dry_run: bool, output: Output) -> Result<Exit, Failure> {
    let (cluster, sa) = read(target).await?;
    let RestorePlan::Restore {
        saved,
        restored,
        kept,
        patch,
    } = plan_restore(&sa).map_err(refused)?
    else {
        return nothing_saved(&cluster, &sa, output);
    };
    let (restored, kept) = (names(&restored), names(&kept));
    let patch_json = serde_json::to_value(&patch).expect("a JSON patch always serializes");
    if dry_run {
        print_dry_run(output, &sa, &patch_json, &restored);
        return Ok(Exit::Ok);
    }
    cluster
        .patch(&sa.name, &patch)
        .await
        .map_err(cluster_failure)?;
    if let Err(e) = LocalCopies::from_env().and_then(|c| c.remove(&copy_key(&cluster, &sa))) {
        eprintln!("ctrdiag: warning: restored, but the local copy stays: {e}");
    }
    match output {
        Output::Json => print_json(&json!({
            "namespace": sa.namespace,
            "service_account": sa.name,
            "outcome": "restored",
            "image_pull_secrets": restored,
            "kept": kept,
            "saved": saved_json(&saved),
            "patch": patch_json,
        })),
        Output::Table => {
            outln!(
                "restored {} to ServiceAccount {}/{}; the annotation {SAVED_ANNOTATION} is removed",
                list(&names(&saved.image_pull_secrets)),
                sa.namespace,
                sa.name
            );
            if !kept.is_empty() {
                outln!(
                    "kept {}, added after the detach (listed after the restored ones)",
                    list(&kept)
                );
            }
        }
    }
    Ok(Exit::Ok)
}

/// No annotation. Fine if nothing was detached; a problem if the operator's local copy
/// says a list was saved here (the ServiceAccount was recreated, or the annotation
/// removed by hand): then say what the copy holds and how to put it back.
fn nothing_saved(
    cluster: &Cluster,
    sa: &ServiceAccountState,
    output: Output,
) -> Result<Exit, Failure> {
    if let Some((path, copy)) = local_copy(cluster, sa) {
        return Err(Failure::new(
            Exit::Problem,
            format!(
                "ServiceAccount {ns}/{name} holds no saved list, but your local copy in {path} says {list} were detached at {at} by {by}; if they belong back, run `kubectl -n {ns} patch serviceaccount {name} -p '{patch}'`",
                ns = sa.namespace,
                name = sa.name,
                list = list(&names(&copy.saved.image_pull_secrets)),
                at = copy.saved.saved_at,
                by = copy.saved.saved_by,
                patch = json!({"imagePullSecrets": copy.saved.image_pull_secrets}),
            ),
        ));
    }
    match output {
        Output::Json => print_json(&json!({
            "namespace": sa.namespace,
            "service_account": sa.name,
            "outcome": "nothing_saved",
            "image_pull_secrets": names(&sa.pull_secrets),
        })),
        Output::Table => outln!(
            "nothing to restore: ServiceAccount {}/{} holds no saved list; nothing was changed",
            sa.namespace,
            sa.name
        ),
    }
    Ok(Exit::Ok)
}

async fn read(target: &K8sTarget) -> Result<(Cluster, ServiceAccountState), Failure> {
    let cluster = Cluster::connect(
        &Target {
            kubeconfig: target.kubeconfig.clone(),
            context: target.context.clone(),
        },
        &target.namespace,
    )
    .await
    .map_err(cluster_failure)?;
    let sa = cluster
        .read(&target.service_account)
        .await
        .map_err(cluster_failure)?;
    Ok((cluster, sa))
}

fn print_dry_run(output: Output, sa: &ServiceAccountState, patch: &Value, secrets: &[String]) {
    match output {
        Output::Json => print_json(&json!({
            "namespace": sa.namespace,
            "service_account": sa.name,
            "outcome": "dry_run",
            "image_pull_secrets": secrets,
            "patch": patch,
        })),
        Output::Table => {
            outln!(
                "the JSON patch (application/json-patch+json) for ServiceAccount {}/{}:",
                sa.namespace,
                sa.name
            );
            outln!("{patch:#}");
            outln!("\n(dry run: nothing was changed)");
        }
    }
}

/// The local copy for this ServiceAccount and where it is; a copy that cannot be read
/// is reported and otherwise ignored, since the annotation is the record that counts.
fn local_copy(cluster: &Cluster, sa: &ServiceAccountState) -> Option<(String, LocalCopy)> {
    let found = LocalCopies::from_env()
        .and_then(|c| Ok(c.find(&copy_key(cluster, sa))?.map(|f| (c.path(), f))));
    match found {
        Ok(found) => found.map(|(path, copy)| (path.display().to_string(), copy)),
        Err(e) => {
            eprintln!("ctrdiag: warning: cannot read the local copy: {e}");
            None
        }
    }
}

fn copy_key(cluster: &Cluster, sa: &ServiceAccountState) -> CopyKey {
    CopyKey {
        server: cluster.server().to_string(),
        namespace: sa.namespace.clone(),
        service_account: sa.name.clone(),
    }
}

fn saved_json(saved: &SavedList) -> Value {
    json!({
        "image_pull_secrets": names(&saved.image_pull_secrets),
        "saved_at": saved.saved_at,
        "saved_by": {"context": saved.saved_by.context, "user": saved.saved_by.user},
    })
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}

fn refused(r: Refusal) -> Failure {
    Failure::new(Exit::Problem, r.to_string())
}

fn local_failure(e: LocalError) -> Failure {
    Failure::new(
        Exit::Problem,
        format!("cannot keep the local copy of the list, so nothing was changed: {e}"),
    )
}

/// The one mapping from Kubernetes failures to exit codes. No wildcard: each is decided.
fn cluster_failure(e: ClusterError) -> Failure {
    let exit = match &e {
        ClusterError::Kubeconfig { .. }
        | ClusterError::NoConfig
        | ClusterError::ContextWithoutKubeconfig { .. }
        | ClusterError::UnknownContext { .. }
        | ClusterError::NoContext
        | ClusterError::Client(_) => Exit::Usage,
        ClusterError::Unreachable { .. }
        | ClusterError::Unauthorized { .. }
        | ClusterError::Forbidden { .. } => Exit::Unreachable,
        ClusterError::NotFound { .. }
        | ClusterError::Changed { .. }
        | ClusterError::Rejected { .. }
        | ClusterError::Protocol(_) => Exit::Problem,
    };
    Failure::new(exit, e.to_string())
}
