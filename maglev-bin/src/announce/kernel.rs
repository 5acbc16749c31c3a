//! maglevd's kernel routing table (`maglev.announce.table`), through
//! netlink: one blackhole route per announced VIP prefix, marked with
//! maglevd's route protocol number, optionally in another network
//! namespace (where the routing daemon runs).

use std::collections::BTreeSet;

use async_trait::async_trait;
use maglev_core::announce::Prefix;
use maglev_core::config::AnnounceConfig;

use super::table::{RouteError, RouteTable};

/// A kernel routing table holding maglevd's routes.
#[derive(Debug)]
pub struct KernelTable {
    table: u32,
    protocol: u8,
    netns: Option<String>,
}

impl KernelTable {
    /// Opens a netlink connection to the table `config` names (in its
    /// network namespace, if any).
    pub async fn open(config: &AnnounceConfig) -> Result<KernelTable, RouteError> {
        // SKELETON: the netlink implementation lands with issue 26.
        let t = KernelTable {
            table: config.table,
            protocol: config.protocol,
            netns: config.netns.clone(),
        };
        Err(RouteError {
            table: t.describe(),
            action: "open".to_owned(),
            message: "not implemented yet".to_owned(),
        })
    }
}

#[async_trait]
impl RouteTable for KernelTable {
    fn describe(&self) -> String {
        match &self.netns {
            Some(ns) => format!(
                "kernel table {} (protocol {}) in netns {ns}",
                self.table, self.protocol
            ),
            None => format!("kernel table {} (protocol {})", self.table, self.protocol),
        }
    }

    fn in_memory(&self) -> bool {
        false
    }

    async fn list(&self) -> Result<BTreeSet<Prefix>, RouteError> {
        unimplemented_yet(self, "list")
    }

    async fn add(&self, prefix: Prefix) -> Result<(), RouteError> {
        unimplemented_yet(self, &format!("add {prefix}"))
    }

    async fn remove(&self, prefix: Prefix) -> Result<(), RouteError> {
        unimplemented_yet(self, &format!("remove {prefix}"))
    }
}

fn unimplemented_yet<T>(t: &KernelTable, action: &str) -> Result<T, RouteError> {
    Err(RouteError {
        table: t.describe(),
        action: action.to_owned(),
        message: "not implemented yet".to_owned(),
    })
}
