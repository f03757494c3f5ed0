//! What the guard's tests share: a lookup that asks a DNS server of the
//! test's own (dnsmasq), plugged into the guard in place of the system's.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Looks names up by asking one DNS server, as the guard's replaceable lookup.
pub struct AskServer(TokioResolver);

impl AskServer {
    pub fn new(server: SocketAddr) -> Arc<Self> {
        let mut config = NameServerConfig::udp_and_tcp(server.ip());
        for connection in &mut config.connections {
            connection.port = server.port();
        }
        let mut builder = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![config]),
            TokioRuntimeProvider::default(),
        );
        builder.options_mut().cache_size = 0;
        Arc::new(Self(builder.build().unwrap()))
    }
}

impl Resolve for AskServer {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.0.clone();
        Box::pin(async move {
            let found = resolver.lookup_ip(name.as_str()).await?;
            let addrs: Vec<SocketAddr> = found.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
