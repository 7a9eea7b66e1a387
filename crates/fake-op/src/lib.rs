//! fake-op (being written).
