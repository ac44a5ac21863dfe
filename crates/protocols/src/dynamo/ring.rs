//! Consistent hashing with virtual nodes (Dynamo §4.2): each server owns several points (tokens) on a
//! 64-bit ring; a key is stored on the first N distinct servers met walking clockwise from the key's
//! hash (its preference list), and the servers after those are the fallbacks a sloppy quorum uses.

use detsim_core::{NodeId, Value};

/// FNV-1a over bytes, then a SplitMix64 finaliser: stable on every platform and Rust version (unlike
/// `std::hash`), so a seed places keys the same way everywhere.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The ring: tokens sorted by position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    tokens: Vec<(u64, NodeId)>,
    servers: usize,
}

impl Ring {
    /// A ring of `servers` with `vnodes` tokens each.
    pub fn new(servers: &[NodeId], vnodes: usize) -> Self {
        assert!(!servers.is_empty(), "a ring needs servers");
        assert!(vnodes >= 1, "each server owns at least one token");
        let mut tokens: Vec<(u64, NodeId)> = servers
            .iter()
            .flat_map(|s| (0..vnodes).map(move |v| (stable_hash(format!("server-{}-vnode-{v}", s.0).as_bytes()), *s)))
            .collect();
        tokens.sort();
        Ring { tokens, servers: servers.len() }
    }

    /// Every server, in preference order for `key`: the first N are its replicas.
    pub fn preference_list(&self, key: &Value) -> Vec<NodeId> {
        let position = stable_hash(key.to_string().as_bytes());
        let start = self.tokens.partition_point(|(token, _)| *token < position);
        let mut list: Vec<NodeId> = Vec::with_capacity(self.servers);
        for i in 0..self.tokens.len() {
            let (_, server) = self.tokens[(start + i) % self.tokens.len()];
            if !list.contains(&server) {
                list.push(server);
                if list.len() == self.servers {
                    break;
                }
            }
        }
        assert_eq!(list.len(), self.servers, "the walk meets every server");
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_lists_hold_every_server_once_and_spread_keys() {
        let servers: Vec<NodeId> = (0..5).map(NodeId).collect();
        let ring = Ring::new(&servers, 8);
        let mut first_counts = [0usize; 5];
        for key in 0..200 {
            let list = ring.preference_list(&Value::Int(key));
            let mut sorted = list.clone();
            sorted.sort();
            assert_eq!(sorted, servers);
            first_counts[list[0].index()] += 1;
        }
        // Virtual nodes spread the keys: every server coordinates a fair share.
        assert!(first_counts.iter().all(|c| *c >= 15), "{first_counts:?}");
        assert_eq!(ring.preference_list(&Value::Int(3)), ring.preference_list(&Value::Int(3)));
    }
}
