//! Label and field selectors, parsed and applied the way the Kubernetes apiserver does.
//!
//! `kubectl get -l ...`, `kubectl get --field-selector ...` and kube-rs list/watch calls
//! send these as the `labelSelector` and `fieldSelector` query parameters. The grammar,
//! the validation and the error texts follow `k8s.io/apimachinery/pkg/labels` and
//! `k8s.io/apimachinery/pkg/fields`; the set of field labels each resource accepts
//! follows the field-label conversion functions of `k8s.io/kubernetes/pkg/apis/core/v1`.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

/// A selector that could not be parsed, or that names a field label the resource
/// does not support. The text is the apiserver's, so it can go straight into a
/// `BadRequest` status.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

// ---------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------

/// How a label requirement relates its key to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One comma-separated term of a label selector.
#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and de-duplicated, as the apiserver's `sets.String` leaves them.
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: Option<&Value>) -> bool {
        let value = label_value(labels, &self.key);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => value.is_some_and(|v| self.has_value(v)),
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(|v| self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => self.compares(value),
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// `>` and `<` compare as integers; a missing or non-integer label never matches.
    fn compares(&self, value: Option<&str>) -> bool {
        let (Some(actual), Some(wanted)) = (
            value.and_then(|v| v.parse::<i64>().ok()),
            self.values.first().and_then(|v| v.parse::<i64>().ok()),
        ) else {
            return false;
        };
        match self.operator {
            Operator::GreaterThan => actual > wanted,
            _ => actual < wanted,
        }
    }
}

/// The value of label `key` in a `metadata.labels` object.
fn label_value<'a>(labels: Option<&'a Value>, key: &str) -> Option<&'a str> {
    labels?.get(key)?.as_str()
}

/// A parsed label selector: the AND of its requirements.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses a selector such as `app=web,tier in (a,b),!canary`. The empty string
    /// selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser::new(s);
        let mut requirements = parser.parse().map_err(SelectorError)?;
        // The apiserver sorts by key so that equal selectors print the same.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// Whether an object with these `metadata.labels` (possibly absent) is selected.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// Tokens of the label selector lexer (apimachinery's `labels.Token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Maps a literal to its token; identifiers are everything else.
fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(ch: u8) -> bool {
    matches!(ch, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits a label selector into tokens, byte by byte like the Go lexer.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn lex(&mut self) -> (Token, String) {
        while self.peek().is_some_and(is_whitespace) {
            self.pos += 1;
        }
        match self.peek() {
            None => (Token::EndOfString, String::new()),
            Some(ch) if is_special_symbol(ch) => self.scan_special_symbol(),
            Some(_) => self.scan_id_or_keyword(),
        }
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|ch| !is_special_symbol(ch) && !is_whitespace(ch))
        {
            self.pos += 1;
        }
        let literal = &self.s[start..self.pos];
        (keyword(literal).unwrap_or(Token::Identifier), literal.to_string())
    }

    /// Takes the longest run of special symbols that still forms an operator, so
    /// `!=` is one token but `=(` is two.
    fn scan_special_symbol(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        while self.peek().is_some_and(is_special_symbol) {
            match keyword(&self.s[start..=self.pos]) {
                Some(token) => last = Some((token, self.pos + 1)),
                None if last.is_some() => break,
                None => {}
            }
            self.pos += 1;
        }
        match last {
            Some((token, end)) => {
                self.pos = end;
                (token, self.s[start..end].to_string())
            }
            None => {
                let found = &self.s[start..self.pos];
                (Token::Error, format!("error expected: keyword found '{found}'"))
            }
        }
    }
}

/// Whether `in`/`notin` are operators (after a key) or plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// Recursive-descent parser over the scanned tokens (apimachinery's `labels.Parser`).
struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn new(s: &str) -> Self {
        let mut lexer = Lexer { s, pos: 0 };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            let done = item.0 == Token::EndOfString;
            items.push(item);
            if done {
                break;
            }
        }
        Self { items, position: 0 }
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        // Never run past the end-of-string token, whatever the grammar asks for.
        let (token, literal) = &self.items[self.position.min(self.items.len() - 1)];
        let token = match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => *token,
        };
        (token, literal.clone())
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.lookahead(context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!("found '{literal}', expected: identifier after ','"));
                            }
                        }
                        _ => return Err(format!("found '{literal}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return new_requirement(key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(key, operator, values.into_iter().collect())
    }

    /// Reads `[!]key`; a key followed by `,` or the end is an existence test.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let (mut token, mut literal) = self.consume(Context::Values);
        let negated = token == Token::DoesNotExist;
        if negated {
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        // The parser validates keys without a field path, hence the `<nil>`.
        validate_label_key(&literal, "<nil>")?;
        let (next, _) = self.lookahead(Context::Values);
        let unary = matches!(next, Token::EndOfString | Token::Comma);
        let operator = match (negated, unary) {
            (true, _) => Some(Operator::DoesNotExist),
            (false, true) => Some(Operator::Exists),
            (false, false) => None,
        };
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{literal}', expected: in, notin, =, ==, !=, gt, lt")),
        })
    }

    /// Parses `(a,b,c)`; empty members such as in `(a,,b)` or `()` are the empty value.
    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                if self.consume(Context::Values).0 != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!("found '{literal}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.insert(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    // A leading, doubled or trailing comma stands for the empty value.
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    match self.lookahead(Context::Values).0 {
                        Token::ClosedPar => {
                            values.insert(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            values.insert(String::new());
                        }
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; it may be empty (`k=`).
    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        match self.consume(Context::Values) {
            (Token::Identifier, literal) => Ok(BTreeSet::from([literal])),
            (_, literal) => Err(format!("found '{literal}', expected: identifier")),
        }
    }
}

/// Checks the values against the operator and the label value syntax, like
/// apimachinery's `NewRequirement`, and reports every problem at once.
fn new_requirement(key: String, operator: Operator, values: Vec<String>) -> Result<Requirement, String> {
    let mut errors = Vec::new();
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => errors.push(invalid(
            "values",
            "[]",
            "for 'in', 'notin' operators, values set can't be empty",
        )),
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => errors.push(invalid(
            "values",
            &format!("{values:?}"),
            "exact-match compatibility requires one single value",
        )),
        Operator::GreaterThan | Operator::LessThan => {
            for (i, value) in values.iter().enumerate() {
                if value.parse::<i64>().is_err() {
                    errors.push(invalid(
                        &format!("values[{i}]"),
                        &format!("{value:?}"),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, value) in values.iter().enumerate() {
        let problems = label_value_errors(value);
        if !problems.is_empty() {
            errors.push(invalid(
                &format!("values[{i}][{key}]"),
                &format!("{value:?}"),
                &problems.join("; "),
            ));
        }
    }
    match errors.len() {
        0 => Ok(Requirement { key, operator, values }),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

/// apimachinery's `field.Invalid(...).Error()`.
fn invalid(path: &str, quoted_value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {quoted_value}: {detail}")
}

fn validate_label_key(key: &str, path: &str) -> Result<(), String> {
    let problems = qualified_name_errors(key);
    if problems.is_empty() {
        return Ok(());
    }
    Err(invalid(path, &format!("{key:?}"), &problems.join("; ")))
}

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', \
     and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character";

fn anchored(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(&format!("^(?:{pattern})$")).expect("static regex"))
}

fn qualified_name_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    anchored(&RE, QUALIFIED_NAME_FMT)
}

fn dns1123_subdomain_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    anchored(&RE, DNS1123_SUBDOMAIN_FMT)
}

fn label_value_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    anchored(&RE, &format!("({QUALIFIED_NAME_FMT})?"))
}

/// apimachinery's `validation.RegexError`, examples and odd spacing included.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        examples.join(" or ")
    )
}

fn qualified_name_message() -> String {
    regex_error(
        QUALIFIED_NAME_MSG,
        QUALIFIED_NAME_FMT,
        &["MyName", "my.name", "123-abc"],
    )
}

/// apimachinery's `validation.IsQualifiedName`: `[prefix/]name`.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                errors.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|e| format!("prefix part {e}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                qualified_name_message()
            )]
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_string());
    }
    if !qualified_name_regex().is_match(name) {
        errors.push(format!("name part {}", qualified_name_message()));
    }
    errors
}

fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push("must be no more than 253 characters".to_string());
    }
    if !dns1123_subdomain_regex().is_match(value) {
        errors.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errors
}

/// apimachinery's `validation.IsValidLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !label_value_regex().is_match(value) {
        errors.push(regex_error(
            LABEL_VALUE_MSG,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

// ---------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed field selector: the AND of its terms.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses `a=b,c!=d` (`=`, `==`, `!=`; commas AND; values may be empty; backslash
    /// escapes `\,` `\=` `\\` as in apimachinery) and checks each field label is
    /// supported for `resource` (plural: "pods", "events", ...): error
    /// `field label not supported: X`.
    pub fn parse(resource: &str, s: &str) -> Result<Self, SelectorError> {
        let mut terms = parse_field_terms(s).map_err(SelectorError)?;
        // Conversion runs after parsing in the apiserver, so syntax errors win.
        for term in &mut terms {
            term.field = convert_field_label(resource, &term.field)
                .ok_or_else(|| SelectorError(format!("field label not supported: {}", term.field)))?
                .to_string();
        }
        Ok(Self { terms })
    }

    /// Whether `obj` (of `resource`) satisfies every term.
    pub fn matches(&self, resource: &str, obj: &Value) -> bool {
        self.terms.iter().all(|term| {
            let found = field_values(resource, obj, &term.field).contains(&term.value);
            found != term.negated
        })
    }

    /// The exact `metadata.name` this selector requires, if any (used to answer fast).
    pub fn required_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == "metadata.name" && !t.negated)
            .map(|t| t.value.as_str())
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// apimachinery's `fields.ParseSelector`, minus the label conversion.
fn parse_field_terms(selector: &str) -> Result<Vec<FieldTerm>, String> {
    let mut parts = split_field_terms(selector);
    parts.sort_unstable();
    let mut terms = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        let (field, operator, raw) = split_field_term(part)
            .ok_or_else(|| format!("invalid selector: '{selector}'; can't understand '{part}'"))?;
        terms.push(FieldTerm {
            field: field.to_string(),
            value: unescape_field_value(raw)?,
            negated: operator == "!=",
        });
    }
    Ok(terms)
}

/// Splits on commas that are not escaped with a backslash; escapes stay in place.
fn split_field_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in selector.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at its first operator, trying `!=` and `==` before `=`.
fn split_field_term(term: &str) -> Option<(&str, &'static str, &str)> {
    (0..term.len()).filter(|&i| term.is_char_boundary(i)).find_map(|i| {
        ["!=", "==", "="]
            .into_iter()
            .find(|op| term[i..].starts_with(op))
            .map(|op| (&term[..i], op, &term[i + op.len()..]))
    })
}

/// apimachinery's `fields.UnescapeValue`: `\\`, `\,` and `\=` are the only escapes,
/// and a bare `,` or `=` in a value is an error.
fn unescape_field_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!("invalid field selector: invalid escape sequence: \\{c}"));
            }
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            // Go prints the rune with %v, which is its code point.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    u32::from(c)
                ))
            }
            _ => out.push(c),
        }
    }
    if escaped {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// The field labels `resource` accepts beyond `metadata.name` and `metadata.namespace`.
fn resource_field_labels(resource: &str) -> &'static [&'static str] {
    match resource {
        "pods" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        "events" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "secrets" => &["type"],
        "namespaces" => &["status.phase"],
        _ => &[],
    }
}

/// The canonical name of a field label, or `None` if `resource` does not support it.
fn convert_field_label<'a>(resource: &str, label: &'a str) -> Option<&'a str> {
    match label {
        "metadata.name" | "metadata.namespace" => Some(label),
        // Old v1 clients still send `spec.host` for pods.
        "spec.host" if resource == "pods" => Some("spec.nodeName"),
        _ => resource_field_labels(resource).contains(&label).then_some(label),
    }
}

/// Value of a field label on an object, as the apiserver's field-label conversion
/// gives it (missing -> "").
pub fn field_value(resource: &str, obj: &Value, label: &str) -> String {
    field_values(resource, obj, label).join(",")
}

/// Every value a field label has; only `status.podIPs` can have several.
fn field_values(resource: &str, obj: &Value, label: &str) -> Vec<String> {
    if resource == "pods" {
        if let Some(values) = pod_field_values(obj, label) {
            return values;
        }
    }
    let supported =
        matches!(label, "metadata.name" | "metadata.namespace") || resource_field_labels(resource).contains(&label);
    if !supported {
        return vec![String::new()];
    }
    let pointer = match (resource, label) {
        ("events", "source") => "/source/component".to_string(),
        _ => format!("/{}", label.replace('.', "/")),
    };
    vec![scalar_text(obj.pointer(&pointer))]
}

/// Pod fields whose selectable value is not simply the JSON at the same path.
fn pod_field_values(pod: &Value, label: &str) -> Option<Vec<String>> {
    let ips: Vec<String> = pod
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|ip| scalar_text(ip.get("ip")))
        .collect();
    Some(match label {
        "spec.host" => vec![scalar_text(pod.pointer("/spec/nodeName"))],
        // hostNetwork defaults to false and selects as "true"/"false".
        "spec.hostNetwork" => {
            let on = pod.pointer("/spec/hostNetwork").and_then(Value::as_bool);
            vec![on.unwrap_or(false).to_string()]
        }
        // The apiserver takes the primary IP from podIPs, which podIP mirrors.
        "status.podIP" => vec![ips
            .first()
            .cloned()
            .unwrap_or_else(|| scalar_text(pod.pointer("/status/podIP")))],
        "status.podIPs" if ips.is_empty() => vec![String::new()],
        "status.podIPs" => ips,
        _ => return None,
    })
}

/// A JSON scalar as the string the apiserver compares against; null or missing is "".
fn scalar_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selects(selector: &str, l: &Value) -> bool {
        LabelSelector::parse(selector).unwrap().matches(Some(l))
    }

    #[test]
    fn empty_label_selector_selects_everything() {
        for s in ["", "   "] {
            let sel = LabelSelector::parse(s).unwrap();
            assert!(sel.is_empty());
            assert!(sel.matches(None));
            assert!(sel.matches(Some(&json!({"a": "b"}))));
        }
    }

    #[test]
    fn equality_operators() {
        let l = json!({"app": "web", "tier": "front"});
        assert!(selects("app=web", &l));
        assert!(selects("app==web", &l));
        assert!(selects("app = web , tier==front", &l));
        assert!(!selects("app=db", &l));
        assert!(selects("app!=db", &l));
        assert!(!selects("app!=web", &l));
        // A missing key satisfies != but not =.
        assert!(selects("missing!=x", &l));
        assert!(!selects("missing=x", &l));
        assert!(!selects("app=web,tier=back", &l));
    }

    #[test]
    fn empty_value_matches_empty_label() {
        assert!(selects("a=", &json!({"a": ""})));
        assert!(!selects("a=", &json!({"a": "x"})));
        assert!(!selects("a=", &json!({})));
        assert!(selects("a in (),b", &json!({"a": "", "b": "1"})));
    }

    #[test]
    fn set_operators() {
        let l = json!({"env": "prod"});
        assert!(selects("env in (dev, prod)", &l));
        assert!(!selects("env in (dev)", &l));
        assert!(selects("env notin (dev)", &l));
        assert!(!selects("env notin (dev,prod)", &l));
        assert!(selects("other notin (dev)", &l));
        assert!(!selects("other in (dev)", &l));
        // `in` is a value inside the parentheses.
        assert!(selects("x in (in,notin)", &json!({"x": "notin"})));
    }

    #[test]
    fn existence_operators() {
        let l = json!({"app": "web"});
        assert!(selects("app", &l));
        assert!(!selects("!app", &l));
        assert!(selects("!canary", &l));
        assert!(!selects("canary", &l));
        assert!(selects("app,!canary", &l));
        assert!(!LabelSelector::parse("app").unwrap().matches(None));
        assert!(LabelSelector::parse("!app").unwrap().matches(None));
    }

    #[test]
    fn numeric_comparisons() {
        let l = json!({"replicas": "3"});
        assert!(selects("replicas>2", &l));
        assert!(!selects("replicas>3", &l));
        assert!(selects("replicas<4", &l));
        assert!(!selects("missing<4", &l));
        let err = LabelSelector::parse("replicas>abc").unwrap_err().to_string();
        assert!(err.contains("the value must be an integer"), "{err}");
    }

    #[test]
    fn prefixed_keys() {
        let l = json!({"example.com/name": "x", "app.kubernetes.io/part-of": "flotilla"});
        assert!(selects("example.com/name=x", &l));
        assert!(selects("app.kubernetes.io/part-of in (flotilla)", &l));
    }

    #[test]
    fn label_syntax_errors_read_like_the_apiserver() {
        let err = |s: &str| LabelSelector::parse(s).unwrap_err().to_string();
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(err(",a"), "found ',', expected: !, identifier, or 'end of string'");
        assert_eq!(err("a in b"), "unable to parse requirement: found 'b' expected: '('");
        assert_eq!(
            err("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(err("a=b=c"), "found '=', expected: ',' or 'end of string'");
    }

    #[test]
    fn invalid_keys_and_values_are_rejected() {
        let err = LabelSelector::parse("-bad=x").unwrap_err().to_string();
        assert!(
            err.starts_with("unable to parse requirement: <nil>: Invalid value: \"-bad\": name part must consist of"),
            "{err}"
        );
        let err = LabelSelector::parse("a/b/c").unwrap_err().to_string();
        assert!(err.contains("a qualified name must consist"), "{err}");
        let err = LabelSelector::parse("Example.com/x").unwrap_err().to_string();
        assert!(err.contains("prefix part a lowercase RFC 1123 subdomain"), "{err}");
        let err = LabelSelector::parse("a=-x").unwrap_err().to_string();
        assert!(
            err.contains("values[0][a]: Invalid value: \"-x\": a valid label must be"),
            "{err}"
        );
        let long = format!("a={}", "x".repeat(64));
        let err = LabelSelector::parse(&long).unwrap_err().to_string();
        assert!(err.contains("must be no more than 63 characters"), "{err}");
    }

    #[test]
    fn regex_error_keeps_apimachinery_spacing() {
        assert!(qualified_name_message().contains("(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used"));
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"nodeName": "node-1", "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIP": "10.0.0.5",
                       "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]}
        })
    }

    fn field_selects(resource: &str, selector: &str, obj: &Value) -> bool {
        FieldSelector::parse(resource, selector).unwrap().matches(resource, obj)
    }

    #[test]
    fn pod_field_selectors() {
        let p = pod();
        assert!(field_selects("pods", "metadata.name=web-0", &p));
        assert!(field_selects(
            "pods",
            "metadata.name==web-0,metadata.namespace=default",
            &p
        ));
        assert!(!field_selects("pods", "metadata.name!=web-0", &p));
        assert!(field_selects("pods", "spec.nodeName=node-1", &p));
        assert!(field_selects("pods", "spec.host=node-1", &p));
        assert!(field_selects(
            "pods",
            "status.phase!=Succeeded,status.phase!=Failed",
            &p
        ));
        assert!(field_selects("pods", "spec.hostNetwork=false", &p));
        assert!(field_selects("pods", "status.podIP=10.0.0.5", &p));
        assert!(field_selects("pods", "status.podIPs=fd00::5", &p));
        assert!(!field_selects("pods", "status.podIPs!=fd00::5", &p));
        assert!(field_selects("pods", "spec.schedulerName=", &p));
        assert!(field_selects("pods", "status.nominatedNodeName=", &p));
        assert!(FieldSelector::parse("pods", "").unwrap().matches("pods", &p));
    }

    #[test]
    fn field_values_follow_conversion() {
        let p = pod();
        assert_eq!(field_value("pods", &p, "spec.hostNetwork"), "false");
        assert_eq!(field_value("pods", &p, "status.podIPs"), "10.0.0.5,fd00::5");
        assert_eq!(field_value("pods", &p, "spec.serviceAccountName"), "");
        let host = json!({"spec": {"hostNetwork": true}});
        assert_eq!(field_value("pods", &host, "spec.hostNetwork"), "true");
        let event = json!({
            "metadata": {"name": "e1"},
            "involvedObject": {"kind": "Pod", "name": "web-0", "uid": "u1"},
            "source": {"component": "kubelet", "host": "node-1"},
            "reportingComponent": "kubelet",
            "reason": "Started", "type": "Normal"
        });
        assert_eq!(field_value("events", &event, "source"), "kubelet");
        assert_eq!(field_value("events", &event, "involvedObject.uid"), "u1");
        assert_eq!(field_value("events", &event, "involvedObject.fieldPath"), "");
        assert!(field_selects(
            "events",
            "involvedObject.kind=Pod,involvedObject.name=web-0,type=Normal,reason=Started",
            &event
        ));
        let secret = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        assert!(field_selects("secrets", "type=Opaque", &secret));
        let ns = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
        assert!(field_selects("namespaces", "status.phase=Active", &ns));
    }

    #[test]
    fn unsupported_field_labels_are_rejected() {
        let err = |r: &str, s: &str| FieldSelector::parse(r, s).unwrap_err().to_string();
        assert_eq!(err("pods", "spec.foo=x"), "field label not supported: spec.foo");
        assert_eq!(err("configmaps", "type=x"), "field label not supported: type");
        assert_eq!(
            err("secrets", "status.phase=x"),
            "field label not supported: status.phase"
        );
        assert!(FieldSelector::parse("configmaps", "metadata.name=x").is_ok());
        assert!(FieldSelector::parse("serviceaccounts", "metadata.namespace=x").is_ok());
    }

    #[test]
    fn field_selector_escapes() {
        let cm = json!({"metadata": {"name": "a,b=c\\d"}});
        assert!(field_selects("configmaps", r"metadata.name=a\,b\=c\\d", &cm));
        let err = |s: &str| FieldSelector::parse("configmaps", s).unwrap_err().to_string();
        assert_eq!(
            err(r"metadata.name=a\x"),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            err(r"metadata.name=a\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            err("metadata.name=a=b"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            err("metadata.name"),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
    }

    #[test]
    fn required_name_is_the_positive_name_term() {
        let sel = FieldSelector::parse("pods", "status.phase=Running,metadata.name=web-0").unwrap();
        assert_eq!(sel.required_name(), Some("web-0"));
        let sel = FieldSelector::parse("pods", "metadata.name!=web-0").unwrap();
        assert_eq!(sel.required_name(), None);
        assert!(FieldSelector::parse("pods", ",,").unwrap().is_empty());
    }
}
