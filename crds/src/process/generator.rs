//! Generator expressions: the values of parameters with `generate: expression`.
//!
//! The grammar is OpenShift's: literal text around tokens `[CLASS]{N}`, each token replaced by
//! `N` (1 to 255) characters drawn uniformly and independently from `CLASS`. For example
//! `admin[A-Z0-9]{4}-[a-z]{2}` gives `adminQ7X2-kd`.
//!
//! Inside the brackets:
//! - a range `a-z` of printable ASCII characters. **Ranges are inclusive**: `[a-z]` can give
//!   `z`. OpenShift's generator drops the top of every range (its `[a-z]` never gives `z`, its
//!   `[0-9]` never gives `9`), which is a bug no template relies on, so Slipway does not copy it.
//! - a single printable ASCII character (space included); `-` is literal where it cannot form
//!   a range (first, last, or after a range or class).
//! - the classes `\w` (`[a-zA-Z0-9_]`), `\d` (`[0-9]`), `\a` (`[a-zA-Z]`) and `\A` (the ASCII
//!   punctuation ``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``, as OpenShift defines it).
//! - the escapes `\\`, `\]`, `\[` and `\-` for those characters themselves.
//!
//! A character listed twice, or covered by two ranges, is not made more likely: a class is a set.
//!
//! Outside brackets, text is copied as is, except `\[` (a literal `[`) and `\\` (a literal `\`).
//! A backslash before anything else is an ordinary character, as in OpenShift.
//!
//! Values are drawn from a cryptographically secure generator ([`rand::rng`]: ChaCha12 seeded
//! from the operating system) with rejection sampling, so there is no modulo bias: generated
//! parameters are typically passwords and tokens.

use std::fmt;
use std::str::FromStr;

use rand::distr::{Distribution, Uniform};

use super::ProcessError;

/// The longest run a single token may produce.
pub const MAX_TOKEN_LENGTH: u32 = 255;

/// The longest expression, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 1024;

/// The longest value an expression may generate, in bytes.
pub const MAX_GENERATED_BYTES: usize = 4096;

/// Generates a value from `expression` with the thread's CSPRNG.
pub fn generate(expression: &str) -> Result<String, ProcessError> {
    Ok(Expression::parse(expression)?.generate(&mut rand::rng()))
}

/// A parsed generator expression, ready to produce any number of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Random {
        alphabet: Vec<u8>,
        pick: Uniform<usize>,
        length: u32,
    },
}

impl Expression {
    /// Parses `expression`; errors quote it and say what is wrong.
    pub fn parse(expression: &str) -> Result<Self, ProcessError> {
        let invalid = |reason: String| ProcessError::InvalidExpression {
            parameter: None,
            // A long expression is quoted by its start only.
            expression: expression.chars().take(64).collect(),
            reason,
        };
        if expression.len() > MAX_EXPRESSION_BYTES {
            return Err(invalid(format!(
                "it is {} bytes long, more than the limit of {MAX_EXPRESSION_BYTES}",
                expression.len()
            )));
        }
        let parts = Parser {
            source: expression,
            chars: expression.char_indices().peekable(),
        }
        .parse()
        .map_err(invalid)?;
        let parsed = Expression {
            source: expression.to_owned(),
            parts,
        };
        if parsed.max_len() > MAX_GENERATED_BYTES {
            return Err(invalid(format!(
                "it generates {} characters, more than the limit of {MAX_GENERATED_BYTES}",
                parsed.max_len()
            )));
        }
        Ok(parsed)
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Produces one value. Callers pass a cryptographically secure generator.
    pub fn generate<R: rand::CryptoRng + ?Sized>(&self, rng: &mut R) -> String {
        let mut out = String::with_capacity(self.max_len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Random {
                    alphabet,
                    pick,
                    length,
                } => {
                    for _ in 0..*length {
                        // `pick` ranges over 0..alphabet.len(), so the index is always in bounds.
                        out.push(char::from(alphabet[pick.sample(rng)]));
                    }
                }
            }
        }
        out
    }

    fn max_len(&self) -> usize {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.len(),
                Part::Random { length, .. } => *length as usize,
            })
            .sum()
    }
}

impl FromStr for Expression {
    type Err = ProcessError;

    fn from_str(expression: &str) -> Result<Self, ProcessError> {
        Expression::parse(expression)
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A set of ASCII characters, one bit per code point.
#[derive(Clone, Copy, Default)]
struct CharSet(u128);

impl CharSet {
    fn insert(&mut self, byte: u8) {
        self.0 |= 1u128 << byte;
    }

    fn insert_range(&mut self, low: u8, high: u8) {
        for byte in low..=high {
            self.insert(byte);
        }
    }

    fn insert_where(&mut self, keep: impl Fn(u8) -> bool) {
        for byte in 0u8..128 {
            if keep(byte) {
                self.insert(byte);
            }
        }
    }

    fn to_alphabet(self) -> Vec<u8> {
        (0u8..128).filter(|byte| self.0 & (1u128 << byte) != 0).collect()
    }
}

/// One element of a bracketed class, before ranges are joined.
enum ClassItem {
    /// A character that may start or end a range.
    Char(u8),
    /// `\w`, `\d`, `\a` or `\A`.
    Set(CharSet),
}

struct Parser<'a> {
    source: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
}

impl Parser<'_> {
    fn parse(mut self) -> Result<Vec<Part>, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        while let Some((start, c)) = self.chars.next() {
            match c {
                '\\' => match self.chars.peek() {
                    Some(&(_, escaped @ ('[' | '\\'))) => {
                        literal.push(escaped);
                        self.chars.next();
                    }
                    _ => literal.push('\\'),
                },
                '[' => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(self.token(start)?);
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(parts)
    }

    /// `[CLASS]{N}`, the `[` at byte `start` already consumed.
    fn token(&mut self, start: usize) -> Result<Part, String> {
        let set = self.class(start)?;
        let class_text = self.text_since(start);
        let length = self.length(&class_text)?;
        let alphabet = set.to_alphabet();
        if alphabet.is_empty() {
            return Err(format!("empty class {class_text}"));
        }
        let pick = Uniform::new(0, alphabet.len()).map_err(|e| format!("class {class_text}: {e}"))?;
        Ok(Part::Random {
            alphabet,
            pick,
            length,
        })
    }

    /// The source from byte `start` up to the current position.
    fn text_since(&mut self, start: usize) -> String {
        let end = self.chars.peek().map_or(self.source.len(), |&(index, _)| index);
        self.source[start..end].to_owned()
    }

    /// The class up to and including `]`.
    fn class(&mut self, start: usize) -> Result<CharSet, String> {
        let mut set = CharSet::default();
        loop {
            let item = match self.chars.next() {
                None => return Err(format!("unclosed {}", &self.source[start..])),
                Some((_, ']')) => return Ok(set),
                Some((_, '\\')) => self.escape()?,
                Some((_, c)) => ClassItem::Char(printable_ascii(c)?),
            };
            match item {
                ClassItem::Set(class) => set.0 |= class.0,
                ClassItem::Char(low) => match self.range_end()? {
                    Some(high) if high < low => {
                        return Err(format!(
                            "range {}-{} is reversed",
                            char::from(low),
                            char::from(high)
                        ));
                    }
                    Some(high) => set.insert_range(low, high),
                    None => set.insert(low),
                },
            }
        }
    }

    /// After a character: `-X` makes a range unless the `-` is the last thing in the class.
    fn range_end(&mut self) -> Result<Option<u8>, String> {
        if self.chars.peek().map(|&(_, c)| c) != Some('-') {
            return Ok(None);
        }
        let mut lookahead = self.chars.clone();
        lookahead.next();
        if matches!(lookahead.peek(), Some((_, ']')) | None) {
            // `[a-]`: the dash is literal; the next round of the class loop reads it.
            return Ok(None);
        }
        self.chars.next();
        match self.chars.next() {
            Some((_, '\\')) => match self.escape()? {
                ClassItem::Char(high) => Ok(Some(high)),
                ClassItem::Set(_) => Err("a range cannot end in a class such as \\w".to_owned()),
            },
            Some((_, c)) => printable_ascii(c).map(Some),
            None => Err(format!("unclosed {}", self.source)),
        }
    }

    /// After a backslash inside a class.
    fn escape(&mut self) -> Result<ClassItem, String> {
        let mut set = CharSet::default();
        match self.chars.next().map(|(_, c)| c) {
            Some('w') => set.insert_where(|b| b.is_ascii_alphanumeric() || b == b'_'),
            Some('d') => set.insert_where(|b| b.is_ascii_digit()),
            Some('a') => set.insert_where(|b| b.is_ascii_alphabetic()),
            Some('A') => set.insert_where(|b| b.is_ascii_punctuation()),
            Some(c @ ('\\' | ']' | '[' | '-')) => return Ok(ClassItem::Char(c as u8)),
            Some(other) => {
                return Err(format!(
                    "unknown escape \\{other} (classes are \\w, \\d, \\a and \\A; \\\\, \\], \\[ and \\- stand for themselves)"
                ));
            }
            None => return Err(format!("unclosed {}", self.source)),
        }
        Ok(ClassItem::Set(set))
    }

    /// `{N}` after a class, 1 ≤ N ≤ 255.
    fn length(&mut self, class_text: &str) -> Result<u32, String> {
        if self.chars.peek().map(|&(_, c)| c) != Some('{') {
            return Err(format!(
                "expected {{N}} after {class_text}, the number of characters to generate"
            ));
        }
        self.chars.next();
        let mut digits = String::new();
        loop {
            match self.chars.next() {
                Some((_, '}')) => break,
                Some((_, c)) if c.is_ascii_digit() => digits.push(c),
                Some((_, c)) => {
                    return Err(format!("{{N}} after {class_text} must be a number, found '{c}'"));
                }
                None => return Err(format!("unclosed {{{digits} after {class_text}")),
            }
        }
        if digits.is_empty() {
            return Err(format!("{{}} after {class_text} needs a number"));
        }
        // Any run of digits too long for u32 is out of range anyway.
        match digits.parse::<u32>() {
            Ok(n) if (1..=MAX_TOKEN_LENGTH).contains(&n) => Ok(n),
            _ => Err(format!("length {digits} is out of range 1-{MAX_TOKEN_LENGTH}")),
        }
    }
}

fn printable_ascii(c: char) -> Result<u8, String> {
    if c == ' ' || c.is_ascii_graphic() {
        Ok(c as u8)
    } else {
        Err(format!(
            "{c:?} is not allowed in a class: use printable ASCII characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;

    fn error(expression: &str) -> String {
        Expression::parse(expression).unwrap_err().to_string()
    }

    #[test]
    fn literal_text_around_tokens() {
        let value = generate("admin[A-Z0-9]{4}-[a-z]{2}").unwrap();
        assert_eq!(value.len(), 12, "{value}");
        assert!(value.starts_with("admin"));
        assert!(
            value[5..9]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{value}"
        );
        assert_eq!(&value[9..10], "-");
        assert!(value[10..].bytes().all(|b| b.is_ascii_lowercase()), "{value}");
    }

    #[test]
    fn expressions_without_tokens_are_literal() {
        assert_eq!(generate("").unwrap(), "");
        assert_eq!(generate("plain {3} text]").unwrap(), "plain {3} text]");
        assert_eq!(generate(r"a\[b\\c\d").unwrap(), r"a[b\c\d");
    }

    #[test]
    fn corpus_expressions_parse() {
        for (expression, len) in [
            ("[a-zA-Z0-9]{8}", 8),
            ("[a-zA-Z0-9]{40}", 40),
            ("user[A-Z0-9]{3}", 7),
            (r"[\w]{50}", 50),
            ("[a-z0-9]{127}", 127),
        ] {
            assert_eq!(generate(expression).unwrap().len(), len, "{expression}");
        }
    }

    #[test]
    fn ranges_are_inclusive_and_uniform_over_the_alphabet() {
        let expression = Expression::parse("[a-z]{255}").unwrap();
        let mut rng = rand::rng();
        let mut counts = [0u32; 26];
        for _ in 0..40 {
            for b in expression.generate(&mut rng).bytes() {
                assert!(b.is_ascii_lowercase());
                counts[usize::from(b - b'a')] += 1;
            }
        }
        // 10 200 draws, 392 expected per letter; 250 is more than 7 standard deviations below.
        assert!(counts.iter().all(|&n| n > 250), "{counts:?}");
        assert!(counts[0] > 0 && counts[25] > 0, "a and z must both occur");
    }

    #[test]
    fn values_are_distinct() {
        let expression = Expression::parse("[a-zA-Z0-9]{16}").unwrap();
        let mut rng = rand::rng();
        let values: HashSet<String> = (0..1000).map(|_| expression.generate(&mut rng)).collect();
        assert_eq!(values.len(), 1000);
    }

    #[test]
    fn classes() {
        let digits = generate(r"[\d]{255}").unwrap();
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{digits}");
        assert!(digits.contains('9'));

        let punctuation: BTreeSet<char> = (0..20)
            .flat_map(|_| generate(r"[\A]{255}").unwrap().chars().collect::<Vec<_>>())
            .collect();
        let expected: BTreeSet<char> = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".chars().collect();
        assert_eq!(
            punctuation, expected,
            "\\A is exactly the 32 ASCII punctuation characters"
        );

        let word = generate(r"[\w]{255}").unwrap();
        assert!(
            word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{word}"
        );
        let alpha = generate(r"[\a]{255}").unwrap();
        assert!(alpha.bytes().all(|b| b.is_ascii_alphabetic()), "{alpha}");
    }

    #[test]
    fn single_characters_dashes_and_escapes() {
        let value = generate("[x]{5}").unwrap();
        assert_eq!(value, "xxxxx");
        let chars: BTreeSet<char> = generate("[-a]{255}").unwrap().chars().collect();
        assert_eq!(chars, BTreeSet::from(['-', 'a']));
        let chars: BTreeSet<char> = generate("[a-]{255}").unwrap().chars().collect();
        assert_eq!(chars, BTreeSet::from(['-', 'a']));
        let chars: BTreeSet<char> = generate(r"[\]\\\[\-]{255}").unwrap().chars().collect();
        assert_eq!(chars, BTreeSet::from([']', '\\', '[', '-']));
        let chars: BTreeSet<char> = generate("[a-c-]{255}").unwrap().chars().collect();
        assert_eq!(chars, BTreeSet::from(['a', 'b', 'c', '-']));
    }

    #[test]
    fn duplicates_do_not_bias_the_choice() {
        let expression = Expression::parse("[aaaaaaaaab]{255}").unwrap();
        let mut rng = rand::rng();
        let b_count: usize = (0..20)
            .map(|_| expression.generate(&mut rng).matches('b').count())
            .sum();
        // 5 100 draws from {a, b}: about 2 550 b's (about 510 if duplicates counted).
        assert!(b_count > 2000, "{b_count}");
    }

    #[test]
    fn length_bounds() {
        assert_eq!(generate("[a]{1}").unwrap(), "a");
        assert_eq!(generate("[a]{255}").unwrap().len(), 255);
    }

    #[test]
    fn malformed_expressions() {
        assert_eq!(
            error("[ABC]3"),
            r#"invalid generator expression "[ABC]3": expected {N} after [ABC], the number of characters to generate"#
        );
        assert_eq!(
            error("[ABC]"),
            r#"invalid generator expression "[ABC]": expected {N} after [ABC], the number of characters to generate"#
        );
        assert_eq!(
            error("[ABC]{3"),
            r#"invalid generator expression "[ABC]{3": unclosed {3 after [ABC]"#
        );
        assert_eq!(
            error("[Z-A]{3}"),
            r#"invalid generator expression "[Z-A]{3}": range Z-A is reversed"#
        );
        assert_eq!(
            error("[A]{0}"),
            r#"invalid generator expression "[A]{0}": length 0 is out of range 1-255"#
        );
        assert_eq!(
            error("[A]{300}"),
            r#"invalid generator expression "[A]{300}": length 300 is out of range 1-255"#
        );
        assert_eq!(
            error("[A]{99999999999999999999}"),
            r#"invalid generator expression "[A]{99999999999999999999}": length 99999999999999999999 is out of range 1-255"#
        );
        assert_eq!(
            error("[A]{}"),
            r#"invalid generator expression "[A]{}": {} after [A] needs a number"#
        );
        assert_eq!(
            error("[A]{x}"),
            r#"invalid generator expression "[A]{x}": {N} after [A] must be a number, found 'x'"#
        );
        assert_eq!(
            error("[]{3}"),
            r#"invalid generator expression "[]{3}": empty class []"#
        );
        assert_eq!(
            error("x[abc"),
            r#"invalid generator expression "x[abc": unclosed [abc"#
        );
        assert_eq!(
            error("[a-"),
            r#"invalid generator expression "[a-": unclosed [a-"#
        );
        assert_eq!(
            error(r"[\q]{3}"),
            r#"invalid generator expression "[\q]{3}": unknown escape \q (classes are \w, \d, \a and \A; \\, \], \[ and \- stand for themselves)"#
        );
        assert_eq!(
            error(r"[a-\w]{3}"),
            r#"invalid generator expression "[a-\w]{3}": a range cannot end in a class such as \w"#
        );
        assert_eq!(
            error("[é]{3}"),
            r#"invalid generator expression "[é]{3}": 'é' is not allowed in a class: use printable ASCII characters"#
        );
        assert_eq!(
            error("[\t]{3}"),
            "invalid generator expression \"[\t]{3}\": '\\t' is not allowed in a class: use printable ASCII characters"
        );
    }

    #[test]
    fn parsed_expressions_keep_their_source() {
        let expression: Expression = "user[A-Z]{3}".parse().unwrap();
        assert_eq!(expression.as_str(), "user[A-Z]{3}");
        assert_eq!(expression.to_string(), "user[A-Z]{3}");
    }
}
