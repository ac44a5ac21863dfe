//! Clocks: Lamport and vector clocks as library types, and clock synchronisation protocols
//! (Cristian's NTP-style probing and Berkeley averaging) measured against true time.

pub mod lamport;
pub mod vector;

use crate::spec::ProtocolEntry;

/// The scenario-runnable configurations of this protocol family.
pub fn entries() -> Vec<ProtocolEntry> {
    Vec::new()
}
