//! clocks (stub: filled in by the protocol work).

use crate::spec::ProtocolEntry;

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    Vec::new()
}
