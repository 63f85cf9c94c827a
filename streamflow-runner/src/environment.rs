//! The environment variables of the settings: the project's own share the `STREAMFLOW_` prefix
//! (`DATABASE_URL` and the `KAFKA_*` ones keep the names every tool knows). The names they had
//! before are still read, and warned about.

/// `(old name, name)` of each renamed variable.
pub const RENAMED: &[(&str, &str)] = &[
    ("HTTP_ADDR", "STREAMFLOW_HTTP_ADDR"),
    ("API_CACHE_MS", "STREAMFLOW_API_CACHE_MS"),
    ("START_OFFSETS", "STREAMFLOW_START_OFFSETS"),
    ("IDLE_TIMEOUT_SECONDS", "STREAMFLOW_IDLE_TIMEOUT_SECONDS"),
    ("METADATA_REFRESH_SECONDS", "STREAMFLOW_METADATA_REFRESH_SECONDS"),
    ("WINDOW_SECONDS", "STREAMFLOW_WINDOW_SECONDS"),
    ("LATENESS_SECONDS", "STREAMFLOW_LATENESS_SECONDS"),
    ("WORKERS", "STREAMFLOW_WORKERS"),
    ("PIPELINE_NAME", "STREAMFLOW_PIPELINE_NAME"),
    ("COMMIT_INTERVAL_MS", "STREAMFLOW_COMMIT_INTERVAL_MS"),
];

/// Gives each renamed variable set only under its old name the new name too, so that the
/// command line reads it; returns the warnings to log once logging is set up.
///
/// Call it first thing in `main`, before any thread starts (it sets variables of the process).
pub fn adopt_old_names() -> Vec<String> {
    let mut warnings = Vec::new();
    for (old, new) in RENAMED {
        let Some(value) = std::env::var_os(old) else { continue };
        if std::env::var_os(new).is_some() {
            warnings.push(format!("The environment variable {old} is ignored: {new} is set."));
        } else {
            std::env::set_var(new, value);
            warnings.push(format!("The environment variable {old} is read as {new}, its new name; rename it."));
        }
    }
    warnings
}
