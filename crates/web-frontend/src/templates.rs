//! The pages' templates, from the top-level `templates/`, compiled into the
//! binary and parsed once at start (a deployed service needs no template files).

use anyhow::Context as _;
use tera::Tera;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../templates/base.html")),
    ("home.html", include_str!("../../../templates/home.html")),
    ("login.html", include_str!("../../../templates/login.html")),
    (
        "private.html",
        include_str!("../../../templates/private.html"),
    ),
    (
        "not_found.html",
        include_str!("../../../templates/not_found.html"),
    ),
];

pub(crate) fn load() -> anyhow::Result<Tera> {
    let mut tera = Tera::default();
    tera.add_raw_templates(TEMPLATES.iter().copied())
        .context("templates/")?;
    // `.html` templates are autoescaped: a username is text, never markup.
    Ok(tera)
}
