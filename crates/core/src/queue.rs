//! The event queue: a timing wheel in front of the current bucket (sorted) and a small heap, ordered
//! by (time, insertion sequence).
//!
//! A discrete-event scheduler never schedules into the past, and most events are due within a few
//! network latencies of now. So time is cut into buckets of `2^BUCKET_SHIFT` ns; a ring of
//! `RING_BUCKETS` buckets covers the next ~270 ms (a hashed timing wheel: Varghese and Lauck, "Hashed
//! and hierarchical timing wheels", SOSP 1987), and pushing there is an append to the bucket's `Vec`.
//! When the clock reaches a bucket, its events move into `current`: sorted once (cheaper than a
//! sift-down per event through a heap of the thousand events a busy bucket holds), beside a small
//! heap for the events pushed into that bucket afterwards; the two hand them out in (time, seq)
//! order. Events beyond the ring wait in an
//! overflow heap and enter the ring as it turns. With hundreds of thousands of messages in flight this
//! is several times faster than one big `BinaryHeap`, whose sift-downs touch a new cache line at every
//! level; with few events it costs a bitmap scan, and a push into an empty queue goes straight to
//! `current`'s heap (the wheel turns to its bucket at once).
//!
//! Ties: `seq` is assigned on push and is part of the key, so events with the same time come out in
//! the order they were pushed, wherever they waited.
//!
//! Items wait in a slab and only their keys (time, seq, slab index, hint: 24 bytes) move through
//! the ring and the heaps: a simulator's event can be a hundred bytes or more (a message with its
//! envelope), and moving it into a bucket, into the heap and along every sift path cost more than
//! the ordering. A bucket is a `Vec` of keys, so turning the wheel reads them in a row. (Buckets
//! threaded through the slab as lists cost less with few events per bucket, but with 10,000 nodes
//! following the list missed the cache at every link: broadcast-10000 ran about 0.7x as fast.)
//!
//! Each pop starts loading the next item's slab entry and tells the caller what the next two items
//! will touch (the simulator passes the destination node as the
//! hint and starts loading those nodes), so that with thousands of nodes the memory latency of the
//! next events overlaps the handling of this one. These are cache hints only: no order changes.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Width of a bucket: 2^16 ns = 65.5 µs.
const BUCKET_SHIFT: u32 = 16;
/// Buckets in the ring (a power of two): 4096 × 65.5 µs ≈ 268 ms ahead of now.
const RING_BUCKETS: u64 = 4096;
const RING_WORDS: usize = (RING_BUCKETS / 64) as usize;

/// The key of one queued item: where it comes in the order, where it waits in the slab, and the
/// caller's hint (what the item will touch), which fills the key's padding.
#[derive(Clone, Copy)]
struct Key {
    time: u64,
    seq: u64,
    slot: u32,
    hint: u32,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// The events of the buckets up to the cursor: the bucket last turned to, sorted once when the wheel
/// reached it (a sort of a thousand keys costs less than a thousand sift-downs through a heap of
/// them), and a small heap for events pushed into that bucket or earlier afterwards (rare: they are
/// due within one bucket width of now, or the queue was empty).
struct Current {
    /// Sorted latest first, so the next one is at the end.
    sorted: Vec<Key>,
    late: BinaryHeap<Reverse<Key>>,
}

impl Current {
    fn is_empty(&self) -> bool {
        self.sorted.is_empty() && self.late.is_empty()
    }

    fn push(&mut self, key: Key) {
        self.late.push(Reverse(key));
    }

    /// Takes a bucket's keys (leaving `keys` an empty buffer to reuse); `self` must be empty.
    fn load(&mut self, keys: &mut Vec<Key>) {
        debug_assert!(self.sorted.is_empty());
        std::mem::swap(&mut self.sorted, keys);
        self.sorted.sort_unstable_by(|a, b| b.cmp(a));
    }

    fn peek(&self) -> Option<&Key> {
        match (self.sorted.last(), self.late.peek()) {
            (Some(sorted), Some(Reverse(late))) => Some(if late < sorted { late } else { sorted }),
            (sorted, late) => sorted.or(late.map(|Reverse(key)| key)),
        }
    }

    fn pop(&mut self) -> Option<Key> {
        let late_first = match (self.sorted.last(), self.late.peek()) {
            (Some(sorted), Some(Reverse(late))) => late < sorted,
            (None, _) => true,
            (Some(_), None) => false,
        };
        if late_first {
            self.late.pop().map(|Reverse(key)| key)
        } else {
            self.sorted.pop()
        }
    }

    /// The next key and the one after it.
    fn next_two(&self) -> [Option<&Key>; 2] {
        // The two smallest are among the sorted list's last two and the heap's top and its children.
        let sorted = self.sorted.iter().rev().take(2);
        let late = self.late.as_slice().iter().take(3).map(|Reverse(key)| key);
        let (mut first, mut second): (Option<&Key>, Option<&Key>) = (None, None);
        for key in sorted.chain(late) {
            if first.is_none_or(|f| key < f) {
                second = first;
                first = Some(key);
            } else if second.is_none_or(|s| key < s) {
                second = Some(key);
            }
        }
        [first, second]
    }
}

/// A priority queue of `T` keyed by `(time, seq)` for times that never precede the last pop.
pub(crate) struct EventQueue<T> {
    /// The time of the last pop: nothing may be pushed before it.
    floor_time: u64,
    /// The bucket number (time >> BUCKET_SHIFT) that `current` stands for; every event of an
    /// earlier or equal bucket is in `current`, every later one in the ring or the overflow.
    cursor: u64,
    /// The events of buckets up to `cursor`.
    current: Current,
    /// `ring[b % RING_BUCKETS]` holds the keys of bucket `b` (in no particular order), for
    /// `cursor < b < cursor + RING_BUCKETS`.
    ring: Vec<Vec<Key>>,
    /// A bit per non-empty ring slot.
    occupied: [u64; RING_WORDS],
    /// Events of buckets at or beyond `cursor + RING_BUCKETS`.
    overflow: BinaryHeap<Reverse<Key>>,
    /// The queued items, by `Key::slot`; `None` marks a free slot.
    slab: Vec<Option<T>>,
    /// Free slots of `slab`, reused last-freed first (warm in cache).
    free_slots: Vec<u32>,
    len: usize,
    next_seq: u64,
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        EventQueue {
            floor_time: 0,
            cursor: 0,
            current: Current { sorted: Vec::new(), late: BinaryHeap::new() },
            ring: (0..RING_BUCKETS).map(|_| Vec::new()).collect(),
            occupied: [0; RING_WORDS],
            overflow: BinaryHeap::new(),
            slab: Vec::new(),
            free_slots: Vec::new(),
            len: 0,
            next_seq: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Queues `item` at `time`, after everything already queued at the same time. `hint` comes back
    /// from [`EventQueue::pop_with_hints`] while the item is one of the next two.
    pub(crate) fn push(&mut self, time: u64, hint: u32, item: T) {
        assert!(time >= self.floor_time, "an event scheduled in the past ({time} < {})", self.floor_time);
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.len == 0 {
            // Nothing queued anywhere: turn the wheel straight to this event's bucket, so it goes
            // into `current` at once instead of into the ring and out again (a request/response
            // exchange with one message in flight never touches the ring).
            debug_assert!(self.current.is_empty() && self.overflow.is_empty());
            self.cursor = self.cursor.max(time >> BUCKET_SHIFT);
        }
        self.len += 1;
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                debug_assert!(self.slab[slot as usize].is_none(), "a free slot is empty");
                self.slab[slot as usize] = Some(item);
                slot
            }
            None => {
                self.slab.push(Some(item));
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 events queued")
            }
        };
        self.place(Key { time, seq, slot, hint });
    }

    /// The time of the next event, if any.
    pub(crate) fn peek_time(&mut self) -> Option<u64> {
        self.fill_current();
        self.current.peek().map(|key| key.time)
    }

    /// Removes the next event: the earliest time, and among equal times the first pushed.
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<(u64, T)> {
        self.pop_with_hints().map(|(time, item, _)| (time, item))
    }

    /// [`EventQueue::pop`], with the hints of the next two items as far as they are known without
    /// turning the wheel. It starts loading the next item's slab entry, so that its memory latency
    /// overlaps the caller's work on this one.
    pub(crate) fn pop_with_hints(&mut self) -> Option<(u64, T, [Option<u32>; 2])> {
        self.fill_current();
        let key = self.current.pop()?;
        self.len -= 1;
        debug_assert!(key.time >= self.floor_time, "time never goes backwards");
        self.floor_time = key.time;
        let item = self.slab[key.slot as usize].take().expect("a queued key's slot holds its item");
        self.free_slots.push(key.slot);
        let upcoming = self.current.next_two();
        if let Some(next) = upcoming[0] {
            crate::prefetch::prefetch(&self.slab[next.slot as usize]);
        }
        Some((key.time, item, upcoming.map(|key| key.map(|key| key.hint))))
    }

    /// The hints [`EventQueue::pop_with_hints`] would give now.
    #[cfg(test)]
    fn peek_hints(&self) -> [Option<u32>; 2] {
        self.current.next_two().map(|key| key.map(|key| key.hint))
    }

    fn place(&mut self, key: Key) {
        let bucket = key.time >> BUCKET_SHIFT;
        if bucket <= self.cursor {
            self.current.push(key);
        } else if bucket - self.cursor < RING_BUCKETS {
            let slot = (bucket % RING_BUCKETS) as usize;
            self.ring[slot].push(key);
            self.occupied[slot / 64] |= 1 << (slot % 64);
        } else {
            self.overflow.push(Reverse(key));
        }
    }

    /// When `current` is empty, turns the wheel to the next bucket that holds events and moves
    /// them into `current`.
    fn fill_current(&mut self) {
        while self.current.is_empty() {
            let next = match self.next_occupied_bucket() {
                Some(bucket) => bucket,
                None => match self.overflow.peek() {
                    // The ring is empty: jump straight to the overflow's first bucket.
                    Some(Reverse(first)) => first.time >> BUCKET_SHIFT,
                    None => return,
                },
            };
            debug_assert!(next > self.cursor);
            self.cursor = next;
            let slot = (next % RING_BUCKETS) as usize;
            if self.occupied[slot / 64] & (1 << (slot % 64)) != 0 {
                self.occupied[slot / 64] &= !(1 << (slot % 64));
                // The slot gets the empty buffer back, so a steady state allocates nothing.
                self.current.load(&mut self.ring[slot]);
            }
            // The ring now reaches one bucket further per bucket turned: admit what came in range.
            while let Some(Reverse(first)) = self.overflow.peek() {
                let bucket = first.time >> BUCKET_SHIFT;
                if bucket - self.cursor >= RING_BUCKETS {
                    break;
                }
                let Reverse(key) = self.overflow.pop().expect("peeked");
                self.place(key);
            }
        }
    }

    /// The first bucket after `cursor` whose ring slot holds events.
    fn next_occupied_bucket(&self) -> Option<u64> {
        let start = ((self.cursor + 1) % RING_BUCKETS) as usize;
        // Scan the bitmap from `start` round the ring once.
        for step in 0..=RING_WORDS {
            let word_index = (start / 64 + step) % RING_WORDS;
            let mut word = self.occupied[word_index];
            if step == 0 {
                word &= !0u64 << (start % 64);
            } else if step == RING_WORDS {
                word &= !(!0u64 << (start % 64));
            }
            if word != 0 {
                let slot = (word_index * 64 + word.trailing_zeros() as usize) as u64;
                let ahead = (slot + RING_BUCKETS - start as u64) % RING_BUCKETS;
                return Some(self.cursor + 1 + ahead);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hints_name_the_next_two_items() {
        let mut queue = EventQueue::new();
        for (time, hint) in [(30u64, 3u32), (10, 1), (50, 5), (20, 2), (40, 4)] {
            queue.push(time, hint, hint);
        }
        let mut seen = Vec::new();
        while queue.peek_time().is_some() {
            let hints = queue.peek_hints();
            let (_, item) = queue.pop().expect("peeked");
            assert_eq!(hints[0], Some(item), "the first hint is the next item's");
            seen.push((item, hints[1]));
        }
        // The second hint is the item after the next one, once both are in the heap.
        assert_eq!(seen, vec![(1, Some(2)), (2, Some(3)), (3, Some(4)), (4, Some(5)), (5, None)]);
    }

    #[test]
    fn equal_times_pop_in_insertion_order() {
        let mut queue = EventQueue::new();
        for (i, time) in [5u64, 3, 5, 3, 9, 5].into_iter().enumerate() {
            queue.push(time, 0, i);
        }
        let order: Vec<(u64, usize)> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, vec![(3, 1), (3, 3), (5, 0), (5, 2), (5, 5), (9, 4)]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn far_future_events_wait_in_the_overflow_and_come_back_in_order() {
        let mut queue = EventQueue::new();
        let hour_ns = 3_600_000_000_000u64;
        queue.push(hour_ns, 0, "late");
        queue.push(hour_ns, 0, "late, second");
        queue.push(1, 0, "soon");
        queue.push(RING_BUCKETS << BUCKET_SHIFT, 0, "just past the ring");
        assert_eq!(queue.pop(), Some((1, "soon")));
        assert_eq!(queue.peek_time(), Some(RING_BUCKETS << BUCKET_SHIFT));
        // Pushed after the peek moved the wheel on, but not before the last pop: still in order.
        queue.push(2, 0, "between");
        assert_eq!(queue.pop(), Some((2, "between")));
        assert_eq!(queue.pop(), Some((RING_BUCKETS << BUCKET_SHIFT, "just past the ring")));
        assert_eq!(queue.pop(), Some((hour_ns, "late")));
        assert_eq!(queue.pop(), Some((hour_ns, "late, second")));
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn a_push_into_an_empty_queue_turns_the_wheel_and_later_pushes_still_order() {
        let mut queue = EventQueue::new();
        queue.push(5, 0, "first");
        assert_eq!(queue.pop(), Some((5, "first")));
        // Empty: the wheel jumps to this far event's bucket...
        let far = 10 * (RING_BUCKETS << BUCKET_SHIFT);
        queue.push(far, 0, "far");
        // ...and events pushed afterwards, earlier than it or in the ring beyond it, keep their order.
        queue.push(far + (3 << BUCKET_SHIFT), 0, "ring after far");
        queue.push(6, 0, "earlier than far");
        queue.push(far, 0, "far, second");
        queue.push(far + 100 * (RING_BUCKETS << BUCKET_SHIFT), 0, "overflow");
        let order: Vec<&str> = std::iter::from_fn(|| queue.pop()).map(|(_, item)| item).collect();
        assert_eq!(order, ["earlier than far", "far", "far, second", "ring after far", "overflow"]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    #[should_panic(expected = "in the past")]
    fn pushing_into_the_past_is_a_bug() {
        let mut queue = EventQueue::new();
        queue.push(10, 0, ());
        queue.pop();
        queue.push(9, 0, ());
    }

    proptest! {
        /// Interleaved pushes, peeks and pops come out exactly as from a binary heap on (time, seq).
        #[test]
        fn matches_a_binary_heap(steps in proptest::collection::vec((any::<bool>(), 0u64..1 << 40, 0u8..5), 1..400)) {
            let mut queue = EventQueue::new();
            let mut reference = BinaryHeap::new();
            let mut seq = 0u64;
            let mut now = 0u64;
            for (pop, delay, shape) in steps {
                if pop {
                    let expected = reference.pop().map(|Reverse((t, s))| (t, s));
                    let popped = queue.pop_with_hints();
                    if let Some((_, _, hints)) = popped {
                        prop_assert_eq!(hints, queue.peek_hints());
                    }
                    let got = popped.map(|(time, item, _)| (time, item));
                    prop_assert_eq!(got, expected);
                    if let Some((t, _)) = got {
                        now = t;
                    }
                } else {
                    // Same time, same bucket, a few buckets on, round the ring, and far beyond it.
                    let time = match shape {
                        0 => now,
                        1 => now + delay % 8,
                        2 => now + delay % (1 << 22),
                        3 => now + delay % (1 << 30),
                        _ => now + delay,
                    };
                    queue.push(time, seq as u32, seq);
                    reference.push(Reverse((time, seq)));
                    seq += 1;
                }
                prop_assert_eq!(queue.len(), reference.len());
                prop_assert_eq!(queue.peek_time(), reference.peek().map(|Reverse((t, _))| *t));
                // Once the next event is known, the hints name it and, when known, the one after.
                let mut order: Vec<(u64, u64)> = reference.iter().map(|Reverse(key)| *key).collect();
                order.sort_unstable();
                let [next, after] = queue.peek_hints();
                prop_assert_eq!(next, order.first().map(|&(_, s)| s as u32));
                if after.is_some() {
                    prop_assert_eq!(after, order.get(1).map(|&(_, s)| s as u32));
                }
            }
        }
    }
}
