//! `{name}` placeholders in config values (`url`, `health`, `vars`).
//!
//! Pure string substitution: placeholders are replaced by values greenroom
//! computed (port, slot, environment, component); the result is used as a
//! URL or passed as an environment variable, never spliced into a shell.

/// Replaces every `{key}` with its value. Unknown placeholders are left as
/// they are (validation reports them earlier; see [`unknown_placeholders`]).
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let key = &after[..close];
                match values.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(key);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Placeholders in `template` that are not among `known`.
pub fn unknown_placeholders<'a>(template: &'a str, known: &[&str]) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let key = &after[..close];
        if !known.contains(&key) {
            found.push(key);
        }
        rest = &after[close + 1..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_and_keeps_unknown() {
        let v = [("port", "8080"), ("slot", "2")];
        assert_eq!(
            render("http://127.0.0.1:{port}/s{slot}/{x}", &v),
            "http://127.0.0.1:8080/s2/{x}"
        );
        assert_eq!(render("no braces", &v), "no braces");
        assert_eq!(render("open { only", &v), "open { only");
        assert_eq!(unknown_placeholders("{port}{nope}", &["port"]), vec!["nope"]);
    }
}
