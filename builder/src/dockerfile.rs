//! The two Dockerfile edits OpenShift makes for a Docker build: the strategy's `from` replaces
//! the image of the last FROM, and the strategy's `env` becomes an ENV instruction after every
//! FROM. Written here because the edit needs only the instruction boundaries (line
//! continuations, comments, the `escape` parser directive), which no maintained Rust crate
//! exposes while keeping the rest of the file byte for byte.

/// One instruction: the index of its first and last physical line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Instruction {
    first: usize,
    last: usize,
}

/// The escape character a `# escape=` parser directive sets (`\` by default).
fn escape_char(lines: &[&str]) -> char {
    for line in lines {
        let t = line.trim();
        let Some(directive) = t.strip_prefix('#') else {
            break;
        };
        let directive = directive.trim();
        if let Some((k, v)) = directive.split_once('=') {
            if k.trim().eq_ignore_ascii_case("escape") {
                return v.trim().chars().next().unwrap_or('\\');
            }
            continue;
        }
        break;
    }
    '\\'
}

/// The instructions of a Dockerfile (comments and blank lines are not instructions).
fn instructions(lines: &[&str], escape: char) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let first = i;
        while lines[i].trim_end().ends_with(escape) && i + 1 < lines.len() {
            i += 1;
            // Comment lines inside a continuation belong to it and are skipped by the parser.
            while i + 1 < lines.len() && lines[i].trim_start().starts_with('#') {
                i += 1;
            }
        }
        out.push(Instruction { first, last: i });
        i += 1;
    }
    out
}

fn is_from(lines: &[&str], ins: Instruction) -> bool {
    lines[ins.first]
        .split_whitespace()
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
}

/// `value` as a double-quoted Dockerfile word, with no variable expansion.
fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// The FROM instruction (all on one line) with its image replaced; flags and `AS name` kept.
fn replace_image(text: &str, image: &str) -> Result<String, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let position = words
        .iter()
        .skip(1)
        .position(|w| !w.starts_with("--"))
        .map(|p| p + 1)
        .ok_or_else(|| format!("{text:?}: FROM without an image"))?;
    let mut words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    words[position] = image.to_owned();
    Ok(words.join(" "))
}

/// The Dockerfile with the last FROM's image replaced by `last_from` and `ENV` for `env` after
/// every FROM. Refuses a file without FROM and values that cannot be written on one line.
pub fn rewrite(text: &str, last_from: Option<&str>, env: &[(String, String)]) -> Result<String, String> {
    if let Some((k, _)) = env
        .iter()
        .find(|(k, v)| k.contains(char::is_whitespace) || v.contains('\n'))
    {
        return Err(format!(
            "the variable {k:?} cannot be written as ENV (whitespace in its name or a newline in its value)"
        ));
    }
    let lines: Vec<&str> = text.lines().collect();
    let escape = escape_char(&lines);
    let froms: Vec<Instruction> = instructions(&lines, escape)
        .into_iter()
        .filter(|i| is_from(&lines, *i))
        .collect();
    let Some(last) = froms.last().copied() else {
        return Err("no FROM instruction".into());
    };
    let env_line = (!env.is_empty()).then(|| {
        let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
        format!("ENV {}", pairs.join(" "))
    });
    let mut out = Vec::with_capacity(lines.len() + froms.len());
    let mut i = 0;
    while i < lines.len() {
        match froms.iter().find(|f| f.first == i) {
            Some(f) => {
                let joined = lines[f.first..=f.last]
                    .iter()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .map(|l| l.trim_end().trim_end_matches(escape))
                    .collect::<Vec<_>>()
                    .join(" ");
                match last_from.filter(|_| *f == last) {
                    Some(image) => out.push(replace_image(&joined, image)?),
                    None => out.extend(lines[f.first..=f.last].iter().map(|l| (*l).to_owned())),
                }
                out.extend(env_line.clone());
                i = f.last + 1;
            }
            None => {
                out.push(lines[i].to_owned());
                i += 1;
            }
        }
    }
    Ok(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_last_from_is_replaced_and_env_follows_every_from() {
        let text = "# syntax comment\nFROM golang:1 AS build\nRUN go build \\\n  ./...\nfrom --platform=$BUILDPLATFORM \\\n  alpine:3 as final\nCOPY --from=build /out /out\n";
        let env = [("GREETING".to_string(), "hi \"there\" $HOME".to_string())];
        let out = rewrite(text, Some("registry/base@sha256:abc"), &env).unwrap();
        assert_eq!(
            out,
            "# syntax comment\nFROM golang:1 AS build\nENV GREETING=\"hi \\\"there\\\" \\$HOME\"\nRUN go build \\\n  ./...\nfrom --platform=$BUILDPLATFORM registry/base@sha256:abc as final\nENV GREETING=\"hi \\\"there\\\" \\$HOME\"\nCOPY --from=build /out /out\n"
        );
    }

    #[test]
    fn nothing_but_the_from_changes_without_env() {
        let out = rewrite("FROM a\nRUN x\n", Some("b"), &[]).unwrap();
        assert_eq!(out, "FROM b\nRUN x\n");
        let out = rewrite("FROM a\nRUN x\n", None, &[("K".into(), "v".into())]).unwrap();
        assert_eq!(out, "FROM a\nENV K=\"v\"\nRUN x\n");
    }

    #[test]
    fn the_escape_directive_is_honoured() {
        let out = rewrite("# escape=`\nFROM `\n  a\nRUN b\n", Some("c"), &[]).unwrap();
        assert_eq!(out, "# escape=`\nFROM c\nRUN b\n");
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(
            rewrite("RUN x\n", Some("b"), &[])
                .unwrap_err()
                .contains("no FROM")
        );
        assert!(
            rewrite("FROM\n", Some("b"), &[])
                .unwrap_err()
                .contains("without an image")
        );
        assert!(rewrite("FROM a\n", None, &[("K".into(), "a\nb".into())]).is_err());
    }
}
