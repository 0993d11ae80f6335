//! What containerd really loaded, as its Introspection service tells it: each plugin
//! with the error that stopped it, and the deprecated features the running process has
//! seen in use (`Server().deprecations`, containerd 1.6.25+, 1.7.9+ and 2.x).
//!
//! This is containerd's own word, so it beats every inference: a CRI plugin that
//! refused its configuration says why here, where the CRI API can only answer
//! `unknown service runtime.v1.ImageService`.

use crate::cause::CauseCode;

/// The plugin types that make up CRI: `io.containerd.grpc.v1` / `cri` (the service the
/// kubelet calls; 1.x holds all of CRI in it) and, from 2.0, `io.containerd.cri.v1`
/// (`images`, `runtime`), which the service needs.
const CRI_PLUGINS: &[(&str, Option<&str>)] = &[
    ("io.containerd.grpc.v1", Some("cri")),
    ("io.containerd.cri.v1", None),
];

/// The prefix of containerd's deprecation ids.
const DEPRECATION_PREFIX: &str = "io.containerd.deprecation/";

/// containerd's Introspection answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub plugins: Vec<PluginState>,
    pub deprecations: Vec<Deprecation>,
    /// containerd's process id (`Server().pid`): tells whether it restarted.
    pub pid: Option<u64>,
}

/// One plugin as containerd registered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginState {
    /// `io.containerd.grpc.v1`.
    pub kind: String,
    /// `cri`.
    pub id: String,
    /// Why it did not initialise (`init_err`); `None`: it runs.
    pub init_error: Option<String>,
}

impl PluginState {
    /// `io.containerd.grpc.v1.cri`, as containerd's log and `ctr plugins ls` name it.
    pub fn name(&self) -> String {
        format!("{}.{}", self.kind, self.id)
    }

    fn is_cri(&self) -> bool {
        CRI_PLUGINS
            .iter()
            .any(|(kind, id)| self.kind == *kind && id.is_none_or(|id| self.id == id))
    }

    /// containerd skips some plugins on purpose (`skip plugin: ...`, the platform or
    /// the configuration does not call for them); that is not a failure.
    fn failed(&self) -> Option<&str> {
        self.init_error
            .as_deref()
            .filter(|e| !e.starts_with("skip plugin"))
    }
}

/// A deprecated feature containerd saw in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// `io.containerd.deprecation/cri-registry-configs`.
    pub id: String,
    /// containerd's own explanation.
    pub message: String,
}

impl Deprecation {
    /// The id without containerd's prefix (`cri-registry-configs`).
    pub fn short_id(&self) -> &str {
        self.id.strip_prefix(DEPRECATION_PREFIX).unwrap_or(&self.id)
    }

    /// The config.toml setting this deprecation is about, when it is a registry one
    /// ctrdiag knows how to move.
    pub fn registry_setting(&self) -> Option<&'static str> {
        match self.short_id() {
            "cri-registry-mirrors" => Some("mirrors"),
            "cri-registry-configs" => Some("configs"),
            "cri-registry-auths" => Some("auths"),
            _ => None,
        }
    }

    /// What to do about it, in ctrdiag's terms where ctrdiag can do it.
    pub fn remedy(&self) -> String {
        match self.registry_setting() {
            Some("auths") => "move the credentials of `registry.auths` to \
                `registry.configs.\"HOST\".auth` or to the kubelet's image pull secrets; \
                `ctrdiag creds scan` lists where each registry's credentials are"
                .to_string(),
            Some(table) => format!(
                "move `registry.{table}` into hosts.toml files under `config_path`: a CA fix \
                 (`ctrdiag fix REGISTRY --ca FILE`) sets config_path and moves the legacy \
                 registry tables in the same change; `--dry-run` shows it first"
            ),
            None => format!(
                "follow containerd's advice above; `containerd config migrate` (2.x) rewrites \
                 a config file, and containerd's RELEASES.md lists {}",
                self.short_id()
            ),
        }
    }
}

/// What containerd's Introspection says is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadedFinding {
    /// A CRI plugin failed to initialise: the kubelet can neither pull nor run.
    CriFailed { plugin: String, error: String },
    /// No CRI plugin is registered at all: `disabled_plugins` names it, or the build has
    /// none (Docker's `containerd.io` package ships `disabled_plugins = ["cri"]`).
    CriMissing,
    /// A deprecated feature is in use.
    Deprecated(Deprecation),
}

impl LoadedFinding {
    pub fn cause(&self) -> CauseCode {
        match self {
            LoadedFinding::CriFailed { .. } | LoadedFinding::CriMissing => {
                CauseCode::CriUnavailable
            }
            LoadedFinding::Deprecated(_) => CauseCode::ConfigDeprecated,
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> String {
        match self {
            LoadedFinding::CriFailed { .. } => "correct the setting the error names;                 `ctrdiag diagnose REGISTRY` shows which registry tables conflict, and                 `ctrdiag changes` whether a ctrdiag change wrote it"
                .to_string(),
            LoadedFinding::CriMissing => "remove \"cri\" from `disabled_plugins` in                 config.toml and restart containerd (`ctrdiag restart-containerd`)"
                .to_string(),
            LoadedFinding::Deprecated(d) => d.remedy(),
        }
    }
}

impl std::fmt::Display for LoadedFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadedFinding::CriFailed { plugin, error } => {
                write!(f, "containerd's plugin {plugin} failed to load: {error}")
            }
            LoadedFinding::CriMissing => f.write_str(
                "containerd has no CRI plugin loaded: `disabled_plugins` in config.toml names \
                 it, or this containerd was built without it",
            ),
            LoadedFinding::Deprecated(d) => {
                write!(f, "containerd reports {}: {}", d.short_id(), d.message)
            }
        }
    }
}

/// Everything worth reporting in `loaded`: failed CRI plugins (or none at all), then
/// the deprecations in containerd's order.
pub fn loaded_findings(loaded: &Loaded) -> Vec<LoadedFinding> {
    let cri: Vec<&PluginState> = loaded.plugins.iter().filter(|p| p.is_cri()).collect();
    let mut out: Vec<LoadedFinding> = cri
        .iter()
        .filter_map(|p| {
            p.failed().map(|e| LoadedFinding::CriFailed {
                plugin: p.name(),
                error: e.to_string(),
            })
        })
        .collect();
    if cri.is_empty() && !loaded.plugins.is_empty() {
        out.push(LoadedFinding::CriMissing);
    }
    out.extend(
        loaded
            .deprecations
            .iter()
            .cloned()
            .map(LoadedFinding::Deprecated),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(kind: &str, id: &str, err: Option<&str>) -> PluginState {
        PluginState {
            kind: kind.into(),
            id: id.into(),
            init_error: err.map(str::to_string),
        }
    }

    fn snapshotter() -> PluginState {
        plugin("io.containerd.snapshotter.v1", "overlayfs", None)
    }

    #[test]
    fn a_cri_plugin_that_refused_its_config_is_named_with_its_error() {
        let loaded = Loaded {
            plugins: vec![
                snapshotter(),
                plugin(
                    "io.containerd.grpc.v1",
                    "cri",
                    Some(
                        "invalid plugin config: `mirrors` cannot be set when `config_path` is provided",
                    ),
                ),
            ],
            deprecations: vec![],
            pid: None,
        };
        let found = loaded_findings(&loaded);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].cause(), CauseCode::CriUnavailable);
        assert_eq!(
            found[0].to_string(),
            "containerd's plugin io.containerd.grpc.v1.cri failed to load: invalid plugin config: \
             `mirrors` cannot be set when `config_path` is provided"
        );
    }

    #[test]
    fn cri_2x_image_plugin_failures_count_and_skipped_plugins_do_not() {
        let loaded = Loaded {
            plugins: vec![
                plugin(
                    "io.containerd.cri.v1",
                    "images",
                    Some("bad registry config"),
                ),
                plugin(
                    "io.containerd.grpc.v1",
                    "cri",
                    Some("no plugins registered for io.containerd.cri.v1"),
                ),
                plugin(
                    "io.containerd.snapshotter.v1",
                    "btrfs",
                    Some("skip plugin: not a btrfs filesystem"),
                ),
                plugin("io.containerd.cri.v1", "runtime", None),
            ],
            deprecations: vec![],
            pid: None,
        };
        let names: Vec<String> = loaded_findings(&loaded)
            .iter()
            .map(|f| match f {
                LoadedFinding::CriFailed { plugin, .. } => plugin.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            ["io.containerd.cri.v1.images", "io.containerd.grpc.v1.cri"]
        );
    }

    #[test]
    fn a_containerd_without_any_cri_plugin_is_reported_but_an_empty_answer_is_not() {
        let without = Loaded {
            plugins: vec![snapshotter()],
            deprecations: vec![],
            pid: None,
        };
        assert_eq!(loaded_findings(&without), [LoadedFinding::CriMissing]);
        assert!(loaded_findings(&Loaded::default()).is_empty());
    }

    #[test]
    fn registry_deprecations_name_the_setting_and_ctrdiags_fix() {
        let d = |id: &str| Deprecation {
            id: format!("io.containerd.deprecation/{id}"),
            message: "deprecated".into(),
        };
        assert_eq!(
            d("cri-registry-mirrors").registry_setting(),
            Some("mirrors")
        );
        assert_eq!(
            d("cri-registry-configs").registry_setting(),
            Some("configs")
        );
        assert_eq!(d("cri-registry-auths").registry_setting(), Some("auths"));
        assert!(
            d("cri-registry-configs")
                .remedy()
                .contains("ctrdiag fix REGISTRY --ca FILE")
        );
        assert!(
            d("cri-registry-auths")
                .remedy()
                .contains("ctrdiag creds scan")
        );
        let other = d("pull-schema-1-image");
        assert_eq!(other.registry_setting(), None);
        assert_eq!(other.short_id(), "pull-schema-1-image");
        assert!(other.remedy().contains("pull-schema-1-image"));
        let found = loaded_findings(&Loaded {
            plugins: vec![],
            deprecations: vec![other.clone()],
            pid: None,
        });
        assert_eq!(found, [LoadedFinding::Deprecated(other)]);
        assert_eq!(found[0].cause(), CauseCode::ConfigDeprecated);
    }
}
