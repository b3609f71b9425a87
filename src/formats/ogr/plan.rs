//! A layer's plan: what the GDAL reader learnt of a layer in the discovery pass (its table's columns and how
//! each OGR field is written), handed back to it for the load.

use serde::{Deserialize, Serialize};

use super::fields::FieldKind;
use crate::load::table::TableColumn;

/// A layer to import, as learned from the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerPlan {
    pub(super) index: usize,
    pub(super) table_name: String,
    pub(super) columns: Vec<TableColumn>,
    /// (OGR field index, how to write it) in column order.
    pub(super) fields: Vec<(i32, FieldKind)>,
    /// An integer field named cartodb_id whose values become the key.
    pub(super) id_field: Option<i32>,
}
