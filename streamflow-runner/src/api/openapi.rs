//! `/openapi.json`: the OpenAPI 3.0 description of the routes, made from the column
//! description, every constraint the server checks declared in it — so that a client generated
//! from it, or a fuzzer, never sends a request it allows and the server refuses.

use serde_json::{json, Value};
use streamflow_core::schema::{Columns, Kind, Number};

use super::params::{LIMIT, MAX_KEY_CHARS, MINUTES, TOP};

/// The routes' templates, from the description: `/streams/top`, `/streams/{stream_id}/metrics`.
pub fn top_route(columns: &Columns) -> String {
    format!("/{}/top", columns.keys())
}

/// See [`top_route`].
pub fn key_metrics_route(columns: &Columns) -> String {
    format!("/{}/{{{}}}/metrics", columns.keys(), columns.key())
}

fn integer(default: i64, min: i64, max: i64) -> Value {
    json!({"type": "integer", "format": "int64", "default": default, "minimum": min, "maximum": max})
}

/// A query parameter; an empty value counts as absent (spec §6), which `allowEmptyValue` says.
fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name, "in": "query", "required": false, "allowEmptyValue": true,
        "description": format!("{description} Empty counts as absent."), "schema": schema,
    })
}

fn time_query(name: &str, description: &str) -> Value {
    query(name, description, json!({"type": "string", "format": "date-time"}))
}

/// A key as a parameter accepts it: any text without U+0000 (no stored key holds one).
fn key_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": "^[^\\u0000]+$"})
}

/// The headers every JSON answer carries when the store can say how fresh it is.
fn freshness_headers() -> Value {
    json!({
        "Streamflow-Watermark": {
            "description": "The pipeline watermark at the last commit (RFC 3339): windows ending at or before it are final.",
            "schema": {"type": "string", "format": "date-time"},
        },
        "Streamflow-Last-Commit": {
            "description": "When the last commit of the rows read was (RFC 3339): a quiet key is told from a stale pipeline by it.",
            "schema": {"type": "string", "format": "date-time"},
        },
    })
}

fn answer(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "headers": freshness_headers(),
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
    })
}

fn text(description: &str, types: &[&str]) -> Value {
    let content: serde_json::Map<String, Value> =
        types.iter().map(|t| (t.to_string(), json!({"schema": {"type": "string"}}))).collect();
    json!({"description": description, "content": content})
}

fn failures(bad: bool) -> Value {
    let mut responses = json!({"503": answer("The database does not answer", "Error")});
    if bad {
        responses["400"] = answer("A bad parameter, named", "Error");
    }
    responses
}

fn with(mut responses: Value, status: &str, value: Value) -> Value {
    responses[status] = value;
    responses
}

fn value_schema(number: Number, nullable: bool) -> Value {
    let mut schema = match number {
        Number::Integer => json!({"type": "integer", "format": "int64"}),
        Number::Decimal { .. } => json!({"type": "number"}),
    };
    if nullable {
        schema["nullable"] = json!(true);
    }
    schema
}

/// The document.
pub fn document(columns: &Columns) -> Value {
    let key = columns.key();
    let keys = columns.keys();
    let mut row_properties = serde_json::Map::new();
    row_properties.insert("window_start".into(), json!({"type": "string", "format": "date-time"}));
    row_properties.insert("window_end".into(), json!({"type": "string", "format": "date-time"}));
    row_properties.insert(key.into(), json!({"type": "string"}));
    let mut required: Vec<Value> = vec!["window_start".into(), "window_end".into(), key.into()];
    for column in columns.iter() {
        let nullable = matches!(column.kind, Kind::Min | Kind::Max);
        let mut schema = value_schema(column.number, nullable);
        schema["description"] = json!(column.doc);
        row_properties.insert(column.name.clone(), schema);
        required.push(column.name.clone().into());
    }
    let ranked: Vec<String> = columns.ranked().map(|i| columns.get(i).expect("a column").name.clone()).collect();
    let default_by = columns.default_ranking().and_then(|i| columns.get(i)).map(|c| c.name.clone());
    let mut by = json!({"type": "string", "enum": ranked});
    if let Some(default_by) = default_by {
        by["default"] = json!(default_by);
    }
    let minutes =
        query("minutes", "Minutes of windows, counted back from `at`.", integer(MINUTES.0, MINUTES.1, MINUTES.2));
    let at = time_query("at", "The end of the range (RFC 3339); default: now.");

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "streamflow",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Per-window metrics of {keys} (spec §6), from the table {}. An empty parameter counts as absent.",
                columns.table()
            ),
        },
        "paths": {
            "/health": {"get": {
                "operationId": "health",
                "summary": "Whether the database answers.",
                "responses": {
                    "200": answer("The database answers", "Health"),
                    "503": answer("The database does not answer", "Health"),
                },
            }},
            "/health/live": {"get": {
                "operationId": "healthLive",
                "summary": "The process answers (for a liveness probe: asks nothing of the database, so that an outage does not restart the pipeline).",
                "responses": {"200": answer("The process answers", "Health")},
            }},
            "/health/ready": {"get": {
                "operationId": "healthReady",
                "summary": "The database answers and the pipeline of this process, if it runs one into PostgreSQL, commits (for a readiness probe).",
                "responses": {
                    "200": answer("Ready", "Ready"),
                    "503": answer("Not ready: `error` says why", "Ready"),
                },
            }},
            "/metrics": {"get": {
                "operationId": "metrics",
                "summary": "Rows of the last `minutes` before `at`, newest first, then by key.",
                "parameters": [
                    minutes,
                    query("limit", "The most rows.", integer(LIMIT.0, LIMIT.1, LIMIT.2)),
                    query(key, "Only this key.", key_schema()),
                    at,
                ],
                "responses": with(failures(true), "200", answer("The rows", "Metrics")),
            }},
            "/metrics/latest": {"get": {
                "operationId": "latest",
                "summary": "Each key's newest window.",
                "responses": with(failures(false), "200", answer("The rows, by key", "Latest")),
            }},
            top_route(columns): {"get": {
                "operationId": "top",
                "summary": format!("{keys} ranked over the last `minutes` before `at`, best first, ties by key: by \
                    the sum of a column over the windows, the newest window's running total, or the least or \
                    largest of a min or max column."),
                "parameters": [
                    minutes,
                    query("by", "What to rank by.", by.clone()),
                    query("n", "How many (`limit` is taken as its alias).", integer(TOP.0, TOP.1, TOP.2)),
                    time_query("at", "The end of the range (RFC 3339); default: now."),
                ],
                "responses": with(failures(true), "200", answer("The ranking", "Top")),
            }},
            key_metrics_route(columns): {"get": {
                "operationId": "key_metrics",
                "summary": format!("One key's windows starting in [from, to), oldest first, at most {}. With one \
                    end given the range is the hour from or to it; with neither, the hour before now; a range \
                    that ends before it starts holds no window.", super::params::MAX_MINUTES),
                "parameters": [
                    {"name": key, "in": "path", "required": true, "description": "The key.", "schema": key_schema()},
                    time_query("from", "The first window start (RFC 3339)."),
                    time_query("to", "The end of the range, exclusive (RFC 3339)."),
                ],
                "responses": with(failures(true), "200", answer("The rows", "KeyMetrics")),
            }},
            format!("/{keys}/top/live"): {"get": {
                "operationId": "top_live",
                "summary": format!("The ranking of {} as Server-Sent Events over the last `minutes` before now, sent \
                    again whenever a commit changes it. Each `top` event's data is `{{\"top\": <the answer of {}>, \
                    \"freshness\": <as in /status>}}`; while the database does not answer, one `unavailable` event \
                    (`{{\"error\": …}}`) says why, and `top` events follow once it answers again.", top_route(columns), top_route(columns)),
                "parameters": [
                    query("minutes", "Minutes of windows, counted back from now.", integer(MINUTES.0, MINUTES.1, MINUTES.2)),
                    query("by", "What to rank by.", by),
                    query("n", "How many (`limit` is taken as its alias).", integer(TOP.0, TOP.1, TOP.2)),
                ],
                "responses": {
                    "200": text("An endless stream of events", &["text/event-stream"]),
                    "400": answer("A bad parameter, named", "Error"),
                },
            }},
            "/status": {"get": {
                "operationId": "status",
                "summary": "What the dashboard shows beside the rankings: the columns, how fresh the answers are, dead \
                    letters by reason, and the pipeline's figures when it runs in this process (null otherwise).",
                "responses": with(failures(false), "200", answer("The status", "Status")),
            }},
            "/": {"get": {
                "operationId": "dashboard",
                "summary": "The dashboard page: the top keys live, a key's minute series, the pipeline's health.",
                "responses": {"200": text("The page", &["text/html"])},
            }},
            "/assets/{file}": {"get": {
                "operationId": "asset",
                "summary": "The page's files, embedded in the binary (uPlot is vendored with its license).",
                "parameters": [{"name": "file", "in": "path", "required": true, "description": "The file.",
                    "schema": {"type": "string", "enum": super::page::NAMES}}],
                "responses": {
                    "200": text("The file", &["text/html", "text/javascript", "text/css", "text/plain"]),
                    "404": answer("No such file", "Error"),
                },
            }},
            "/prometheus": {"get": {
                "operationId": "prometheus",
                "summary": "Prometheus text format: requests and latency per route, database up, the answer cache, and \
                    the pipeline's figures when it runs in this process.",
                "responses": {"200": {"description": "The figures", "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {"200": {"description": "The OpenAPI description", "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {"schemas": {
            "Row": {"type": "object", "required": required, "properties": row_properties},
            "Health": {"type": "object", "required": ["ok"], "properties": {
                "ok": {"type": "boolean"}, "error": {"type": "string"},
            }},
            "Ready": {"type": "object", "required": ["ok", "database", "committing"], "properties": {
                "ok": {"type": "boolean"},
                "database": {"type": "boolean"},
                "committing": {"type": "boolean", "nullable": true},
                "error": {"type": "string"},
            }},
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Metrics": {"type": "object", "required": ["latest_window_start", "rows"], "properties": {
                "latest_window_start": {"type": "string", "format": "date-time", "nullable": true},
                "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}},
            }},
            "Latest": {"type": "object", "required": ["rows"], "properties": {
                "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}},
            }},
            "Top": {"type": "object", "required": ["by", "minutes", "from", "to", "rows"], "properties": {
                "by": {"type": "string"},
                "minutes": {"type": "integer"},
                "from": {"type": "string", "format": "date-time"},
                "to": {"type": "string", "format": "date-time"},
                "rows": {"type": "array", "items": {
                    "type": "object",
                    "description": "A key, and its value under the name of the column ranked by.",
                    "required": [key],
                    "properties": {key: {"type": "string"}},
                    "additionalProperties": {"type": "number", "nullable": true},
                }},
            }},
            "Freshness": {"type": "object", "required": ["watermark", "watermark_delay_seconds", "last_commit", "seconds_since_commit"], "properties": {
                "watermark": {"type": "string", "format": "date-time", "nullable": true},
                "watermark_delay_seconds": {"type": "number", "nullable": true},
                "last_commit": {"type": "string", "format": "date-time", "nullable": true},
                "seconds_since_commit": {"type": "number", "nullable": true},
            }},
            "Status": {"type": "object", "required": ["now", "table", "keys", "key", "default_by", "columns", "freshness", "dead_letters", "pipeline"], "properties": {
                "now": {"type": "string", "format": "date-time"},
                "table": {"type": "string"},
                "keys": {"type": "string"},
                "key": {"type": "string"},
                "default_by": {"type": "string", "nullable": true},
                "columns": {"type": "array", "items": {"type": "object", "required": ["name", "kind", "scale", "ranked", "doc"], "properties": {
                    "name": {"type": "string"},
                    "kind": {"type": "string", "enum": ["sum", "distinct", "min", "max", "running"]},
                    "scale": {"type": "integer"},
                    "ranked": {"type": "boolean"},
                    "doc": {"type": "string"},
                }}},
                "freshness": {"$ref": "#/components/schemas/Freshness"},
                "dead_letters": {"type": "object", "additionalProperties": {"type": "integer"}},
                "pipeline": {"type": "object", "nullable": true, "description": "Records read, open windows, per partition its lag, watermark and state, commits and their latency."},
            }},
            "KeyMetrics": {"type": "object", "required": [key, "from", "to", "rows"], "properties": {
                key: {"type": "string"},
                "from": {"type": "string", "format": "date-time"},
                "to": {"type": "string", "format": "date-time"},
                "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}},
            }},
        }},
    })
}
