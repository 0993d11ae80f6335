//! A fix on a node whose containerd configuration someone else owns (k3s, RKE2,
//! Bottlerocket; see [`crate::ctrconfig::owner`]): ctrdiag edits none of the generated
//! files, which the owner would overwrite at its next start. It says what to change
//! where the owner reads it, in the owner's format: a `registries.yaml` edit (merged
//! into the file as it is, shown as a diff, or the whole file when there is none) and
//! the restart that renders it, or the `apiclient set` command. Pure: the file's text
//! comes in, the change goes out; the operator applies it.

pub mod registries_yaml;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::cause::{CauseCode, Severity};
use crate::ctrconfig::{Generator, Owner};
use crate::diagnose::{Evidence, Finding, Remedy};
use crate::fix::FixMode;
use crate::registry::host::RegistryHost;
use registries_yaml::{RegistriesYaml, YamlError, quote};

/// Why no change can be given in the owner's format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedError {
    #[error(
        "{owner} has no setting that turns TLS verification off for one registry, and ctrdiag edits nothing it renders: trust the registry's CA instead (`ctrdiag fix {host} --ca FILE` prints the {owner} change)"
    )]
    NoSkipVerify { owner: &'static str, host: String },
    #[error(
        "nothing to do: {file} has no registry overrides for {host} (ctrdiag edits nothing {owner} renders)"
    )]
    NothingToRemove {
        owner: &'static str,
        file: String,
        host: String,
    },
    #[error(
        "the registry credentials in {} are rendered by {owner} {origin}: remove them there{restart}; ctrdiag edits nothing {owner} renders (the docker-style credential files are not {owner}'s: `ctrdiag creds clean` removes those once the rest is gone)",
        .files.join(", ")
    )]
    RenderedCredentials {
        owner: &'static str,
        files: Vec<String>,
        origin: String,
        restart: String,
    },
}

/// Refuses a credentials clean that would edit `files` (containerd's config.toml or
/// hosts.toml, where `auth` tables and `header`s live) on a node `owner` owns: they
/// come from the owner's own configuration, where the operator removes them.
pub fn refuse_rendered_credentials(
    owner: &Owner,
    files: Vec<String>,
    registries_file: &str,
) -> Result<(), ManagedError> {
    let (origin, restart) = match owner {
        _ if files.is_empty() => return Ok(()),
        Owner::Containerd => return Ok(()),
        Owner::Generated { by, .. } => (
            format!("from the `auth:` entries under `configs:` in {registries_file}"),
            format!(" and restart {}", by.units()[0]),
        ),
        Owner::Bottlerocket { .. } => (
            "from settings.container-registry.credentials (see `apiclient get settings.container-registry.credentials`)".to_string(),
            String::new(),
        ),
    };
    Err(ManagedError::RenderedCredentials {
        owner: owner.name(),
        files,
        origin,
        restart,
    })
}

/// Who owns a node's containerd configuration, as diagnose needs it: the owner and
/// the file changes go into (its registries.yaml; unused for Bottlerocket).
#[derive(Debug, Clone, Copy)]
pub struct Owned<'a> {
    pub owner: &'a Owner,
    pub registries_file: &'a str,
}

/// What a fix asks for, with what the owner's format needs.
#[derive(Debug, Clone, Copy)]
pub struct ManagedRequest<'a> {
    pub host: &'a RegistryHost,
    pub mode: &'a FixMode,
    /// The CA file's absolute path as the operator named it, for `--ca`: k3s names
    /// files in registries.yaml, it does not take their text.
    pub ca_file: Option<&'a str>,
    /// The owner's registries file (k3s, RKE2) and its text (`None`: no such file).
    pub registries_file: &'a str,
    pub registries_text: Option<&'a str>,
    /// The unit the daemon restarts containerd through, which names the agent's unit
    /// on k3s and RKE2 agents.
    pub unit: &'a str,
    /// The image that proves the change once it is made.
    pub verify_image: Option<&'a str>,
}

/// How the owner's file is to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditAction {
    /// The file does not exist: `text` is the whole new file.
    Create,
    /// A unified diff against the file as it is now (secret values as placeholders).
    Diff,
    /// The file is not in a shape ctrdiag merges into: `text` is the part to merge,
    /// or what to remove, by hand.
    ByHand,
}

impl EditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EditAction::Create => "create",
            EditAction::Diff => "diff",
            EditAction::ByHand => "by_hand",
        }
    }

    /// The action an API string names; anything else is an edit by hand.
    pub fn parse(s: &str) -> EditAction {
        match s {
            "create" => EditAction::Create,
            "diff" => EditAction::Diff,
            _ => EditAction::ByHand,
        }
    }
}

/// An edit of the owner's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEdit {
    pub path: String,
    pub action: EditAction,
    pub text: String,
}

/// The change to make, in the owner's format. Nothing in it is applied by ctrdiag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedChange {
    /// `k3s`, `RKE2` or `Bottlerocket`.
    pub owner: String,
    /// What says the owner owns the configuration, one line each.
    pub evidence: Vec<String>,
    pub title: String,
    pub edit: Option<FileEdit>,
    /// Commands to run, in order (`apiclient set ...`, `systemctl restart k3s`).
    pub commands: Vec<String>,
    pub notes: Vec<String>,
    /// How to check it afterwards.
    pub verify: String,
}

impl ManagedChange {
    /// The change for people: why nothing was applied, what to do, how to verify.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Nothing applied: containerd's configuration on this node is owned by {}.\n",
            self.owner
        );
        for e in &self.evidence {
            out += &format!("  {e}\n");
        }
        out += &format!(
            "ctrdiag does not edit files {} renders: it renders them again from its own configuration, and an edit would be lost. Make this change there yourself: {}\n",
            self.owner, self.title
        );
        let mut step = 0;
        let mut next = || {
            step += 1;
            step
        };
        if let Some(edit) = &self.edit {
            let what = match edit.action {
                EditAction::Create => format!("Create {} with:", edit.path),
                EditAction::Diff => format!(
                    "Edit {} as this diff shows (against the file as it is now; secret values are shown as placeholders):",
                    edit.path
                ),
                EditAction::ByHand => format!("Edit {} by hand:", edit.path),
            };
            out += &format!("\n{}. {what}\n", next());
            for line in edit.text.lines() {
                out += &format!("     {line}\n");
            }
        }
        for c in &self.commands {
            out += &format!("\n{}. $ {c}\n", next());
        }
        for n in &self.notes {
            out += &format!("\nNote: {n}\n");
        }
        out += &format!("\nThen verify: {}\n", self.verify);
        out
    }

    /// One line: who owns the configuration and what to do (logs, errors).
    pub fn summary(&self) -> String {
        let what = match (&self.edit, self.commands.first()) {
            (Some(edit), _) => format!("change {} ({})", edit.path, self.title),
            (None, Some(c)) => format!("run `{c}`"),
            (None, None) => self.title.clone(),
        };
        format!(
            "containerd's configuration is owned by {}: ctrdiag changed nothing; {what}; `ctrdiag fix ... --dry-run` prints the change",
            self.owner
        )
    }
}

/// The change `req` needs on a node `owner` owns; `None` when containerd's own files
/// are the configuration (ctrdiag plans the edit itself then).
pub fn change(
    owner: &Owner,
    req: &ManagedRequest<'_>,
) -> Result<Option<ManagedChange>, ManagedError> {
    let change = match owner {
        Owner::Containerd => return Ok(None),
        Owner::Generated { by, evidence } => generated(*by, evidence, req)?,
        Owner::Bottlerocket { evidence } => bottlerocket(evidence, req)?,
    };
    Ok(Some(change))
}

fn title(mode: &FixMode, host: &RegistryHost) -> String {
    match mode {
        FixMode::Ca { .. } => format!("trust the CA of {host}"),
        FixMode::PinCertificate { .. } => {
            format!("pin the certificate of {host} (until it is renewed)")
        }
        FixMode::InsecureSkipVerify => {
            format!("skip TLS verification for {host} (test environments only)")
        }
        FixMode::PlainHttp => format!("pull from {host} over plain HTTP"),
        FixMode::RemoveOverrides { all_hosts: true } => "remove every registry override".into(),
        FixMode::RemoveOverrides { all_hosts: false } => {
            format!("remove the registry overrides of {host}")
        }
    }
}

fn verify(req: &ManagedRequest<'_>) -> String {
    match req.verify_image {
        Some(image) => format!(
            "`ctrdiag pull {image}` (a test pull through CRI that leaves the image store as it was), or `ctrdiag diagnose {image}`"
        ),
        None => format!("`ctrdiag diagnose {}`", req.host),
    }
}

/// What a `registries.yaml` edit does for `mode`: the operations, applied in order.
enum YamlOp {
    Set(Vec<String>, String),
    AddList(Vec<String>, Vec<String>),
    Remove(Vec<String>),
}

/// Where a CA the daemon has (but no file of the operator names) is to be saved.
fn suggested_ca_path(by: Generator, host: &RegistryHost) -> String {
    format!("/etc/rancher/{}/certs/{host}/ca.crt", by.program())
}

fn generated(
    by: Generator,
    evidence: &[String],
    req: &ManagedRequest<'_>,
) -> Result<ManagedChange, ManagedError> {
    let host = req.host.to_string();
    let program = by.program();
    let owner = by.name();
    let mut notes = Vec::new();
    let tls = |key: &str| {
        vec![
            "configs".to_string(),
            host.clone(),
            "tls".into(),
            key.into(),
        ]
    };
    let ops = match req.mode {
        FixMode::Ca { pem } | FixMode::PinCertificate { pem } => {
            let path = match (req.mode, req.ca_file) {
                (FixMode::Ca { .. }, Some(path)) => {
                    notes.push(format!(
                        "keep {path} where it is: {program} names it in the hosts.toml it writes, and containerd reads it at every pull"
                    ));
                    path.to_string()
                }
                _ => {
                    let path = suggested_ca_path(by, req.host);
                    notes.push(format!(
                        "save this certificate (public, as the registry presents it or as you gave it) as {path} first:\n{}",
                        pem.trim_end()
                    ));
                    path
                }
            };
            vec![
                YamlOp::Set(tls("ca_file"), quote(&path)),
                // A CA fix never leaves verification off.
                YamlOp::Remove(tls("insecure_skip_verify")),
            ]
        }
        FixMode::InsecureSkipVerify => {
            notes.push(format!(
                "for test environments only: {program} has no time to live for it; `ctrdiag fix {host} --remove-overrides` prints how to take it out"
            ));
            vec![YamlOp::Set(tls("insecure_skip_verify"), "true".into())]
        }
        FixMode::PlainHttp => vec![YamlOp::AddList(
            vec!["mirrors".into(), host.clone(), "endpoint".into()],
            vec![quote(&format!("http://{host}"))],
        )],
        FixMode::RemoveOverrides { all_hosts } => {
            notes.push("credentials (`auth:`) stay".into());
            remove_ops(req, *all_hosts, &host)
        }
    };
    let removing = matches!(req.mode, FixMode::RemoveOverrides { .. });
    let edit = yaml_edit(req, &ops, removing, &mut notes);
    if removing && edit.is_none() {
        return Err(ManagedError::NothingToRemove {
            owner,
            file: req.registries_file.to_string(),
            host,
        });
    }
    let [server, agent] = by.units();
    let unit = req.unit.trim_end_matches(".service");
    let commands = if unit == agent {
        vec![format!("systemctl restart {agent}")]
    } else {
        if unit != server {
            notes.push(format!(
                "on an agent node the unit is {agent}: `systemctl restart {agent}`"
            ));
        }
        vec![format!("systemctl restart {server}")]
    };
    notes.push(format!(
        "{program} renders config.toml and certs.d from {} at every start",
        req.registries_file
    ));
    Ok(ManagedChange {
        owner: owner.into(),
        evidence: evidence.to_vec(),
        title: title(req.mode, req.host),
        edit,
        commands,
        notes,
        verify: verify(req),
    })
}

/// The removals for `--remove-overrides`: the host's `mirrors` entry and its `tls`
/// (every host's, for all hosts), as far as the file has them. For all hosts of a file
/// the editor cannot read, `*` stands for every host in what is shown by hand.
fn remove_ops(req: &ManagedRequest<'_>, all_hosts: bool, host: &str) -> Vec<YamlOp> {
    let hosts: Vec<String> = match (all_hosts, req.registries_text.map(RegistriesYaml::parse)) {
        (true, Some(Ok(y))) => match (y.children(&["configs"]), y.children(&["mirrors"])) {
            (Ok(mut hosts), Ok(mirrors)) => {
                hosts.extend(mirrors);
                hosts.sort();
                hosts.dedup();
                hosts
            }
            _ => vec!["*".to_string()],
        },
        (true, _) => vec!["*".to_string()],
        (false, _) => vec![host.to_string()],
    };
    hosts
        .iter()
        .flat_map(|h| {
            [
                YamlOp::Remove(vec!["mirrors".into(), h.clone()]),
                YamlOp::Remove(vec!["configs".into(), h.clone(), "tls".into()]),
            ]
        })
        .collect()
}

/// The registries.yaml edit for `ops`: a diff against the file, the whole new file,
/// or (when the file is in a shape the editor refuses) the part to merge by hand.
/// `None` when a removal finds nothing to remove.
fn yaml_edit(
    req: &ManagedRequest<'_>,
    ops: &[YamlOp],
    removing: bool,
    notes: &mut Vec<String>,
) -> Option<FileEdit> {
    let path = req.registries_file.to_string();
    let Some(text) = req.registries_text else {
        if removing {
            return None;
        }
        let mut y = RegistriesYaml::empty();
        apply(&mut y, ops).expect("an empty file takes any entry");
        return Some(FileEdit {
            path,
            action: EditAction::Create,
            text: y.text(),
        });
    };
    let merged =
        RegistriesYaml::parse(text).and_then(|mut y| apply(&mut y, ops).map(|any| (y, any)));
    match merged {
        Ok((_, false)) if removing => None,
        Ok((y, _)) => Some(FileEdit {
            action: EditAction::Diff,
            text: crate::plan::unified_diff(std::path::Path::new(&path), Some(text), &y.text()),
            path,
        }),
        Err(e) => {
            notes.push(format!(
                "{path} is not merged automatically: {e}; merge the part shown into it by hand"
            ));
            Some(FileEdit {
                path,
                action: EditAction::ByHand,
                text: by_hand(ops),
            })
        }
    }
}

/// Applies `ops`; whether any of them changed something.
fn apply(y: &mut RegistriesYaml, ops: &[YamlOp]) -> Result<bool, YamlError> {
    fn refs(p: &[String]) -> Vec<&str> {
        p.iter().map(String::as_str).collect()
    }
    let mut any = false;
    for op in ops {
        match op {
            YamlOp::Set(p, v) => {
                y.set_scalar(&refs(p), v)?;
                any = true;
            }
            YamlOp::AddList(p, items) => {
                y.add_list(&refs(p), items)?;
                any = true;
            }
            YamlOp::Remove(p) => any |= y.remove(&refs(p))?,
        }
    }
    Ok(any)
}

/// The edit described for a person: the entries to set, as YAML, and the ones to remove.
fn by_hand(ops: &[YamlOp]) -> String {
    let mut set = RegistriesYaml::empty();
    let mut removals = Vec::new();
    for op in ops {
        match op {
            YamlOp::Set(..) | YamlOp::AddList(..) => {
                apply(&mut set, std::slice::from_ref(op)).expect("an empty file takes any entry");
            }
            YamlOp::Remove(p) => removals.push(
                p.iter()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(" > "),
            ),
        }
    }
    let mut out = set.text();
    if !removals.is_empty() {
        out += &format!("# and remove, where present: {}\n", removals.join("; "));
    }
    out
}

/// The name of the trust bundle ctrdiag suggests for `host` in `settings.pki`.
pub fn pki_bundle(host: &RegistryHost) -> String {
    let slug: String = host
        .to_string()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("ctrdiag-{slug}")
}

fn bottlerocket(
    evidence: &[String],
    req: &ManagedRequest<'_>,
) -> Result<ManagedChange, ManagedError> {
    let host = req.host.to_string();
    let bundle = pki_bundle(req.host);
    let (commands, notes) = match req.mode {
        FixMode::Ca { pem } | FixMode::PinCertificate { pem } => {
            let data = base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
            (
                vec![format!(
                    "apiclient set pki.{bundle}.data=\"{data}\" pki.{bundle}.trusted=true"
                )],
                vec![format!(
                    "settings.pki adds the bundle to the node's trust store, which containerd uses for every registry; `apiclient set pki.{bundle}.trusted=false` stops trusting it"
                )],
            )
        }
        FixMode::InsecureSkipVerify => {
            return Err(ManagedError::NoSkipVerify {
                owner: "Bottlerocket",
                host,
            });
        }
        FixMode::PlainHttp => (
            vec![format!(
                "apiclient set --json '{{\"container-registry\": {{\"mirrors\": [{{\"registry\": {host:?}, \"endpoint\": [\"http://{host}\"]}}]}}}}'"
            )],
            vec![
                "this sets the whole list settings.container-registry.mirrors: run `apiclient get settings.container-registry.mirrors` first and keep the entries it lists in the JSON".into(),
            ],
        ),
        FixMode::RemoveOverrides { .. } => (
            vec![
                "apiclient get settings.container-registry settings.pki".into(),
                format!("apiclient set pki.{bundle}.trusted=false"),
            ],
            vec![format!(
                "ctrdiag cannot read Bottlerocket's settings: the first command shows the mirrors and trust bundles; the second stops trusting the bundle ctrdiag suggests for {host}; set settings.container-registry.mirrors without {host}'s entry to drop a mirror"
            )],
        ),
    };
    Ok(ManagedChange {
        owner: "Bottlerocket".into(),
        evidence: evidence.to_vec(),
        title: title(req.mode, req.host),
        edit: None,
        commands,
        notes,
        verify: verify(req),
    })
}

/// The `config_managed` finding of `diagnose` on a node `owner` owns: who owns the
/// configuration and what says so, with the change that answers `cause` (the pull's)
/// in the owner's format. `None` for containerd's own files.
pub fn finding(
    owner: &Owner,
    target: &str,
    host: &RegistryHost,
    cause: Option<CauseCode>,
    registries_file: &str,
) -> Option<Finding> {
    if owner.is_containerd() {
        return None;
    }
    let name = owner.name();
    let summary = match owner {
        Owner::Bottlerocket { .. } => "containerd's configuration on this node is rendered by Bottlerocket from its settings: ctrdiag edits none of it; changes go through `apiclient set`".to_string(),
        _ => format!(
            "containerd's configuration on this node is generated by {name} from {registries_file} at every start: ctrdiag edits none of it; changes go into {registries_file}"
        ),
    };
    let mode = match cause {
        Some(CauseCode::TlsUnknownAuthority) => Some(FixMode::Ca { pem: String::new() }),
        Some(CauseCode::HttpResponseToHttps) => Some(FixMode::PlainHttp),
        _ => None,
    };
    let placeholder = "/path/to/ca.crt";
    let mut remedies = Vec::new();
    if let Some(mode) = &mode {
        // The CA is not known here: a placeholder path (and, for Bottlerocket, a
        // command that encodes the file at that path) stands for it.
        let req = ManagedRequest {
            host,
            mode,
            ca_file: Some(placeholder),
            registries_file,
            registries_text: None,
            unit: "",
            verify_image: None,
        };
        if let Ok(Some(c)) = change(owner, &req) {
            let mut commands = c.commands.clone();
            if matches!(owner, Owner::Bottlerocket { .. }) && matches!(mode, FixMode::Ca { .. }) {
                let bundle = pki_bundle(host);
                commands = vec![format!(
                    "apiclient set pki.{bundle}.data=\"$(base64 -w0 {placeholder})\" pki.{bundle}.trusted=true"
                )];
            }
            let text = match &c.edit {
                Some(e) => format!(
                    "{} in {} (merged with what the file has), then restart {name}:\n{}",
                    c.title,
                    e.path,
                    e.text.trim_end()
                ),
                None => format!("{} through {name}'s settings", c.title),
            };
            remedies.push(Remedy {
                text,
                command: commands.last().cloned(),
            });
        }
        let flag = match mode {
            FixMode::Ca { .. } => format!("--ca {placeholder}"),
            _ => "--plain-http".to_string(),
        };
        remedies.push(Remedy {
            text: "ctrdiag prints this change for your node (merged into the file as it is) and applies nothing".into(),
            command: Some(format!("ctrdiag fix {target} {flag} --dry-run")),
        });
    } else {
        remedies.push(Remedy {
            text: match owner {
                Owner::Bottlerocket { .. } => {
                    "change registry settings with `apiclient set` (settings.pki, settings.container-registry), not containerd's files".into()
                }
                _ => format!(
                    "change {registries_file} (or the config template), not config.toml or certs.d, then restart {name}"
                ),
            },
            command: None,
        });
    }
    Some(Finding {
        cause: CauseCode::ConfigManaged,
        severity: Severity::Info,
        summary,
        evidence: owner
            .evidence()
            .iter()
            .map(|e| Evidence {
                label: "owner".into(),
                value: e.clone(),
            })
            .collect(),
        remedies,
    })
}

#[cfg(test)]
mod tests;
