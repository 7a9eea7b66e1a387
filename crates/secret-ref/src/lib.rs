//! 1Password secret references (being written).
