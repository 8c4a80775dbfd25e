//! SCIM filters (RFC 7644 §3.4.2.2) parsed once into a tree, which
//! `sql.rs` turns into a `WHERE` clause and [`Filter::matches`] evaluates
//! against one JSON value (a PATCH path's `emails[type eq "work"]`).
//!
//! Written here rather than taken from a crate: the one published Rust
//! parser (`scim-filter`) evaluates over in-memory collections, has no
//! depth limit (a hostile `((((…` would overflow the stack) and no
//! documentation. This one is a small recursive descent with limits on
//! length, terms and nesting, so every input is answered with a tree or
//! an `invalidFilter` message.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Longest filter accepted, in bytes.
pub(crate) const MAX_LEN: usize = 4096;
/// Most comparisons in one filter.
const MAX_TERMS: usize = 64;
/// Deepest nesting of parentheses, `not` and `[...]`.
const MAX_DEPTH: usize = 16;

/// An attribute path: `name`, `name.sub`, with the schema URN removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttrPath {
    /// Lower-cased: SCIM attribute names are case-insensitive.
    pub(crate) attr: String,
    pub(crate) sub: Option<String>,
}

impl AttrPath {
    /// `attr` or `attr.sub`, lower-cased, for matching against a table of
    /// known attributes.
    pub(crate) fn dotted(&self) -> String {
        match &self.sub {
            Some(s) => format!("{}.{s}", self.attr),
            None => self.attr.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

/// A comparison's right-hand side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Compare(AttrPath, Op, Literal),
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`, optionally followed by `.sub op value` or `.sub pr`:
    /// some element of the multi-valued `attr` matches the whole.
    Elem {
        attr: String,
        filter: Box<Filter>,
        then: Option<Box<Filter>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An attribute path or a keyword (`and`, `eq`, `true`, ...).
    Word(String),
    Str(String),
    Num(String),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    /// `.sub` right after `]`.
    Dot,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenBracket,
                    _ => Token::CloseBracket,
                });
            }
            '.' if matches!(out.last(), Some(Token::CloseBracket)) => {
                chars.next();
                out.push(Token::Dot);
            }
            '"' => {
                // A JSON string: let serde_json decide where it ends and
                // what its escapes mean.
                let rest = &s[i..];
                let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
                let value = match de.next() {
                    Some(Ok(v)) => v,
                    _ => return Err("a string value is not a valid JSON string".into()),
                };
                let end = i + de.byte_offset();
                out.push(Token::Str(value));
                while chars.peek().is_some_and(|&(j, _)| j < end) {
                    chars.next();
                }
            }
            c if c == '-' || c.is_ascii_digit() => {
                let mut num = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_digit() || matches!(d, '-' | '+' | '.' | 'e' | 'E') {
                        num.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Num(num));
            }
            c if c.is_ascii_alphabetic() || c == '$' || c == '_' => {
                let mut word = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || matches!(d, '.' | ':' | '_' | '-' | '$') {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(word));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

/// The core schemas' URNs, which may prefix an attribute name.
const URN_PREFIXES: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:user:",
    "urn:ietf:params:scim:schemas:core:2.0:group:",
];

/// Parses `name`, `name.sub` or `urn:…:User:name.sub`.
pub(crate) fn attr_path(word: &str) -> Result<AttrPath, String> {
    let lower = word.to_ascii_lowercase();
    let bare = URN_PREFIXES
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .unwrap_or(&lower);
    if bare.contains(':') {
        return Err(format!("unknown attribute {word:?}"));
    }
    let mut parts = bare.split('.');
    let attr = parts.next().unwrap_or_default();
    let sub = parts.next();
    let valid = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'))
    };
    if parts.next().is_some() || !valid(attr) || sub.is_some_and(|s| !valid(s)) {
        return Err(format!("{word:?} is not an attribute path"));
    }
    Ok(AttrPath {
        attr: attr.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    terms: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nests deeper than {MAX_DEPTH} levels"));
        }
        let out = f(self);
        self.depth -= 1;
        out
    }

    /// `or` binds loosest; chains are folded in a loop, not by recursion.
    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.next();
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.next();
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") && matches!(self.tokens.get(self.at + 1), Some(Token::Open)) {
            self.next();
            return self.nest(|p| Ok(Filter::Not(Box::new(p.group()?))));
        }
        if matches!(self.peek(), Some(Token::Open)) {
            return self.nest(Self::group);
        }
        self.attr_expression()
    }

    /// `( filter )`
    fn group(&mut self) -> Result<Filter, String> {
        self.next();
        let inner = self.or()?;
        match self.next() {
            Some(Token::Close) => Ok(inner),
            _ => Err("a parenthesis is not closed".into()),
        }
    }

    fn attr_expression(&mut self) -> Result<Filter, String> {
        let word = match self.next() {
            Some(Token::Word(w)) => w,
            Some(_) => return Err("expected an attribute name".into()),
            None => return Err("ends where an attribute name was expected".into()),
        };
        if matches!(self.peek(), Some(Token::OpenBracket)) {
            let path = attr_path(&word)?;
            if path.sub.is_some() {
                return Err(format!(
                    "{word:?}: a value filter follows a plain attribute"
                ));
            }
            self.next();
            let filter = self.nest(Self::or)?;
            if self.next() != Some(Token::CloseBracket) {
                return Err("a bracket is not closed".into());
            }
            let then = if self.peek() == Some(&Token::Dot) {
                self.next();
                let sub = match self.next() {
                    Some(Token::Word(w)) => w,
                    _ => return Err("expected a sub-attribute after \"].\"".into()),
                };
                Some(Box::new(self.comparison(attr_path(&sub)?)?))
            } else {
                None
            };
            return Ok(Filter::Elem {
                attr: path.attr,
                filter: Box::new(filter),
                then,
            });
        }
        let path = attr_path(&word)?;
        self.comparison(path)
    }

    fn comparison(&mut self, path: AttrPath) -> Result<Filter, String> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(format!("has more than {MAX_TERMS} comparisons"));
        }
        let op = match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path));
            }
            Some(Token::Word(w)) => {
                Op::parse(&w).ok_or_else(|| format!("{w:?} is not a comparison operator"))?
            }
            _ => return Err(format!("expected an operator after {:?}", path.dotted())),
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Literal::Str(s),
            Some(Token::Num(n)) => Literal::Num(
                n.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| format!("{n:?} is not a number"))?,
            ),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => {
                return Err(format!(
                    "expected a value (a quoted string, number, true, false or null) after {:?}",
                    path.dotted()
                ))
            }
        };
        Ok(Filter::Compare(path, op, value))
    }
}

impl Filter {
    /// The filter `s`, or why it is not one (the `detail` of a 400
    /// `invalidFilter`).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.len() > MAX_LEN {
            return Err(format!("is longer than {MAX_LEN} bytes"));
        }
        let tokens = tokenize(s)?;
        if tokens.is_empty() {
            return Err("is empty".into());
        }
        let mut p = Parser {
            tokens,
            at: 0,
            terms: 0,
            depth: 0,
        };
        let f = p.or()?;
        match p.peek() {
            None => Ok(f),
            Some(t) => Err(format!(
                "unexpected {} after a complete filter",
                describe(t)
            )),
        }
    }

    /// Whether one element of a multi-valued attribute (a JSON object, or a
    /// bare value as `value`) matches. Strings compare case-insensitively,
    /// as the attributes rosterd publishes are all `caseExact: false`.
    pub(crate) fn matches(&self, elem: &Value) -> bool {
        match self {
            Self::And(a, b) => a.matches(elem) && b.matches(elem),
            Self::Or(a, b) => a.matches(elem) || b.matches(elem),
            Self::Not(a) => !a.matches(elem),
            Self::Present(p) => field(elem, p).is_some_and(|v| !is_empty(v)),
            Self::Compare(p, op, lit) => field(elem, p).is_some_and(|v| compare(v, *op, lit)),
            Self::Elem { .. } => false,
        }
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("{w:?}"),
        Token::Str(_) => "a string".into(),
        Token::Num(n) => n.clone(),
        Token::Open => "\"(\"".into(),
        Token::Close => "\")\"".into(),
        Token::OpenBracket => "\"[\"".into(),
        Token::CloseBracket => "\"]\"".into(),
        Token::Dot => "\".\"".into(),
    }
}

fn field<'a>(elem: &'a Value, p: &AttrPath) -> Option<&'a Value> {
    let name = p.sub.as_deref().unwrap_or(&p.attr);
    match elem {
        Value::Object(o) => o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v),
        other if name == "value" => Some(other),
        _ => None,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn compare(v: &Value, op: Op, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let ord = match (v, lit) {
        (Value::String(a), Literal::Str(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match op {
                Op::Co => return a.contains(&b),
                Op::Sw => return a.starts_with(&b),
                Op::Ew => return a.ends_with(&b),
                _ => match (parse_time(&a), parse_time(&b)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => a.cmp(&b),
                },
            }
        }
        (Value::Bool(a), Literal::Bool(b)) => match op {
            Op::Eq | Op::Ne => a.cmp(b),
            _ => return false,
        },
        (Value::Number(a), Literal::Num(b)) => match a.as_f64().and_then(|a| a.partial_cmp(b)) {
            Some(o) => o,
            None => return false,
        },
        (Value::Null, Literal::Null) => Ordering::Equal,
        _ => return op == Op::Ne,
    };
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

/// A SCIM `dateTime` (xsd:dateTime, which RFC 3339 timestamps are).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
