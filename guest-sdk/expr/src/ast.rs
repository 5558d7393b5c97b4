//! The syntax tree. Its shape follows the JMESPath reference implementation: a projection is a
//! node with a left side (what yields the list) and a right side (applied to each element).

use crate::value::Value;

/// One expression node.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    /// `@`: the current node.
    Current,
    /// `name` or `"quoted name"`: a field of the current object; `null` for anything else.
    Field(String),
    /// `lhs.rhs`: `rhs` evaluated on the result of `lhs` (null stays null).
    Subexpr(Box<Ast>, Box<Ast>),
    /// `[n]` on the current node: the element at `n` (negative counts from the end).
    Index(i64),
    /// `[start:stop:step]` on the current node. Appears only as the left side of a projection.
    Slice {
        /// First index (default: 0, or the end for a negative step).
        start: Option<i64>,
        /// Index to stop before (default: the end, or before the start for a negative step).
        stop: Option<i64>,
        /// Step; 0 is an `invalid-value` error when evaluated, as the compliance suite has it.
        step: Option<i64>,
    },
    /// `lhs[*].rhs` (also after a slice): `rhs` on each element of the array `lhs`, nulls
    /// dropped; `null` when `lhs` is not an array.
    Projection(Box<Ast>, Box<Ast>),
    /// `lhs.*.rhs`: `rhs` on each value of the object `lhs`, nulls dropped.
    ValueProjection(Box<Ast>, Box<Ast>),
    /// `lhs[]`: the array `lhs` with nested arrays merged one level (the left side of a
    /// projection).
    Flatten(Box<Ast>),
    /// `lhs[?predicate].rhs`: `rhs` on each element of `lhs` for which `predicate` is truthy.
    FilterProjection {
        /// What yields the array.
        lhs: Box<Ast>,
        /// Evaluated on each element.
        predicate: Box<Ast>,
        /// Applied to each kept element.
        rhs: Box<Ast>,
    },
    /// `[a, b]`: an array of the results; `null` on a null current node.
    MultiList(Vec<Ast>),
    /// `{k: a, l: b}`: an object of the results; `null` on a null current node.
    MultiHash(Vec<(String, Ast)>),
    /// `` `json` `` or `'raw string'`.
    Literal(Value),
    /// `!expr`
    Not(Box<Ast>),
    /// `a && b`: `b` when `a` is truthy, else `a`.
    And(Box<Ast>, Box<Ast>),
    /// `a || b`: `a` when `a` is truthy, else `b`.
    Or(Box<Ast>, Box<Ast>),
    /// `a == b`, `a < b`, ...
    Compare(CmpOp, Box<Ast>, Box<Ast>),
    /// `a + b`, ... (weir extension)
    Arith(ArithOp, Box<Ast>, Box<Ast>),
    /// `-a` (weir extension)
    Negate(Box<Ast>),
    /// `a | b`: `b` evaluated on the result of `a`; ends a projection.
    Pipe(Box<Ast>, Box<Ast>),
    /// `name(args...)`; arity checked at parse time.
    Call(Function, Vec<Ast>),
    /// `&expr`: an expression passed to a function (`sort_by`, `map`, ...).
    ExpRef(Box<Ast>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Arithmetic operators (weir extension, as JMESPath's arithmetic proposal spells them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`: always a float.
    Div,
    /// `%`: integer when both sides are.
    Rem,
    /// `//`: floor division; integer when both sides are.
    IntDiv,
}

macro_rules! functions {
    ($( $variant:ident = $name:literal, $min:literal ..= $max:expr, $ext:literal; )*) => {
        /// A built-in function: JMESPath's, and weir's extensions.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Function { $(
            #[doc = concat!("`", $name, "`")]
            $variant,
        )* }

        impl Function {
            /// Every function.
            pub const ALL: &'static [Function] = &[$(Function::$variant),*];

            /// Its name in expressions.
            pub fn name(self) -> &'static str {
                match self { $(Function::$variant => $name,)* }
            }

            /// The fewest and most arguments it takes (`usize::MAX`: variadic).
            pub fn arity(self) -> (usize, usize) {
                match self { $(Function::$variant => ($min, $max),)* }
            }

            /// True for weir's extensions, false for the JMESPath specification's functions.
            pub fn is_extension(self) -> bool {
                match self { $(Function::$variant => $ext,)* }
            }

            /// The function of this name.
            pub fn by_name(name: &str) -> Option<Function> {
                match name { $($name => Some(Function::$variant),)* _ => None }
            }
        }
    };
}

const VARIADIC: usize = usize::MAX;

functions! {
    Abs = "abs", 1..=1, false;
    Avg = "avg", 1..=1, false;
    Ceil = "ceil", 1..=1, false;
    Contains = "contains", 2..=2, false;
    EndsWith = "ends_with", 2..=2, false;
    Floor = "floor", 1..=1, false;
    Join = "join", 2..=2, false;
    Keys = "keys", 1..=1, false;
    Length = "length", 1..=1, false;
    Map = "map", 2..=2, false;
    Max = "max", 1..=1, false;
    MaxBy = "max_by", 2..=2, false;
    Merge = "merge", 1..=VARIADIC, false;
    Min = "min", 1..=1, false;
    MinBy = "min_by", 2..=2, false;
    NotNull = "not_null", 1..=VARIADIC, false;
    Reverse = "reverse", 1..=1, false;
    Sort = "sort", 1..=1, false;
    SortBy = "sort_by", 2..=2, false;
    StartsWith = "starts_with", 2..=2, false;
    Sum = "sum", 1..=1, false;
    ToArray = "to_array", 1..=1, false;
    ToNumber = "to_number", 1..=1, false;
    ToString = "to_string", 1..=1, false;
    Type = "type", 1..=1, false;
    Values = "values", 1..=1, false;
    // weir's extensions
    Lower = "lower", 1..=1, true;
    Upper = "upper", 1..=1, true;
    Substr = "substr", 2..=3, true;
    Concat = "concat", 1..=VARIADIC, true;
    Replace = "replace", 3..=3, true;
    RegexMatch = "regex_match", 2..=2, true;
    FromEpochSeconds = "from_epoch_seconds", 1..=1, true;
    FromEpochMillis = "from_epoch_millis", 1..=1, true;
    FromEpochMicros = "from_epoch_micros", 1..=1, true;
    ToIso8601 = "to_iso8601", 1..=1, true;
    TruncateDay = "truncate_day", 1..=1, true;
    TruncateHour = "truncate_hour", 1..=1, true;
    Date = "date", 1..=1, true;
    Sha256 = "sha256", 1..=2, true;
    Coalesce = "coalesce", 1..=VARIADIC, true;
    Cast = "cast", 2..=2, true;
}
