//! `ctrdiag k8s pull-secrets` end to end: the real `ctrdiag` binary against the lab's
//! stand-in Kubernetes API server (HTTPS, a per-test CA, bearer tokens), with the real
//! `kubectl` (v1.32 on these machines) first proving the stand-in answers the runbook's
//! own commands the way kubectl expects, and then checking what ctrdiag did.
//!
//! Every run's output is searched for the pull secret's data, which the stand-in holds
//! in a real `.dockerconfigjson` Secret that ctrdiag must never read.

#[macro_use]
mod lab;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use lab::daemon::CliRun;
use lab::kube_api::{ALICE_TOKEN, BOB_TOKEN, KubeApi};
use serde_json::{Value, json};

const ANNOTATION: &str = "ctrdiag.dev/saved-image-pull-secrets";
/// The registry password inside the pull secret, and its encodings as the Secret holds them.
const PASSWORD: &str = "s3cr3t-pull-token-9c1f";

fn docker_config() -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("robot:{PASSWORD}"));
    format!(r#"{{"auths":{{"registry.ctrdiag.test":{{"auth":"{auth}"}}}}}}"#)
}

/// What must never appear in any output: the password, the `auth` field, the Secret's data.
fn secret_forms() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        PASSWORD.to_string(),
        b64.encode(format!("robot:{PASSWORD}")),
        b64.encode(docker_config()),
    ]
}

/// One stand-in API server with `default/default` and a pull secret, a kubeconfig for
/// alice (allowed) and one for bob (forbidden), and a private HOME and state dir.
struct Lab {
    api: KubeApi,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Lab {
    async fn start(secrets: &[&str]) -> Lab {
        let api = KubeApi::start().await;
        api.put_service_account("default", "default", secrets);
        api.put_pull_secret("default", "regcred", &docker_config());
        let dir = lab::scratch_dir("k8s-");
        let kubeconfig = api.kubeconfig(dir.path(), "alice", ALICE_TOKEN);
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Lab {
            api,
            dir,
            kubeconfig,
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn state_home(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn local_copies(&self) -> PathBuf {
        self.state_home()
            .join("ctrdiag/saved-image-pull-secrets.json")
    }

    /// `ctrdiag ARGS --kubeconfig <alice's>` with this lab's HOME and XDG_STATE_HOME.
    async fn ctrdiag(&self, args: &[&str]) -> CliRun {
        self.ctrdiag_as(&self.kubeconfig, &self.state_home(), args)
            .await
    }

    async fn ctrdiag_as(&self, kubeconfig: &Path, state_home: &Path, args: &[&str]) -> CliRun {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctrdiag"))
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("HOME", self.home())
            .env("XDG_STATE_HOME", state_home)
            .env_remove("KUBECONFIG")
            .output()
            .await
            .expect("run ctrdiag");
        let run = CliRun::from(out);
        assert_no_secret(&run);
        run
    }

    /// The real kubectl with alice's kubeconfig and a discovery cache of its own.
    async fn kubectl(&self, args: &[&str]) -> CliRun {
        self.kubectl_as(&self.kubeconfig, args).await
    }

    async fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> CliRun {
        let out = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(args)
            .env("HOME", self.home())
            .env_remove("KUBECONFIG")
            .output()
            .await
            .expect("run kubectl (installed on the lab machines, LAB.md)");
        let run = CliRun::from(out);
        assert_no_secret(&run);
        run
    }

    /// What the runbook reads: `kubectl get sa default -o jsonpath=...`.
    async fn kubectl_names(&self) -> String {
        let run = self
            .kubectl(&[
                "get",
                "sa",
                "default",
                "-o",
                "jsonpath={.imagePullSecrets[*].name}",
            ])
            .await;
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout
    }

    fn sa(&self) -> Value {
        self.api.service_account("default", "default")
    }

    /// The names in the stored ServiceAccount, in order.
    fn names(&self) -> Vec<String> {
        names_of(&self.sa()["imagePullSecrets"])
    }

    fn saved(&self) -> Option<Value> {
        self.sa()["metadata"]["annotations"][ANNOTATION]
            .as_str()
            .map(|v| serde_json::from_str(v).expect("the annotation is JSON"))
    }

    fn patches(&self) -> Vec<lab::kube_api::Seen> {
        self.api
            .seen()
            .into_iter()
            .filter(|s| s.method == "PATCH")
            .collect()
    }
}

fn names_of(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_no_secret(run: &CliRun) {
    for form in secret_forms() {
        assert!(
            !run.stdout.contains(&form) && !run.stderr.contains(&form),
            "secret data in the output: {run:?}"
        );
    }
}

// --- The stand-in, proven against the real kubectl ---

#[tokio::test]
async fn kubectl_reads_the_names_the_runbooks_way() {
    let lab = Lab::start(&["regcred", "mirror-cred"]).await;
    assert_eq!(lab.kubectl_names().await, "regcred mirror-cred");
    let seen = lab.api.seen();
    assert!(
        seen.iter().any(|s| s.path == "/api/v1"),
        "kubectl resolved `sa` through discovery: {seen:?}"
    );
    assert!(seen.iter().any(
        |s| s.method == "GET" && s.path == "/api/v1/namespaces/default/serviceaccounts/default"
    ));
    let yaml = lab
        .kubectl(&["get", "serviceaccount", "default", "-o", "yaml"])
        .await;
    assert_eq!(yaml.code, 0, "{yaml:?}");
    assert!(yaml.stdout.contains("kind: ServiceAccount"), "{yaml:?}");
    assert!(yaml.stdout.contains("- name: mirror-cred"), "{yaml:?}");
}

#[tokio::test]
async fn kubectl_empties_the_list_with_the_runbooks_patch() {
    let lab = Lab::start(&["regcred", "mirror-cred"]).await;
    let rv = lab.sa()["metadata"]["resourceVersion"].clone();
    let run = lab
        .kubectl(&[
            "patch",
            "sa",
            "default",
            "-p",
            r#"{"imagePullSecrets": []}"#,
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), "serviceaccount/default patched");
    let patch = &lab.patches()[0];
    assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
    assert!(
        patch.query.contains("fieldManager=kubectl-patch"),
        "{patch:?}"
    );
    assert_eq!(lab.kubectl_names().await, "");
    assert!(lab.sa().get("imagePullSecrets").is_none(), "{}", lab.sa());
    assert_ne!(lab.sa()["metadata"]["resourceVersion"], rv);
    assert_eq!(
        lab.sa()["metadata"]["annotations"]["owner"],
        "platform-team"
    );
    let again = lab
        .kubectl(&[
            "patch",
            "sa",
            "default",
            "-p",
            r#"{"imagePullSecrets": []}"#,
        ])
        .await;
    assert_eq!(
        again.stdout.trim(),
        "serviceaccount/default patched (no change)"
    );
}

#[tokio::test]
async fn kubectl_reports_the_stand_ins_statuses_as_it_reports_the_api_servers() {
    let lab = Lab::start(&["regcred"]).await;
    let failed_test = lab
        .kubectl(&[
            "patch",
            "sa",
            "default",
            "--type=json",
            "-p",
            r#"[{"op": "test", "path": "/imagePullSecrets", "value": []}, {"op": "replace", "path": "/imagePullSecrets", "value": []}]"#,
        ])
        .await;
    assert_eq!(failed_test.code, 1, "{failed_test:?}");
    assert_eq!(
        failed_test.stderr.trim(),
        "The request is invalid: the server rejected our request due to an error in our request"
    );
    assert_eq!(lab.names(), ["regcred"]);
    assert_eq!(lab.patches()[0].content_type, "application/json-patch+json");

    let missing = lab.kubectl(&["get", "sa", "nope"]).await;
    assert_eq!(
        missing.stderr.trim(),
        "Error from server (NotFound): serviceaccounts \"nope\" not found"
    );
    let bob = lab.api.kubeconfig(lab.dir.path(), "bob", BOB_TOKEN);
    let forbidden = lab.kubectl_as(&bob, &["get", "sa", "default"]).await;
    assert_eq!(
        forbidden.stderr.trim(),
        "Error from server (Forbidden): serviceaccounts \"default\" is forbidden: User \"bob\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"default\""
    );
}

// --- ctrdiag ---

#[tokio::test]
async fn show_prints_the_list_and_that_nothing_is_saved() {
    let lab = Lab::start(&["regcred", "mirror-cred"]).await;
    let run = lab.ctrdiag(&["k8s", "pull-secrets", "show"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "ServiceAccount default/default\nimagePullSecrets: regcred, mirror-cred\nsaved list: none\n"
    );
    let json = lab
        .ctrdiag(&["-o", "json", "k8s", "pull-secrets", "show"])
        .await
        .json();
    assert_eq!(
        json["image_pull_secrets"],
        json!(["regcred", "mirror-cred"])
    );
    assert_eq!(json["saved"], Value::Null);
    assert_eq!(json["local_copy"], Value::Null);
    assert!(lab.patches().is_empty());
}

#[tokio::test]
async fn detach_then_restore_puts_back_the_exact_list_in_order_and_removes_the_annotation() {
    let lab = Lab::start(&["zeta", "alpha", "mid"]).await;
    let detach = lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await;
    assert_eq!(detach.code, 0, "{detach:?}");
    assert!(
        detach
            .stdout
            .starts_with("detached zeta, alpha, mid from ServiceAccount default/default"),
        "{detach:?}"
    );
    assert!(
        detach.stderr.contains("warning: every Pod created from now on with ServiceAccount default/default no longer gets the pull credentials zeta, alpha, mid"),
        "{detach:?}"
    );
    // One guarded JSON patch; the list is empty for the runbook's own check too.
    let patches = lab.patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].content_type, "application/json-patch+json");
    assert!(
        patches[0].query.contains("fieldManager=ctrdiag"),
        "{patches:?}"
    );
    assert_eq!(lab.kubectl_names().await, "");
    let saved = lab.saved().expect("the annotation holds the list");
    assert_eq!(
        names_of(&saved["imagePullSecrets"]),
        ["zeta", "alpha", "mid"]
    );
    assert_eq!(
        saved["savedBy"],
        json!({"context": "stand-in", "user": "alice"})
    );
    assert!(saved["savedAt"].as_str().unwrap().ends_with('Z'), "{saved}");
    assert_eq!(
        lab.sa()["metadata"]["annotations"]["owner"],
        "platform-team"
    );
    // The local copy: private, with the names.
    let mode = std::fs::metadata(lab.local_copies())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let copies: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.local_copies()).unwrap()).unwrap();
    assert_eq!(
        names_of(&copies["copies"][0]["saved"]["imagePullSecrets"]),
        ["zeta", "alpha", "mid"]
    );

    let show = lab
        .ctrdiag(&["-o", "json", "k8s", "pull-secrets", "show"])
        .await
        .json();
    assert_eq!(show["image_pull_secrets"], json!([]));
    assert_eq!(
        show["saved"]["image_pull_secrets"],
        json!(["zeta", "alpha", "mid"])
    );
    assert_eq!(show["saved"]["saved_by"]["user"], "alice");
    assert_eq!(
        show["local_copy"]["saved"]["image_pull_secrets"],
        json!(["zeta", "alpha", "mid"])
    );

    let restore = lab.ctrdiag(&["k8s", "pull-secrets", "restore"]).await;
    assert_eq!(restore.code, 0, "{restore:?}");
    assert_eq!(
        restore.stdout,
        "restored zeta, alpha, mid to ServiceAccount default/default; the annotation ctrdiag.dev/saved-image-pull-secrets is removed\n"
    );
    assert_eq!(lab.names(), ["zeta", "alpha", "mid"]);
    assert_eq!(lab.kubectl_names().await, "zeta alpha mid");
    assert_eq!(lab.saved(), None);
    assert_eq!(
        lab.sa()["metadata"]["annotations"],
        json!({"owner": "platform-team"})
    );
    assert_eq!(lab.patches().len(), 2);
    let copies: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.local_copies()).unwrap()).unwrap();
    assert_eq!(copies["copies"], json!([]), "the local copy is forgotten");
}

#[tokio::test]
async fn restore_works_from_the_annotation_alone_on_another_machine() {
    let lab = Lab::start(&["regcred", "mirror-cred"]).await;
    assert_eq!(
        lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await.code,
        0
    );
    std::fs::remove_dir_all(lab.state_home()).unwrap();
    let elsewhere = lab.dir.path().join("other-machine-state");
    let restore = lab
        .ctrdiag_as(
            &lab.kubeconfig,
            &elsewhere,
            &["-o", "json", "k8s", "pull-secrets", "restore"],
        )
        .await;
    assert_eq!(restore.code, 0, "{restore:?}");
    assert_eq!(restore.json()["outcome"], "restored");
    assert_eq!(lab.names(), ["regcred", "mirror-cred"]);
    assert_eq!(lab.saved(), None);
}

#[tokio::test]
async fn a_concurrent_edit_between_read_and_patch_fails_detach_and_loses_nothing() {
    let lab = Lab::start(&["regcred"]).await;
    lab.api.edit_after_next_get("default", "default", |sa| {
        sa["imagePullSecrets"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "added-meanwhile"}));
    });
    let run = lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("ServiceAccount default/default changed after ctrdiag read it")
            && run
                .stderr
                .contains("nothing was changed; run the command again"),
        "{run:?}"
    );
    assert_eq!(lab.patches().len(), 1, "the patch was sent and refused");
    assert_eq!(lab.names(), ["regcred", "added-meanwhile"]);
    assert_eq!(lab.saved(), None);
    let copies = std::fs::read_to_string(lab.local_copies()).unwrap();
    assert!(
        !copies.contains("regcred"),
        "a refused detach leaves no copy: {copies}"
    );

    let again = lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        names_of(&lab.saved().unwrap()["imagePullSecrets"]),
        ["regcred", "added-meanwhile"]
    );
}

#[tokio::test]
async fn a_concurrent_edit_fails_restore_and_keeps_the_saved_list() {
    let lab = Lab::start(&["regcred"]).await;
    assert_eq!(
        lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await.code,
        0
    );
    lab.api.edit_after_next_get("default", "default", |sa| {
        sa["imagePullSecrets"] = json!([{"name": "added-meanwhile"}]);
    });
    let run = lab.ctrdiag(&["k8s", "pull-secrets", "restore"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("run the command again"), "{run:?}");
    assert_eq!(lab.names(), ["added-meanwhile"]);
    assert_eq!(
        names_of(&lab.saved().unwrap()["imagePullSecrets"]),
        ["regcred"]
    );
}

#[tokio::test]
async fn restore_keeps_secrets_added_after_the_detach() {
    let lab = Lab::start(&["regcred", "mirror-cred"]).await;
    assert_eq!(
        lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await.code,
        0
    );
    let added = lab
        .kubectl(&[
            "patch",
            "sa",
            "default",
            "-p",
            r#"{"imagePullSecrets": [{"name": "new-cred"}]}"#,
        ])
        .await;
    assert_eq!(added.code, 0, "{added:?}");
    let restore = lab
        .ctrdiag(&["-o", "json", "k8s", "pull-secrets", "restore"])
        .await;
    assert_eq!(restore.code, 0, "{restore:?}");
    assert_eq!(restore.json()["kept"], json!(["new-cred"]));
    assert_eq!(lab.names(), ["regcred", "mirror-cred", "new-cred"]);
}

#[tokio::test]
async fn detach_refuses_to_overwrite_a_saved_list() {
    let lab = Lab::start(&["regcred"]).await;
    assert_eq!(
        lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await.code,
        0
    );
    let saved = lab.saved();
    let put_back = lab
        .kubectl(&[
            "patch",
            "sa",
            "default",
            "-p",
            r#"{"imagePullSecrets": [{"name": "by-hand"}]}"#,
        ])
        .await;
    assert_eq!(put_back.code, 0, "{put_back:?}");
    let run = lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "a list is already saved in the annotation ctrdiag.dev/saved-image-pull-secrets"
        ) && run.stderr.contains("by user alice (context stand-in)")
            && run
                .stderr
                .contains("run `ctrdiag k8s pull-secrets restore` first"),
        "{run:?}"
    );
    assert_eq!(lab.saved(), saved);
    assert_eq!(lab.names(), ["by-hand"]);
    assert_eq!(
        lab.patches().len(),
        2,
        "ctrdiag sent nothing the second time"
    );
}

#[tokio::test]
async fn nothing_to_detach_or_restore_changes_nothing() {
    let lab = Lab::start(&[]).await;
    let before = lab.sa();
    let detach = lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await;
    assert_eq!(detach.code, 0, "{detach:?}");
    assert_eq!(
        detach.stdout,
        "nothing to detach: ServiceAccount default/default has no imagePullSecrets; nothing was changed\n"
    );
    let restore = lab
        .ctrdiag(&["-o", "json", "k8s", "pull-secrets", "restore"])
        .await;
    assert_eq!(restore.code, 0, "{restore:?}");
    assert_eq!(restore.json()["outcome"], "nothing_saved");
    assert!(lab.patches().is_empty());
    assert_eq!(lab.sa(), before);
    assert!(!lab.local_copies().exists());
}

#[tokio::test]
async fn dry_run_prints_the_patch_and_changes_nothing() {
    let lab = Lab::start(&["regcred", "mirror-cred"]).await;
    let before = lab.sa();
    let run = lab
        .ctrdiag(&["-o", "json", "k8s", "pull-secrets", "detach", "--dry-run"])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    assert_eq!(json["outcome"], "dry_run");
    let patch = &json["patch"];
    assert_eq!(
        patch[0],
        json!({"op": "test", "path": "/imagePullSecrets", "value": [{"name": "regcred"}, {"name": "mirror-cred"}]})
    );
    assert_eq!(
        patch[1],
        json!({"op": "test", "path": "/metadata/annotations/ctrdiag.dev~1saved-image-pull-secrets", "value": null})
    );
    assert_eq!(
        patch[3],
        json!({"op": "replace", "path": "/imagePullSecrets", "value": []})
    );
    let human = lab
        .ctrdiag(&["k8s", "pull-secrets", "detach", "--dry-run"])
        .await;
    assert!(human.stdout.contains("\"op\": \"test\""), "{human:?}");
    assert!(
        human.stdout.ends_with("(dry run: nothing was changed)\n"),
        "{human:?}"
    );
    assert!(
        human.stderr.contains("once detached for real, every Pod created afterwards with ServiceAccount default/default would no longer get the pull credentials regcred, mirror-cred"),
        "{human:?}"
    );
    assert!(lab.patches().is_empty());
    assert_eq!(lab.sa(), before);
    assert!(!lab.local_copies().exists());

    assert_eq!(
        lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await.code,
        0
    );
    let detached = lab.sa();
    let restore = lab
        .ctrdiag(&["-o", "json", "k8s", "pull-secrets", "restore", "--dry-run"])
        .await;
    assert_eq!(restore.code, 0, "{restore:?}");
    assert_eq!(restore.json()["patch"][0]["op"], "test");
    assert_eq!(
        restore.json()["patch"][0]["path"],
        "/metadata/annotations/ctrdiag.dev~1saved-image-pull-secrets"
    );
    assert_eq!(lab.sa(), detached);
    assert_eq!(lab.patches().len(), 1);
}

#[tokio::test]
async fn forbidden_unauthorized_missing_and_unreachable_say_so_with_their_exit_codes() {
    let lab = Lab::start(&["regcred"]).await;
    let bob = lab.api.kubeconfig(lab.dir.path(), "bob", BOB_TOKEN);
    let forbidden = lab
        .ctrdiag_as(&bob, &lab.state_home(), &["k8s", "pull-secrets", "detach"])
        .await;
    assert_eq!(forbidden.code, 3, "{forbidden:?}");
    assert!(
        forbidden
            .stderr
            .contains("User \"bob\" cannot get resource \"serviceaccounts\"")
            && forbidden.stderr.contains("(403 Forbidden)"),
        "{forbidden:?}"
    );
    let stranger = lab
        .api
        .kubeconfig(lab.dir.path(), "stranger", "no-such-token");
    let unauthorized = lab
        .ctrdiag_as(
            &stranger,
            &lab.state_home(),
            &["k8s", "pull-secrets", "show"],
        )
        .await;
    assert_eq!(unauthorized.code, 3, "{unauthorized:?}");
    assert!(
        unauthorized.stderr.contains("(401 Unauthorized)"),
        "{unauthorized:?}"
    );
    let missing = lab
        .ctrdiag(&["k8s", "pull-secrets", "show", "--service-account", "nope"])
        .await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_eq!(
        missing.stderr,
        "ctrdiag: ServiceAccount default/nope does not exist (404 Not Found); check --namespace, --service-account and --context\n"
    );
    let other_ns = lab
        .ctrdiag(&["k8s", "pull-secrets", "restore", "-n", "kube-public"])
        .await;
    assert_eq!(other_ns.code, 1, "{other_ns:?}");
    assert!(
        other_ns
            .stderr
            .contains("kube-public/default does not exist")
    );
    let no_context = lab
        .ctrdiag(&["k8s", "pull-secrets", "show", "--context", "prod"])
        .await;
    assert_eq!(no_context.code, 2, "{no_context:?}");
    assert_eq!(
        no_context.stderr,
        "ctrdiag: the kubeconfig has no context \"prod\"; list them with `kubectl config get-contexts`\n"
    );

    let dead = {
        let text = std::fs::read_to_string(&lab.kubeconfig).unwrap();
        let port = lab::free_port();
        let path = lab.dir.path().join("kubeconfig-dead");
        std::fs::write(
            &path,
            text.replace(&lab.api.server, &format!("https://127.0.0.1:{port}")),
        )
        .unwrap();
        path
    };
    let unreachable = lab
        .ctrdiag_as(&dead, &lab.state_home(), &["k8s", "pull-secrets", "show"])
        .await;
    assert_eq!(unreachable.code, 3, "{unreachable:?}");
    assert!(
        unreachable
            .stderr
            .contains("cannot reach the Kubernetes API server at https://127.0.0.1:"),
        "{unreachable:?}"
    );
    assert_eq!(lab.names(), ["regcred"]);
    assert!(lab.patches().is_empty());
}

#[tokio::test]
async fn a_recreated_service_account_points_to_the_local_copy() {
    let lab = Lab::start(&["regcred", "mirror-cred"]).await;
    assert_eq!(
        lab.ctrdiag(&["k8s", "pull-secrets", "detach"]).await.code,
        0
    );
    // Deleted and recreated by the controller manager: empty, no annotation.
    lab.api.put_service_account("default", "default", &[]);
    let run = lab.ctrdiag(&["k8s", "pull-secrets", "restore"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("holds no saved list, but your local copy")
            && run
                .stderr
                .contains("says regcred, mirror-cred were detached"),
        "{run:?}"
    );
    let show = lab.ctrdiag(&["k8s", "pull-secrets", "show"]).await;
    assert!(
        show.stdout.contains("local copy: regcred, mirror-cred"),
        "{show:?}"
    );
    // The suggested kubectl command, run as printed, puts them back.
    let patch = run
        .stderr
        .split("-p '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a kubectl command in the message");
    let put_back = lab
        .kubectl(&[
            "-n",
            "default",
            "patch",
            "serviceaccount",
            "default",
            "-p",
            patch,
        ])
        .await;
    assert_eq!(put_back.code, 0, "{put_back:?}");
    assert_eq!(lab.kubectl_names().await, "regcred mirror-cred");
}

#[tokio::test]
async fn no_output_ever_holds_a_secrets_data_and_no_secret_is_read() {
    let lab = Lab::start(&["regcred"]).await;
    let mut runs = Vec::new();
    for output in ["table", "json"] {
        for args in [
            &["k8s", "pull-secrets", "show"][..],
            &["k8s", "pull-secrets", "detach", "--dry-run"],
            &["k8s", "pull-secrets", "detach"],
            &["k8s", "pull-secrets", "show"],
            &["k8s", "pull-secrets", "detach"],
            &["k8s", "pull-secrets", "restore", "--dry-run"],
            &["k8s", "pull-secrets", "restore"],
            &["k8s", "pull-secrets", "show", "--service-account", "nope"],
        ] {
            let mut all = vec!["-o", output];
            all.extend_from_slice(args);
            runs.push(lab.ctrdiag(&all).await);
        }
    }
    let bob = lab.api.kubeconfig(lab.dir.path(), "bob", BOB_TOKEN);
    runs.push(
        lab.ctrdiag_as(&bob, &lab.state_home(), &["k8s", "pull-secrets", "show"])
            .await,
    );
    // The Secret is really there, with its data: kubectl shows it to alice.
    let secret = lab
        .kubectl(&["get", "secret", "regcred", "-o", "jsonpath={.type}"])
        .await;
    assert_eq!(
        secret.stdout, "kubernetes.io/dockerconfigjson",
        "{secret:?}"
    );
    for run in &runs {
        assert_no_secret(run);
    }
    let copies = std::fs::read_to_string(lab.local_copies()).unwrap();
    assert!(secret_forms().iter().all(|f| !copies.contains(f)));
    let ctrdiag_read_secrets = lab
        .api
        .seen()
        .iter()
        .filter(|s| s.path.contains("/secrets/"))
        .count();
    assert_eq!(
        ctrdiag_read_secrets, 1,
        "only kubectl's own GET of the Secret"
    );
}
