//! The message-id table of one connection.
//!
//! `sockclnt_create_reply` lists every message of the VPP process as
//! `<name>_<crc8>` with its runtime id. maglev resolves each message it
//! knows ([`MsgId::ALL`]) by that key: a missing key is a plugin not loaded
//! or a message whose definition changed (another CRC under the same name),
//! and either is reported, never guessed around (VPP-WIRE A.7).

use std::collections::HashMap;
use std::fmt;

use super::messages::MsgId;
use super::types::MessageTableEntry;

/// Why a message maglev uses cannot be used on this VPP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdProblem {
    /// The message.
    pub message: &'static str,
    /// The key maglev looked for.
    pub wanted: String,
    /// Keys VPP has for the same name (another CRC), if any.
    pub found: Vec<String>,
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.found.is_empty() {
            write!(f, "{} is missing (plugin not loaded?)", self.wanted)
        } else {
            write!(
                f,
                "{} has another definition: VPP has {} (CRC mismatch)",
                self.wanted,
                self.found.join(", ")
            )
        }
    }
}

/// The runtime ids of the known messages on one connection.
#[derive(Debug, Clone)]
pub struct MessageIds {
    ids: HashMap<MsgId, u16>,
    by_id: HashMap<u16, MsgId>,
}

impl MessageIds {
    /// Resolves every known message in `table`; the problems list the ones
    /// that cannot be used (empty when all resolved).
    pub fn resolve(table: &[MessageTableEntry]) -> (MessageIds, Vec<IdProblem>) {
        let by_key: HashMap<&str, u16> = table.iter().map(|e| (e.name.as_str(), e.index)).collect();
        let mut ids = HashMap::new();
        let mut by_id = HashMap::new();
        let mut problems = Vec::new();
        for &m in MsgId::ALL {
            let key = m.key();
            match by_key.get(key.as_str()) {
                Some(&id) => {
                    ids.insert(m, id);
                    by_id.insert(id, m);
                }
                None => {
                    let prefix = format!("{}_", m.name());
                    let mut found: Vec<String> = table
                        .iter()
                        .filter(|e| {
                            e.name.strip_prefix(&prefix).is_some_and(|crc| {
                                crc.len() == 8 && crc.bytes().all(|b| b.is_ascii_hexdigit())
                            })
                        })
                        .map(|e| e.name.clone())
                        .collect();
                    found.sort();
                    problems.push(IdProblem {
                        message: m.name(),
                        wanted: key,
                        found,
                    });
                }
            }
        }
        (MessageIds { ids, by_id }, problems)
    }

    /// The runtime id of `m`, if this VPP has it.
    pub fn get(&self, m: MsgId) -> Option<u16> {
        self.ids.get(&m).copied()
    }

    /// The known message with runtime id `id`.
    pub fn message(&self, id: u16) -> Option<MsgId> {
        self.by_id.get(&id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_missing_and_mismatched() {
        let mut table: Vec<MessageTableEntry> = MsgId::ALL
            .iter()
            .enumerate()
            .map(|(i, m)| MessageTableEntry {
                index: 100 + i as u16,
                name: m.key(),
            })
            .collect();
        let (ids, problems) = MessageIds::resolve(&table);
        assert!(problems.is_empty());
        assert_eq!(ids.get(MsgId::SockclntCreate), Some(100));
        assert_eq!(ids.message(101), Some(MsgId::SockclntCreateReply));
        table.retain(|e| !e.name.starts_with("lb_as_set_weight_2d"));
        table.push(MessageTableEntry {
            index: 7,
            name: "lb_as_set_weight_deadbeef".into(),
        });
        let (_, problems) = MessageIds::resolve(&table);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "lb_as_set_weight_2d89bdbd has another definition: VPP has lb_as_set_weight_deadbeef (CRC mismatch)"
        );
        table.retain(|e| !e.name.starts_with("lb_as_set_weight"));
        let (_, problems) = MessageIds::resolve(&table);
        assert_eq!(
            problems[0].to_string(),
            "lb_as_set_weight_2d89bdbd is missing (plugin not loaded?)"
        );
    }
}
