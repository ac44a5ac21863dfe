//! The shard map of the sharded KV: keys hash to a fixed number of shards, shards are assigned to
//! servers round robin. Clients route each request by the map; servers refuse keys of shards they
//! do not own. More servers means fewer shards each, so throughput grows with the shard count
//! (the "scale out by partitioning" of Kleppmann, *Designing Data-Intensive Applications*, ch. 6).

use super::msg::Key;
use detsim_core::NodeId;

/// Which server owns each shard.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShardMap {
    owners: Vec<NodeId>,
}

impl ShardMap {
    /// `shards` shards spread round robin over `servers`.
    pub fn round_robin(shards: usize, servers: &[NodeId]) -> Self {
        assert!(shards > 0, "at least one shard");
        assert!(!servers.is_empty(), "at least one server");
        ShardMap { owners: (0..shards).map(|s| servers[s % servers.len()]).collect() }
    }

    pub fn shard_count(&self) -> usize {
        self.owners.len()
    }

    /// The shard of `key`: a fixed hash (splitmix64's finaliser), so that neighbouring keys spread.
    pub fn shard_of(&self, key: Key) -> usize {
        let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % self.owners.len() as u64) as usize
    }

    /// The server that owns `key`.
    pub fn owner(&self, key: Key) -> NodeId {
        self.owners[self.shard_of(key)]
    }
}
