//! Readers, one per family of formats. Each turns a file into layers loaded in staging tables.

pub mod csv;
pub mod detect;
