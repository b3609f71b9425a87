-- Raster imports (GeoTIFF and others): whether an import's source held a raster, and whether it made a
-- raster table (the reference's `is_raster` and `any_table_raster`).
ALTER TABLE geoimport.imports
    ADD COLUMN is_raster boolean NOT NULL DEFAULT false,
    ADD COLUMN any_table_raster boolean NOT NULL DEFAULT false;
