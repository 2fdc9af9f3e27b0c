//! `{{ value }}`, `{{ series }}`, `{{ labels.team }}` in labels and
//! annotations. Plain substitution from a fixed set of names: nothing in a
//! template can call, loop or reach anything else, so a rule sent over
//! HTTP cannot execute anything (Go templates in Alertmanager and Grafana
//! can call functions; this is deliberately less).

use std::collections::BTreeMap;

/// The names a template may use besides `labels.<name>`.
pub const NAMES: [&str; 9] = [
    "value",
    "series",
    "rule",
    "state",
    "severity",
    "threshold",
    "eta",
    "r2",
    "slope",
];

/// What a template is filled from.
#[derive(Debug, Default)]
pub struct Vars<'a> {
    pub values: BTreeMap<&'static str, String>,
    pub labels: Option<&'a BTreeMap<String, String>>,
}

/// Each `{{ ... }}` in `text`, in order: (byte range of the whole
/// placeholder, the trimmed name inside), or the first malformed one.
fn placeholders(text: &str) -> Result<Vec<(std::ops::Range<usize>, &str)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = text[at..].find("{{") {
        let start = at + open;
        let Some(close) = text[start + 2..].find("}}") else {
            return Err(format!("a \"{{{{\" at byte {start} is never closed"));
        };
        let end = start + 2 + close + 2;
        out.push((start..end, text[start + 2..end - 2].trim()));
        at = end;
    }
    Ok(out)
}

/// Whether every placeholder names something a template may use.
pub fn check(text: &str) -> Result<(), String> {
    for (_, name) in placeholders(text)? {
        let ok = NAMES.contains(&name)
            || name.strip_prefix("labels.").is_some_and(|l| {
                !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !ok {
            return Err(format!(
                "unknown template name {{{{ {name} }}}}; use {}, or labels.<name>",
                NAMES.join(", ")
            ));
        }
    }
    Ok(())
}

/// `text` with its placeholders filled; a name with no value (a label the
/// series does not carry, `eta` on a threshold rule) becomes empty.
pub fn render(text: &str, vars: &Vars<'_>) -> String {
    let Ok(found) = placeholders(text) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (range, name) in found {
        out.push_str(&text[last..range.start]);
        let v = match name.strip_prefix("labels.") {
            Some(l) => vars.labels.and_then(|m| m.get(l)).map(String::as_str),
            None => vars.values.get(name).map(String::as_str),
        };
        out.push_str(v.unwrap_or(""));
        last = range.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_filled_and_unknown_ones_refused() {
        let labels = BTreeMap::from([("team".to_string(), "web".to_string())]);
        let mut vars = Vars {
            labels: Some(&labels),
            ..Default::default()
        };
        vars.values.insert("value", "812".into());
        vars.values.insert("series", "api.p99".into());
        let t = "{{value}} ms on {{ series }} ({{ labels.team }}{{ labels.dc }})";
        assert!(check(t).is_ok());
        assert_eq!(render(t, &vars), "812 ms on api.p99 (web)");
        assert!(check("{{ env.HOME }}").is_err());
        assert!(check("{{ value ").is_err());
        assert!(check("{{ labels. }}").is_err());
        // Text that merely looks like code stays text.
        assert_eq!(
            render("{{ value }}; $(rm -rf /)", &vars),
            "812; $(rm -rf /)"
        );
    }
}
