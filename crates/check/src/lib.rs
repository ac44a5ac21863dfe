//! detsim-check: histories in, verdicts out. The checkers read histories only; they never see protocol code.
