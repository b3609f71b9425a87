//! The raster constraints of `AddRasterConstraints` (as raster2pgsql's `-C -x` asks for them: SRID, scales,
//! block sizes, alignment, bands, pixel types, nodata values, out-db; no extent), which `raster_columns`
//! reads. PostGIS's function reads the table about twenty times (a query per constraint, then a check of
//! each as it is added); here the same constraints, written as PostGIS writes them, come from one look at
//! the first tile and one pass over the tiles' headers, and are checked together in one more.

use sqlx::{AssertSqlSafe, PgConnection};

use crate::db::{quote_ident, quote_literal};

/// What the constraints state, as PostgreSQL prints it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Facts {
    pub srid: i32,
    pub scale_x: f64,
    pub scale_y: f64,
    /// A 1 x 1 empty raster on the tiles' grid, as text (hex WKB).
    pub alignment: String,
    pub bands: i32,
    pub pixel_types: String,
    pub nodata_values: String,
    pub out_db: String,
    /// The tiles' widths and heights, the most common first.
    pub widths: String,
    pub heights: String,
}

/// Adds the constraints to `table` (qualified), whose raster column is `column`.
pub async fn add(conn: &mut PgConnection, table: &str, column: &str) -> Result<(), sqlx::Error> {
    let c = quote_ident(column);
    let facts: Option<Facts> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT ST_SRID({c}) srid, ST_ScaleX({c}) scale_x, ST_ScaleY({c}) scale_y, \
           ST_MakeEmptyRaster(1, 1, ST_UpperLeftX({c}), ST_UpperLeftY({c}), ST_ScaleX({c}), ST_ScaleY({c}), \
             ST_SkewX({c}), ST_SkewY({c}), ST_SRID({c}))::text alignment, \
           ST_NumBands({c}) bands, _raster_constraint_pixel_types({c})::text pixel_types, \
           _raster_constraint_nodata_values({c})::text nodata_values, _raster_constraint_out_db({c})::text out_db, \
           (SELECT string_agg(w::text, ',' ORDER BY n DESC, w DESC) \
              FROM (SELECT ST_Width({c}) w, count(*) n FROM {table} GROUP BY 1) s) widths, \
           (SELECT string_agg(h::text, ',' ORDER BY n DESC, h DESC) \
              FROM (SELECT ST_Height({c}) h, count(*) n FROM {table} GROUP BY 1) s) heights \
         FROM {table} WHERE {c} IS NOT NULL ORDER BY cartodb_id LIMIT 1"
    )))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(facts) = facts else { return Ok(()) };
    sqlx::query(AssertSqlSafe(statement(table, column, &facts))).execute(conn).await?;
    Ok(())
}

/// One ALTER TABLE adding every constraint, so that PostgreSQL checks them all in one pass.
fn statement(table: &str, column: &str, f: &Facts) -> String {
    let c = quote_ident(column);
    let name = |what: &str| quote_ident(&format!("enforce_{what}_{column}"));
    let widths = integers(&f.widths);
    let heights = integers(&f.heights);
    let checks = [
        ("srid", format!("st_srid({c}) = {}", f.srid)),
        // The scale as a bare number, as PostGIS writes it (raster_columns reads it back from the text).
        ("scalex", format!("round(st_scalex({c})::numeric, 10) = round({}::numeric, 10)", f.scale_x)),
        ("scaley", format!("round(st_scaley({c})::numeric, 10) = round({}::numeric, 10)", f.scale_y)),
        ("width", format!("st_width({c}) IN ({})", widths.join(","))),
        ("height", format!("st_height({c}) IN ({})", heights.join(","))),
        ("same_alignment", format!("st_samealignment({c}, {}::raster)", quote_literal(&f.alignment))),
        ("num_bands", format!("st_numbands({c}) = {}", f.bands)),
        ("pixel_types", format!("_raster_constraint_pixel_types({c}) = {}::text[]", quote_literal(&f.pixel_types))),
        (
            "nodata_values",
            format!(
                "_raster_constraint_nodata_values({c})::numeric[] = {}::numeric[]",
                quote_literal(&f.nodata_values)
            ),
        ),
        ("out_db", format!("_raster_constraint_out_db({c}) = {}::boolean[]", quote_literal(&f.out_db))),
    ];
    let adds: Vec<String> =
        checks.iter().map(|(what, check)| format!("ADD CONSTRAINT {} CHECK ({check})", name(what))).collect();
    format!("ALTER TABLE {table} {}", adds.join(", "))
}

/// The numbers of a comma-separated list: nothing else reaches the statement.
fn integers(list: &str) -> Vec<String> {
    list.split(',').filter_map(|n| n.trim().parse::<i64>().ok()).map(|n| n.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constraint_is_added_in_one_statement_with_quoted_values() {
        let facts = Facts {
            srid: 3857,
            scale_x: 162.11,
            scale_y: -162.11,
            alignment: "0100".into(),
            bands: 1,
            pixel_types: "{16BSI}".into(),
            nodata_values: "{-9999.0000000000}".into(),
            out_db: "{f}".into(),
            widths: "128,83".into(),
            heights: "128,x; DROP TABLE x".into(),
        };
        let sql = statement("s.t", "rast", &facts);
        assert_eq!(sql.matches("ADD CONSTRAINT").count(), 10);
        assert!(sql.contains("st_width(\"rast\") IN (128,83)"), "{sql}");
        assert!(sql.contains("st_height(\"rast\") IN (128)"), "only numbers reach the statement: {sql}");
        assert!(sql.contains("round(st_scaley(\"rast\")::numeric, 10) = round(-162.11::numeric, 10)"), "{sql}");
        assert!(sql.contains("\"enforce_same_alignment_rast\" CHECK (st_samealignment(\"rast\", '0100'::raster))"));
    }
}
