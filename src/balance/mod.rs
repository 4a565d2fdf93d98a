//! Server selection (filled in by the balance work).
