//! The dashboard page at `/`: a few static files embedded in the binary (no CDN, nothing fetched
//! at build time), uPlot vendored from npm with its license. The page reads the same routes as
//! any client: `/status`, `/streams/top/live`, `/streams/{id}/metrics`.

use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

/// The files under `/assets/`, and `/` itself: name, content type, bytes.
const FILES: [(&str, &str, &[u8]); 6] = [
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../assets/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/app.js")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../../assets/style.css")),
    ("uPlot.iife.min.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/vendor/uPlot.iife.min.js")),
    ("uPlot.min.css", "text/css; charset=utf-8", include_bytes!("../../assets/vendor/uPlot.min.css")),
    ("uPlot.LICENSE", "text/plain; charset=utf-8", include_bytes!("../../assets/vendor/uPlot.LICENSE")),
];

/// The names of the files under `/assets/`.
pub const NAMES: [&str; 6] = [FILES[0].0, FILES[1].0, FILES[2].0, FILES[3].0, FILES[4].0, FILES[5].0];

/// The file `name`, or a 404.
pub fn file(name: &str) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => {
            let reply = warp::reply::with_header(*bytes, "content-type", *content_type);
            warp::reply::with_header(reply, "cache-control", "no-cache").into_response()
        }
        None => super::handlers::error_reply(StatusCode::NOT_FOUND, format!("no asset {name:?}")),
    }
}

/// `GET /`.
pub fn index() -> Response {
    file("index.html")
}
