//! Client workloads shared by every storage protocol (stub, filled in by the workload work).
