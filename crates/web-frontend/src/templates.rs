//! The pages' templates, from the workspace's top-level `templates/` (found by
//! build.rs), compiled into the binary and parsed once at start (a deployed
//! service needs no template files).

use tera::Tera;

/// Each template's name and text.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!(env!("AUTHBRIDGE_TEMPLATES_DIR"), "/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "base.html",
    "home.html",
    "login.html",
    "private.html",
    "not_found.html",
];

/// Every template, parsed; an error names the template and the fault.
pub(crate) fn load() -> Result<Tera, tera::Error> {
    let mut tera = Tera::default();
    tera.add_raw_templates(TEMPLATES.iter().copied())?;
    // `.html` templates are autoescaped: a username is text, never markup.
    Ok(tera)
}
