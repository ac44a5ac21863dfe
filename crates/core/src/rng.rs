//! Seeded randomness: one pinned algorithm (ChaCha8) and independent derived streams, so that adding a
//! node, a link or a fault does not reshuffle the random draws of everything else.
//!
//! Every stream is ChaCha8 keyed by the run seed, with ChaCha's 64-bit stream number chosen by what the
//! stream is for: `(purpose << 56) | index`. Two streams never share key and stream number, so their
//! outputs are independent; a node's stream depends only on the run seed and that node's index.
//!
//! Links are the one exception made for speed and memory: a simulation of 10,000 gossiping nodes uses
//! about a million directed links, and a ChaCha8 generator with its block buffer is ~330 bytes. So a
//! link's stream is a pinned SplitMix64 (8 bytes) whose seed is the first draw of the link's own ChaCha8
//! stream: still derived from the run seed and the link alone, independent of every other link.

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

/// The small, fast generator of one directed link.
pub type LinkRng = rand_xoshiro::SplitMix64;

/// The stream of the directed link `from -> to` (node indexes below 2^28 each).
pub fn link_stream(seed: u64, from: u32, to: u32) -> LinkRng {
    assert!(from < (1 << 28) && to < (1 << 28), "node index out of range for link streams");
    let mut root = derive_stream(seed, StreamPurpose::Link, ((from as u64) << 28) | to as u64);
    LinkRng::seed_from_u64(rand::Rng::next_u64(&mut root))
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
        assert_ne!(first_draws(link_stream(1, 0, 1)), first_draws(link_stream(1, 1, 0)));
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
