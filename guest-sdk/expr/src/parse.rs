//! Lexer and Pratt parser. Binding powers and the projection rules follow the JMESPath
//! reference implementation, so expressions group exactly as the specification's examples show;
//! arithmetic (an extension) binds tighter than comparisons and looser than projections.

use crate::ast::{ArithOp, Ast, CmpOp, Function};
use crate::value::Value;
use crate::ParseError;

/// Nesting beyond this is refused: evaluation recurses on the tree, and a config or a fuzzer
/// must not be able to overflow the stack.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Literal(Value),
    Number(i64),
    Dot,
    Star,
    Flatten,
    Filter,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Colon,
    Pipe,
    Or,
    And,
    Not,
    Cmp(CmpOp),
    At,
    Ampersand,
    Plus,
    Minus,
    Slash,
    SlashSlash,
    Percent,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier `{s}`"),
            Tok::Quoted(s) => format!("quoted identifier \"{s}\""),
            Tok::Literal(v) => format!("literal `{v}`"),
            Tok::Number(n) => format!("number {n}"),
            Tok::Eof => "end of the expression".into(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Dot => ".",
            Tok::Star => "*",
            Tok::Flatten => "[]",
            Tok::Filter => "[?",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Pipe => "|",
            Tok::Or => "||",
            Tok::And => "&&",
            Tok::Not => "!",
            Tok::Cmp(CmpOp::Eq) => "==",
            Tok::Cmp(CmpOp::Ne) => "!=",
            Tok::Cmp(CmpOp::Lt) => "<",
            Tok::Cmp(CmpOp::Le) => "<=",
            Tok::Cmp(CmpOp::Gt) => ">",
            Tok::Cmp(CmpOp::Ge) => ">=",
            Tok::At => "@",
            Tok::Ampersand => "&",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Slash => "/",
            Tok::SlashSlash => "//",
            Tok::Percent => "%",
            _ => "?",
        }
    }

    /// Left binding power: how tightly the token binds to what stands before it.
    fn lbp(&self) -> u8 {
        match self {
            Tok::Pipe => 1,
            Tok::Or => 2,
            Tok::And => 3,
            Tok::Cmp(_) => 5,
            Tok::Plus | Tok::Minus => 6,
            // `*` after an expression is multiplication; as a wildcard it only starts or follows
            // `.` / `[`, where it is consumed as a prefix.
            Tok::Star | Tok::Slash | Tok::SlashSlash | Tok::Percent => 7,
            Tok::Flatten => 9,
            Tok::Filter => 21,
            Tok::Dot => 40,
            Tok::Not => 45,
            Tok::LBrace => 50,
            Tok::LBracket => 55,
            Tok::LParen => 60,
            _ => 0,
        }
    }
}

/// Right binding power of a wildcard's projection.
const STAR_BP: u8 = 20;
/// Below this binding power a token ends a projection's right-hand side.
const PROJECTION_STOP: u8 = 10;
/// Unary minus: tighter than arithmetic, looser than `.` so `-a.b` is `-(a.b)`.
const NEGATE_BP: u8 = 30;

struct Lexer<'a> {
    chars: Vec<(usize, char)>,
    i: usize,
    source: &'a str,
}

fn error(source: &str, position: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        position,
        message: message.into(),
        source: source.to_string(),
    }
}

impl<'a> Lexer<'a> {
    fn tokens(source: &'a str) -> Result<Vec<(usize, Tok)>, ParseError> {
        let mut lx = Lexer {
            chars: source.chars().enumerate().collect(),
            i: 0,
            source,
        };
        let mut out = Vec::new();
        loop {
            let tok = lx.next()?;
            let done = tok.1 == Tok::Eof;
            out.push(tok);
            if done {
                return Ok(out);
            }
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).map(|&(_, c)| c)
    }

    fn err(&self, position: usize, message: impl Into<String>) -> ParseError {
        error(self.source, position, message)
    }

    fn next(&mut self) -> Result<(usize, Tok), ParseError> {
        while self.peek(0).is_some_and(char::is_whitespace) {
            self.i += 1;
        }
        let start = self.i;
        let Some(c) = self.peek(0) else {
            return Ok((start, Tok::Eof));
        };
        let two = |lx: &mut Self, second: char, yes: Tok, no: Tok| {
            if lx.peek(1) == Some(second) {
                lx.i += 2;
                yes
            } else {
                lx.i += 1;
                no
            }
        };
        let tok = match c {
            'a'..='z' | 'A'..='Z' | '_' => {
                let mut s = String::new();
                while let Some(c) = self
                    .peek(0)
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    s.push(c);
                    self.i += 1;
                }
                Tok::Ident(s)
            }
            '0'..='9' => self.number(start)?,
            '-' if self.peek(1).is_some_and(|c| c.is_ascii_digit()) => self.number(start)?,
            '"' => {
                let text = self.delimited('"', start)?;
                let raw = format!("\"{text}\"");
                let s = serde_json::from_str::<String>(&raw)
                    .map_err(|e| self.err(start, format!("invalid quoted identifier: {e}")))?;
                Tok::Quoted(s)
            }
            '\'' => Tok::Literal(Value::String(
                self.delimited('\'', start)?.replace("\\'", "'"),
            )),
            '`' => {
                let text = self.delimited('`', start)?.replace("\\`", "`");
                // Like the reference implementation: text that is not JSON reads as a string
                // (a deprecated form kept for compatibility).
                let value = Value::parse_json(&text)
                    .or_else(|_| Value::parse_json(&format!("\"{}\"", text.trim_start())))
                    .map_err(|e| self.err(start, format!("invalid JSON literal: {e}")))?;
                Tok::Literal(value)
            }
            '.' => self.single(Tok::Dot),
            '*' => self.single(Tok::Star),
            '@' => self.single(Tok::At),
            ']' => self.single(Tok::RBracket),
            '{' => self.single(Tok::LBrace),
            '}' => self.single(Tok::RBrace),
            '(' => self.single(Tok::LParen),
            ')' => self.single(Tok::RParen),
            ',' => self.single(Tok::Comma),
            ':' => self.single(Tok::Colon),
            '+' => self.single(Tok::Plus),
            '-' => self.single(Tok::Minus),
            '%' => self.single(Tok::Percent),
            '[' => match self.peek(1) {
                Some(']') => {
                    self.i += 2;
                    Tok::Flatten
                }
                Some('?') => {
                    self.i += 2;
                    Tok::Filter
                }
                _ => self.single(Tok::LBracket),
            },
            '|' => two(self, '|', Tok::Or, Tok::Pipe),
            '&' => two(self, '&', Tok::And, Tok::Ampersand),
            '!' => two(self, '=', Tok::Cmp(CmpOp::Ne), Tok::Not),
            '<' => two(self, '=', Tok::Cmp(CmpOp::Le), Tok::Cmp(CmpOp::Lt)),
            '>' => two(self, '=', Tok::Cmp(CmpOp::Ge), Tok::Cmp(CmpOp::Gt)),
            '/' => two(self, '/', Tok::SlashSlash, Tok::Slash),
            '=' if self.peek(1) == Some('=') => {
                self.i += 2;
                Tok::Cmp(CmpOp::Eq)
            }
            '=' => return Err(self.err(start, "`=` is not an operator; compare with `==`")),
            other => return Err(self.err(start, format!("unexpected character `{other}`"))),
        };
        Ok((start, tok))
    }

    fn single(&mut self, tok: Tok) -> Tok {
        self.i += 1;
        tok
    }

    fn number(&mut self, start: usize) -> Result<Tok, ParseError> {
        let mut s = String::new();
        if self.peek(0) == Some('-') {
            s.push('-');
            self.i += 1;
        }
        while let Some(c) = self.peek(0).filter(char::is_ascii_digit) {
            s.push(c);
            self.i += 1;
        }
        s.parse::<i64>()
            .map(Tok::Number)
            .map_err(|_| self.err(start, format!("number `{s}` is out of range")))
    }

    /// The text up to the closing `delim` (a backslash escapes any character), consuming both
    /// delimiters. Escapes are left in the text for the caller to interpret.
    fn delimited(&mut self, delim: char, start: usize) -> Result<String, ParseError> {
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek(0) {
                None => {
                    return Err(self.err(start, format!("unterminated {delim}...{delim}")));
                }
                Some('\\') => {
                    s.push('\\');
                    if let Some(c) = self.peek(1) {
                        s.push(c);
                    }
                    self.i += 2;
                }
                Some(c) if c == delim => {
                    self.i += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

struct Parser<'a> {
    tokens: Vec<(usize, Tok)>,
    i: usize,
    depth: usize,
    source: &'a str,
}

/// Parses an expression.
pub(crate) fn parse(source: &str) -> Result<Ast, ParseError> {
    let mut p = Parser {
        tokens: Lexer::tokens(source)?,
        i: 0,
        depth: 0,
        source,
    };
    let ast = p.expression(0)?;
    match p.current() {
        Tok::Eof => Ok(ast),
        other => Err(p.err(format!("unexpected {}", other.describe()))),
    }
}

impl Parser<'_> {
    fn current(&self) -> &Tok {
        self.tokens.get(self.i).map_or(&Tok::Eof, |(_, t)| t)
    }

    fn lookahead(&self, n: usize) -> &Tok {
        self.tokens.get(self.i + n).map_or(&Tok::Eof, |(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.i)
            .or(self.tokens.last())
            .map_or(0, |(p, _)| *p)
    }

    fn err(&self, message: impl Into<String>) -> ParseError {
        error(self.source, self.position(), message)
    }

    fn advance(&mut self) -> Tok {
        let tok = self.current().clone();
        if self.i < self.tokens.len() {
            self.i += 1;
        }
        tok
    }

    fn expect(&mut self, want: &Tok) -> Result<(), ParseError> {
        if self.current() == want {
            self.advance();
            Ok(())
        } else {
            Err(self.err(format!(
                "expected `{}`, found {}",
                want.symbol(),
                self.current().describe()
            )))
        }
    }

    fn expression(&mut self, rbp: u8) -> Result<Ast, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("expression nests deeper than {MAX_DEPTH} levels")));
        }
        let mut left = self.nud()?;
        while rbp < self.current().lbp() {
            left = self.led(left)?;
        }
        self.depth -= 1;
        Ok(left)
    }

    /// A token at the start of an expression.
    fn nud(&mut self) -> Result<Ast, ParseError> {
        let start = self.position();
        match self.advance() {
            Tok::Literal(v) => Ok(Ast::Literal(v)),
            Tok::Ident(name) => Ok(Ast::Field(name)),
            Tok::Quoted(name) => {
                if *self.current() == Tok::LParen {
                    return Err(self.err("a function name can't be quoted"));
                }
                Ok(Ast::Field(name))
            }
            Tok::Star => {
                let rhs = self.projection_rhs(STAR_BP)?;
                Ok(Ast::ValueProjection(Box::new(Ast::Current), Box::new(rhs)))
            }
            Tok::Filter => self.filter(Ast::Current),
            Tok::LBrace => self.multi_hash(),
            Tok::Flatten => {
                let rhs = self.projection_rhs(Tok::Flatten.lbp())?;
                Ok(Ast::Projection(
                    Box::new(Ast::Flatten(Box::new(Ast::Current))),
                    Box::new(rhs),
                ))
            }
            Tok::LBracket => match (self.current(), self.lookahead(1)) {
                (Tok::Number(_) | Tok::Colon, _) => {
                    let index = self.index_expression()?;
                    self.project_if_slice(Ast::Current, index)
                }
                (Tok::Star, Tok::RBracket) => {
                    self.advance();
                    self.advance();
                    let rhs = self.projection_rhs(STAR_BP)?;
                    Ok(Ast::Projection(Box::new(Ast::Current), Box::new(rhs)))
                }
                _ => self.multi_list(),
            },
            Tok::At => Ok(Ast::Current),
            Tok::Ampersand => Ok(Ast::ExpRef(Box::new(self.expression(0)?))),
            Tok::Not => Ok(Ast::Not(Box::new(self.expression(Tok::Not.lbp())?))),
            Tok::Minus => Ok(Ast::Negate(Box::new(self.expression(NEGATE_BP)?))),
            Tok::LParen => {
                let inner = self.expression(0)?;
                self.expect(&Tok::RParen)?;
                Ok(inner)
            }
            Tok::Number(n) => Err(error(
                self.source,
                start,
                format!("a bare number ({n}) is not an expression; write a literal: `{n}`"),
            )),
            other => Err(error(
                self.source,
                start,
                format!("unexpected {}", other.describe()),
            )),
        }
    }

    /// A token after a complete left-hand expression.
    fn led(&mut self, left: Ast) -> Result<Ast, ParseError> {
        let tok = self.advance();
        let b = |a: Ast| Box::new(a);
        match tok {
            Tok::Dot => {
                if *self.current() == Tok::Star {
                    self.advance();
                    let rhs = self.projection_rhs(Tok::Dot.lbp())?;
                    return Ok(Ast::ValueProjection(b(left), b(rhs)));
                }
                let rhs = self.dot_rhs(Tok::Dot.lbp())?;
                Ok(Ast::Subexpr(b(left), b(rhs)))
            }
            Tok::Pipe => Ok(Ast::Pipe(b(left), b(self.expression(Tok::Pipe.lbp())?))),
            Tok::Or => Ok(Ast::Or(b(left), b(self.expression(Tok::Or.lbp())?))),
            Tok::And => Ok(Ast::And(b(left), b(self.expression(Tok::And.lbp())?))),
            Tok::Cmp(op) => Ok(Ast::Compare(op, b(left), b(self.expression(5)?))),
            Tok::Plus => self.arith(ArithOp::Add, left, 6),
            Tok::Minus => self.arith(ArithOp::Sub, left, 6),
            Tok::Star => self.arith(ArithOp::Mul, left, 7),
            Tok::Slash => self.arith(ArithOp::Div, left, 7),
            Tok::SlashSlash => self.arith(ArithOp::IntDiv, left, 7),
            Tok::Percent => self.arith(ArithOp::Rem, left, 7),
            Tok::LParen => self.call(left),
            Tok::Filter => self.filter(left),
            Tok::Flatten => {
                let rhs = self.projection_rhs(Tok::Flatten.lbp())?;
                Ok(Ast::Projection(b(Ast::Flatten(b(left))), b(rhs)))
            }
            Tok::LBracket => match self.current() {
                Tok::Number(_) | Tok::Colon => {
                    let index = self.index_expression()?;
                    self.project_if_slice(left, index)
                }
                _ => {
                    self.expect(&Tok::Star)?;
                    self.expect(&Tok::RBracket)?;
                    let rhs = self.projection_rhs(STAR_BP)?;
                    Ok(Ast::Projection(b(left), b(rhs)))
                }
            },
            other => {
                self.i -= 1;
                Err(self.err(format!("unexpected {}", other.describe())))
            }
        }
    }

    fn arith(&mut self, op: ArithOp, left: Ast, bp: u8) -> Result<Ast, ParseError> {
        let right = self.expression(bp)?;
        Ok(Ast::Arith(op, Box::new(left), Box::new(right)))
    }

    fn call(&mut self, name: Ast) -> Result<Ast, ParseError> {
        // `(` was consumed; its position is the previous token's.
        let open = self.tokens.get(self.i - 1).map_or(0, |(p, _)| *p);
        let Ast::Field(name) = name else {
            return Err(error(
                self.source,
                open,
                "only a function name can be called",
            ));
        };
        let function = Function::by_name(&name)
            .ok_or_else(|| error(self.source, open, format!("unknown function `{name}()`")))?;
        let mut args = Vec::new();
        while *self.current() != Tok::RParen {
            args.push(self.expression(0)?);
            match self.current() {
                Tok::Comma => {
                    self.advance();
                    if *self.current() == Tok::RParen {
                        return Err(self.err("expected an argument after `,`"));
                    }
                }
                Tok::RParen => {}
                other => {
                    return Err(self.err(format!(
                        "expected `,` or `)` in the arguments of {name}(), found {}",
                        other.describe()
                    )))
                }
            }
        }
        self.advance();
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            let takes = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(error(
                self.source,
                open,
                format!("{name}() takes {takes} arguments, not {}", args.len()),
            ));
        }
        Ok(Ast::Call(function, args))
    }

    fn filter(&mut self, left: Ast) -> Result<Ast, ParseError> {
        let predicate = self.expression(0)?;
        self.expect(&Tok::RBracket)?;
        let rhs = if *self.current() == Tok::Flatten {
            Ast::Current
        } else {
            self.projection_rhs(Tok::Filter.lbp())?
        };
        Ok(Ast::FilterProjection {
            lhs: Box::new(left),
            predicate: Box::new(predicate),
            rhs: Box::new(rhs),
        })
    }

    /// After `[`: `n]` or a slice `a:b:c]`.
    fn index_expression(&mut self) -> Result<Ast, ParseError> {
        if *self.lookahead(1) == Tok::Colon || *self.current() == Tok::Colon {
            return self.slice();
        }
        let Tok::Number(n) = self.advance() else {
            return Err(self.err("expected an index"));
        };
        self.expect(&Tok::RBracket)?;
        Ok(Ast::Index(n))
    }

    fn slice(&mut self) -> Result<Ast, ParseError> {
        let mut parts = [None; 3];
        let mut part = 0;
        while *self.current() != Tok::RBracket {
            match self.current() {
                Tok::Colon => {
                    part += 1;
                    if part == 3 {
                        return Err(self.err("a slice has at most three parts"));
                    }
                    self.advance();
                }
                Tok::Number(n) => {
                    parts[part] = Some(*n);
                    self.advance();
                }
                other => {
                    return Err(self.err(format!("unexpected {} in a slice", other.describe())))
                }
            }
        }
        self.expect(&Tok::RBracket)?;
        Ok(Ast::Slice {
            start: parts[0],
            stop: parts[1],
            step: parts[2],
        })
    }

    fn project_if_slice(&mut self, left: Ast, index: Ast) -> Result<Ast, ParseError> {
        let is_slice = matches!(index, Ast::Slice { .. });
        let expr = Ast::Subexpr(Box::new(left), Box::new(index));
        if is_slice {
            let rhs = self.projection_rhs(STAR_BP)?;
            Ok(Ast::Projection(Box::new(expr), Box::new(rhs)))
        } else {
            Ok(expr)
        }
    }

    /// What follows a projection: nothing (the element itself), or `.x`, `[..]`, `[?..]`.
    fn projection_rhs(&mut self, bp: u8) -> Result<Ast, ParseError> {
        match self.current() {
            t if t.lbp() < PROJECTION_STOP => Ok(Ast::Current),
            Tok::LBracket | Tok::Filter => self.expression(bp),
            Tok::Dot => {
                self.advance();
                self.dot_rhs(bp)
            }
            other => Err(self.err(format!(
                "unexpected {} after a projection",
                other.describe()
            ))),
        }
    }

    /// What may follow `.`: a field, `*`, a multi-select list or hash.
    fn dot_rhs(&mut self, bp: u8) -> Result<Ast, ParseError> {
        match self.current() {
            Tok::Ident(_) | Tok::Quoted(_) | Tok::Star => self.expression(bp),
            Tok::LBracket => {
                self.advance();
                self.multi_list()
            }
            Tok::LBrace => {
                self.advance();
                self.multi_hash()
            }
            other => Err(self.err(format!(
                "expected a field, `*`, `[` or `{{` after `.`, found {}",
                other.describe()
            ))),
        }
    }

    /// After `[`: `a, b]`.
    fn multi_list(&mut self) -> Result<Ast, ParseError> {
        let mut items = Vec::new();
        loop {
            items.push(self.expression(0)?);
            match self.advance() {
                Tok::Comma => {}
                Tok::RBracket => return Ok(Ast::MultiList(items)),
                other => {
                    self.i -= 1;
                    return Err(
                        self.err(format!("expected `,` or `]`, found {}", other.describe()))
                    );
                }
            }
        }
    }

    /// After `{`: `key: expr, ...}`.
    fn multi_hash(&mut self) -> Result<Ast, ParseError> {
        let mut pairs: Vec<(String, Ast)> = Vec::new();
        loop {
            let key = match self.advance() {
                Tok::Ident(k) | Tok::Quoted(k) => k,
                other => {
                    self.i -= 1;
                    return Err(self.err(format!(
                        "expected a key in `{{key: expr}}`, found {}",
                        other.describe()
                    )));
                }
            };
            self.expect(&Tok::Colon)?;
            let value = self.expression(0)?;
            pairs.push((key, value));
            match self.advance() {
                Tok::Comma => {}
                Tok::RBrace => return Ok(Ast::MultiHash(pairs)),
                other => {
                    self.i -= 1;
                    return Err(
                        self.err(format!("expected `,` or `}}`, found {}", other.describe()))
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ast {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn field(s: &str) -> Box<Ast> {
        Box::new(Ast::Field(s.into()))
    }

    #[test]
    fn groups_like_the_reference() {
        assert_eq!(p("a.b"), Ast::Subexpr(field("a"), field("b")));
        assert_eq!(
            p("a[*].b"),
            Ast::Projection(field("a"), field("b")),
            "a projection's rhs is the rest of the chain"
        );
        assert_eq!(
            p("a[*].b | c"),
            Ast::Pipe(
                Box::new(Ast::Projection(field("a"), field("b"))),
                field("c")
            )
        );
        assert_eq!(p("a[0]"), Ast::Subexpr(field("a"), Box::new(Ast::Index(0))));
        assert!(matches!(p("a[-1:]"), Ast::Projection(..)));
        assert_eq!(
            p("a || b && c"),
            Ast::Or(field("a"), Box::new(Ast::And(field("b"), field("c"))))
        );
        assert!(matches!(p("foo[?a > `1`].b"), Ast::FilterProjection { .. }));
        assert!(matches!(p("a[].b[]"), Ast::Projection(..)));
    }

    #[test]
    fn arithmetic_binds_between_comparison_and_projection() {
        let Ast::Compare(CmpOp::Gt, l, _) = p("a + b * c > `1`") else {
            panic!("comparison at the top");
        };
        let Ast::Arith(ArithOp::Add, _, r) = *l else {
            panic!("+ below the comparison");
        };
        assert!(matches!(*r, Ast::Arith(ArithOp::Mul, ..)));
        assert!(matches!(p("-a.b"), Ast::Negate(x) if matches!(*x, Ast::Subexpr(..))));
        assert!(matches!(p("a - `1`"), Ast::Arith(ArithOp::Sub, ..)));
        assert!(matches!(p("a // `2`"), Ast::Arith(ArithOp::IntDiv, ..)));
    }

    #[test]
    fn literals() {
        assert_eq!(
            p("`[1, 2]`"),
            Ast::Literal(Value::parse_json("[1,2]").unwrap())
        );
        assert_eq!(p("'it\\'s'"), Ast::Literal(Value::String("it's".into())));
        assert_eq!(p("`foo`"), Ast::Literal(Value::String("foo".into())));
        assert_eq!(p("\"a b\""), Ast::Field("a b".into()));
    }

    #[test]
    fn errors_carry_the_position() {
        let cases = [
            ("foo.", 4, "after `.`"),
            ("foo[1", 5, "expected `]`"),
            ("a = b", 2, "=="),
            ("nope(a)", 4, "unknown function"),
            ("length(a, b)", 6, "takes 1"),
            ("`\"a`", 0, "JSON"),
            ("a ~ b", 2, "unexpected character"),
            ("foo bar", 4, "unexpected identifier"),
            ("a[1", 3, "expected `]`"),
            ("1", 0, "bare number"),
        ];
        for (expr, position, needle) in cases {
            let e = parse(expr).expect_err(expr);
            assert_eq!(e.position, position, "{expr}: {e}");
            assert!(e.message.contains(needle), "{expr}: {e}");
        }
        let shown = parse("foo[1").unwrap_err().to_string();
        assert!(shown.contains("foo[1\n       ^"), "{shown}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "(".repeat(10_000) + "a" + &")".repeat(10_000);
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
        let not_so_deep = "(".repeat(100) + "a" + &")".repeat(100);
        assert_eq!(p(&not_so_deep), Ast::Field("a".into()));
    }
}
