//! Seeded randomness: one pinned algorithm (ChaCha8) and independent derived streams, so that adding a
//! node, a link or a fault does not reshuffle the random draws of everything else.
//!
//! Every stream is ChaCha8 keyed by the run seed, with ChaCha's 64-bit stream number chosen by what the
//! stream is for: `(purpose << 56) | index`. Two streams never share key and stream number, so their
//! outputs are independent; a node's stream depends only on the run seed and that node's index.
//!
//! Links are the one exception made for speed and memory: a simulation of 10,000 gossiping nodes sends
//! over millions of directed links, and a ChaCha8 generator per link (~330 bytes, and a key schedule
//! to set up) would dominate the run. So the draws for one message (loss, latency, duplication,
//! corruption) come from a pinned SplitMix64 seeded by a keyed mix of the run's link key (one ChaCha8
//! draw), the link `(from, to)` and the sender's own send counter. No per-link state is kept (FIFO
//! links keep only their last delivery time); the draws of a link depend on the run seed, the link
//! and how many messages its sender has sent, never on other nodes, so adding an unrelated node or
//! a fault elsewhere changes nothing on it.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The PRNG every part of a simulation draws from.
pub type SimRng = ChaCha8Rng;

/// What a derived stream is for. The discriminant is part of the stream number: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamPurpose {
    /// A node's own draws (`ctx.rng()`).
    Node = 1,
    /// A directed link's draws: latency, loss, duplication, corruption.
    Link = 2,
    /// The random nemesis that schedules faults.
    Nemesis = 3,
    /// The scheduler's own draws (none yet; reserved).
    Scheduler = 4,
    /// Workload generators outside nodes (scenario layer).
    Workload = 5,
    /// Swarm mode: scenario knobs drawn from the seed.
    Swarm = 6,
}

/// Expands a 64-bit run seed into a 256-bit ChaCha key (splitmix64, pinned here so the mapping never
/// changes under us).
fn seed_key(seed: u64) -> [u8; 32] {
    let mut state = seed;
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
    key
}

/// The stream for `purpose` number `index` of the run with `seed`.
pub fn derive_stream(seed: u64, purpose: StreamPurpose, index: u64) -> SimRng {
    assert!(index < (1 << 56), "stream index out of range");
    let mut rng = ChaCha8Rng::from_seed(seed_key(seed));
    rng.set_stream(((purpose as u64) << 56) | index);
    rng
}

/// The small, fast generator of the draws for one message.
pub type LinkRng = rand_xoshiro::SplitMix64;

/// The key all message draws of the run with `seed` are derived from.
pub fn link_key(seed: u64) -> u64 {
    rand::Rng::next_u64(&mut derive_stream(seed, StreamPurpose::Link, 0))
}

/// The splitmix64 finalizer: a pinned bijective mix of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for the message that `from` sends to `to` as its `send_seq`-th send (counting
/// from 0, every destination), in the run whose [`link_key`] is `key`.
pub fn message_stream(key: u64, from: u32, to: u32, send_seq: u64) -> LinkRng {
    let link = ((from as u64) << 32) | to as u64;
    let state = mix64(mix64(key ^ mix64(link)) ^ send_seq);
    LinkRng::seed_from_u64(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn first_draws(mut rng: impl Rng) -> Vec<u64> {
        (0..4).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn same_seed_and_stream_give_the_same_draws() {
        let a = first_draws(derive_stream(7, StreamPurpose::Node, 3));
        let b = first_draws(derive_stream(7, StreamPurpose::Node, 3));
        assert_eq!(a, b);
    }

    #[test]
    fn streams_differ_by_seed_purpose_and_index() {
        let base = first_draws(derive_stream(7, StreamPurpose::Node, 3));
        assert_ne!(base, first_draws(derive_stream(8, StreamPurpose::Node, 3)));
        assert_ne!(base, first_draws(derive_stream(7, StreamPurpose::Link, 3)));
        assert_ne!(base, first_draws(derive_stream(7, StreamPurpose::Node, 4)));
        let key = link_key(1);
        assert_ne!(key, link_key(2));
        let message = first_draws(message_stream(key, 0, 1, 0));
        assert_eq!(message, first_draws(message_stream(key, 0, 1, 0)));
        assert_ne!(message, first_draws(message_stream(key, 1, 0, 0)));
        assert_ne!(message, first_draws(message_stream(key, 0, 1, 1)));
        assert_ne!(message, first_draws(message_stream(link_key(2), 0, 1, 0)));
    }

    #[test]
    fn pinned_first_draw_never_changes() {
        // Guards the promise "same seed, same trace" across dependency upgrades: if rand_chacha ever
        // changed its output, every golden trace hash would silently change with it.
        let mut rng = derive_stream(42, StreamPurpose::Node, 0);
        let draw = rng.next_u64();
        let again = derive_stream(42, StreamPurpose::Node, 0).next_u64();
        assert_eq!(draw, again);
        assert_eq!(draw, PINNED_DRAW_SEED42_NODE0, "ChaCha8 output changed: trace hashes would too");
    }

    const PINNED_DRAW_SEED42_NODE0: u64 = 17974764098049298272;
}
