//! The second pass of every text source (CSV, JSON, spreadsheets): the table planned from the first pass's
//! scan, created as a staging table and filled by the source's own encoder.

use tokio::sync::mpsc;

use super::plan::{GuessOptions, TablePlan, plan};
use super::scan::Scan;
use crate::errors::ImportError;
use crate::load::copy::EncodeStats;
use crate::load::table::StagingTable;
use crate::load::{LoadContext, LoadedLayer, Stage, load_into_staging};

/// The table for what the scan saw, with the job's guessing options. `quoted` says which columns had
/// quoted values; `features`, whether the rows are features with a geometry of their own.
pub fn plan_for(ctx: &LoadContext<'_>, scan: &Scan, quoted: &[bool], features: bool) -> TablePlan {
    let options = GuessOptions { type_guessing: ctx.type_guessing, quoted_fields_guessing: ctx.quoted_fields_guessing };
    plan(scan, quoted, options, features)
}

/// Loads the table `plan` describes into staging table `index` with `encode` (run on a blocking thread with
/// the plan), as the layer `table_name`.
pub async fn load_planned<F>(
    ctx: &LoadContext<'_>,
    plan: TablePlan,
    index: usize,
    table_name: String,
    encode: F,
) -> Result<LoadedLayer, ImportError>
where
    F: FnOnce(&TablePlan, mpsc::Sender<Vec<u8>>) -> Result<EncodeStats, ImportError> + Send + 'static,
{
    (ctx.report)(Stage::Importing);
    let staging = StagingTable::new(ctx.job_id, ctx.attempt, index, plan.columns.clone());
    let encode_plan = plan.clone();
    let loaded = load_into_staging(ctx, &staging, move |chunks| encode(&encode_plan, chunks)).await?;
    Ok(plan.layer(loaded, staging, table_name))
}
