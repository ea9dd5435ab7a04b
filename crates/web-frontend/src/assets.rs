//! The static files the pages load, compiled into the binary: the stylesheet,
//! the page's own script, and the official socket.io-client bundle (embedded by
//! build.rs from `client/dist`, which `npm ci` produces from the pinned package);
//! `static/` sits next to this crate's sources.

use actix_web::HttpResponse;
use actix_web::http::header;

/// A file served at `path`.
#[derive(Debug)]
pub(crate) struct Asset {
    pub(crate) path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every asset: routes.rs gives each a GET route.
pub(crate) const ASSETS: &[Asset] = &[
    Asset {
        path: "/static/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/app.css"),
    },
    Asset {
        path: "/static/favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../static/favicon.svg"),
    },
    Asset {
        path: "/static/private.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/private.js"),
    },
    Asset {
        path: "/static/socket.io.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(env!("SOCKET_IO_CLIENT_JS")),
    },
    Asset {
        path: "/static/socket.io.min.js.map",
        content_type: "application/json",
        body: include_bytes!(env!("SOCKET_IO_CLIENT_JS_MAP")),
    },
];

/// The asset, cacheable for a short while.
pub(crate) async fn serve(asset: &'static Asset) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(asset.content_type)
        // Short: a new release must reach browsers soon, and these are small.
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(asset.body)
}
