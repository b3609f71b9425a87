//! Where an import's bytes come from. Uploads are staged by the API; URL downloads and database
//! connectors arrive with their own issues.

pub mod staging;
