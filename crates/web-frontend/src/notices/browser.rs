//! The browser family named in a sign-in notice, read from the login
//! request's `User-Agent`: a handful of families, nothing finer (no version,
//! no platform), so a notice says enough to recognise a sign-in and no more.

/// What a notice says when the `User-Agent` names none of the known families
/// (or is missing, or is not text).
pub(crate) const ANOTHER_BROWSER: &str = "another browser";

/// The families, each with the product tokens that name it, in the order they
/// are tried: the order matters because user agents borrow each other's
/// tokens — Edge's and Opera's carry `Chrome/`, Chrome's (and every
/// Chromium-based and iOS browser's) carry `Safari/`.
const FAMILIES: &[(&str, &[&str])] = &[
    ("Edge", &["Edg/", "Edge/", "EdgA/", "EdgiOS/"]),
    ("Opera", &["OPR/", "OPT/", "OPiOS/", "Opera"]),
    // `HeadlessChrome/` contains `Chrome/`; `CriOS/` is Chrome on iOS.
    ("Chrome", &["Chrome/", "CriOS/"]),
    // `FxiOS/` is Firefox on iOS.
    ("Firefox", &["Firefox/", "FxiOS/"]),
    ("Safari", &["Safari/"]),
    ("curl", &["curl/"]),
];

/// The browser family of `user_agent`: `Edge`, `Opera`, `Chrome`, `Firefox`,
/// `Safari`, `curl`, else [`ANOTHER_BROWSER`].
pub(crate) fn browser_family(user_agent: Option<&str>) -> &'static str {
    let Some(user_agent) = user_agent else {
        return ANOTHER_BROWSER;
    };
    FAMILIES
        .iter()
        .find(|(_, tokens)| tokens.iter().any(|token| user_agent.contains(token)))
        .map_or(ANOTHER_BROWSER, |(family, _)| family)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(user_agent: &str) -> &'static str {
        browser_family(Some(user_agent))
    }

    #[test]
    fn desktop_browsers_are_named_by_family() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                "Chrome",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
                "Edge",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/64.0.3282.140 Safari/537.36 Edge/18.17763",
                "Edge",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0",
                "Opera",
            ),
            (
                "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
                "Opera",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
                "Firefox",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
                "Safari",
            ),
            ("curl/8.5.0", "curl"),
        ];
        for (user_agent, expected) in cases {
            assert_eq!(family(user_agent), expected, "{user_agent}");
        }
    }

    #[test]
    fn headless_chromium_is_chrome() {
        // What Debian's chromium says under playwright, headless.
        assert_eq!(
            family(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/130.0.6723.116 Safari/537.36"
            ),
            "Chrome"
        );
        assert_eq!(
            family(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/120.0.0.0 Chrome/120.0.0.0 Safari/537.36"
            ),
            "Chrome"
        );
    }

    #[test]
    fn mobile_browsers_are_named_by_family_not_by_the_safari_they_wrap() {
        let cases = [
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
                "Chrome",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
                "Firefox",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 EdgiOS/124.2478.50 Mobile/15E148 Safari/605.1.15",
                "Edge",
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.62",
                "Edge",
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 OPR/81.1.4292.78446",
                "Opera",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
                "Safari",
            ),
            (
                "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
                "Firefox",
            ),
        ];
        for (user_agent, expected) in cases {
            assert_eq!(family(user_agent), expected, "{user_agent}");
        }
    }

    #[test]
    fn anything_else_is_another_browser() {
        assert_eq!(browser_family(None), ANOTHER_BROWSER);
        for user_agent in [
            "",
            "python-requests/2.31.0",
            "Wget/1.21.4",
            "reqwest",
            "Mozilla/5.0",
            "chrome firefox safari", // the tokens are case-sensitive product names
            "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
        ] {
            assert_eq!(family(user_agent), ANOTHER_BROWSER, "{user_agent:?}");
        }
    }

    #[test]
    fn every_family_is_one_of_the_documented_names() {
        let names: Vec<&str> = FAMILIES.iter().map(|(family, _)| *family).collect();
        assert_eq!(
            names,
            ["Edge", "Opera", "Chrome", "Firefox", "Safari", "curl"]
        );
    }
}
