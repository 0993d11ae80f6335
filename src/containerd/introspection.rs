//! containerd's Introspection service: the plugins it registered, with each one's
//! init error, and the deprecations it has seen in use. Read-only, answered from
//! memory, so it costs nothing to ask after every restart.

use containerd_client::services::v1::PluginsRequest;
use containerd_client::services::v1::introspection_client::IntrospectionClient;

use super::{ContainerdClient, Result};
use crate::loaded::{Deprecation, Loaded, PluginState};

impl ContainerdClient {
    /// What containerd loaded (`Plugins`) and which deprecated features it saw
    /// (`Server`; an empty list on versions before 1.6.25 / 1.7.9, which do not report
    /// them).
    pub async fn loaded(&self) -> Result<Loaded> {
        self.check_socket()?;
        let mut client = IntrospectionClient::new(self.channel.clone());
        let plugins = client
            .plugins(self.request(PluginsRequest { filters: vec![] }))
            .await
            .map_err(|s| self.status_error("Introspection.Plugins", s))?
            .into_inner()
            .plugins;
        let server = client
            .server(self.request(()))
            .await
            .map_err(|s| self.status_error("Introspection.Server", s))?
            .into_inner();
        Ok(Loaded {
            pid: (server.pid != 0).then_some(server.pid),
            plugins: plugins
                .into_iter()
                .map(|p| PluginState {
                    kind: p.r#type,
                    id: p.id,
                    init_error: p.init_err.map(|e| e.message),
                })
                .collect(),
            deprecations: server
                .deprecations
                .into_iter()
                .map(|d| Deprecation {
                    id: d.id,
                    message: d.message,
                })
                .collect(),
        })
    }
}
