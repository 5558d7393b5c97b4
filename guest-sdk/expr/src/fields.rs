//! What an expression reads from the row, so a plugin can declare it and only that crosses into
//! the sandbox: fields at dotted paths into structs, and lists of which only the length counts.

use std::collections::BTreeSet;

use crate::ast::{Ast, Function};

/// What an expression reads from the row (see [`crate::Expr::reads`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// Dotted paths read in full: `amount`, `customer.name`. Sorted, without duplicates.
    pub paths: Vec<String>,
    /// Dotted paths read only through `length(...)`: of a list there, only its length (and
    /// whether it is null) is read, not its elements. Sorted, without duplicates.
    pub lengths: Vec<String>,
}

impl Reads {
    /// Adds what `other` reads.
    pub fn extend(&mut self, other: Reads) {
        self.paths.extend(other.paths);
        self.lengths.extend(other.lengths);
        for v in [&mut self.paths, &mut self.lengths] {
            v.sort();
            v.dedup();
        }
    }

    /// The top-level fields read, sorted.
    pub fn roots(&self) -> Vec<String> {
        let roots: BTreeSet<&str> = self
            .paths
            .iter()
            .chain(&self.lengths)
            .map(|p| p.split('.').next().unwrap_or(p))
            .collect();
        roots.into_iter().map(str::to_string).collect()
    }
}

/// What `ast` reads from the row, or `None` when it may read the whole row.
pub(crate) fn reads(ast: &Ast) -> Option<Reads> {
    let mut found = Found::default();
    visit(ast, true, &mut found).then(|| Reads {
        paths: found.paths.into_iter().collect(),
        lengths: found.lengths.into_iter().collect(),
    })
}

#[derive(Default)]
struct Found {
    paths: BTreeSet<String>,
    lengths: BTreeSet<String>,
}

/// The dotted path when `ast` is nothing but fields into objects. A name with a dot in it
/// (`"a.b"`) can't be told from a path, so it ends the path before it.
pub(crate) fn path(ast: &Ast) -> Option<String> {
    match ast {
        Ast::Field(name) if !name.contains('.') && !name.is_empty() => Some(name.clone()),
        Ast::Subexpr(l, r) => Some(format!("{}.{}", path(l)?, path(r)?)),
        _ => None,
    }
}

/// Collects what is read from the row when `at_root`; false when anything may be read.
fn visit(ast: &Ast, at_root: bool, found: &mut Found) -> bool {
    if at_root {
        if let Some(p) = path(ast) {
            found.paths.insert(p);
            return true;
        }
        if let Ast::Call(Function::Length, args) = ast {
            if let [arg] = args.as_slice() {
                if let Some(p) = path(arg) {
                    found.lengths.insert(p);
                    return true;
                }
            }
        }
    }
    match ast {
        Ast::Field(name) => {
            if at_root {
                found.paths.insert(name.clone());
            }
            true
        }
        // The row itself (`@`, `*`, `keys(@)`...) may read every column.
        Ast::Current => !at_root,
        Ast::Literal(_) | Ast::Index(_) | Ast::Slice { .. } => true,
        // The right side sees what the left side yields, not the row.
        Ast::Subexpr(lhs, rhs)
        | Ast::Projection(lhs, rhs)
        | Ast::Pipe(lhs, rhs)
        | Ast::ValueProjection(lhs, rhs) => visit(lhs, at_root, found) && visit(rhs, false, found),
        Ast::FilterProjection {
            lhs,
            predicate,
            rhs,
        } => {
            visit(lhs, at_root, found) && visit(predicate, false, found) && visit(rhs, false, found)
        }
        Ast::Flatten(x) | Ast::Not(x) | Ast::Negate(x) => visit(x, at_root, found),
        // An expression reference is applied to the elements a function is given.
        Ast::ExpRef(x) => visit(x, false, found),
        Ast::And(a, b) | Ast::Or(a, b) | Ast::Compare(_, a, b) | Ast::Arith(_, a, b) => {
            visit(a, at_root, found) && visit(b, at_root, found)
        }
        Ast::MultiList(items) | Ast::Call(_, items) => {
            items.iter().all(|x| visit(x, at_root, found))
        }
        Ast::MultiHash(pairs) => pairs.iter().all(|(_, x)| visit(x, at_root, found)),
    }
}

#[cfg(test)]
mod tests {
    use super::Reads;
    use crate::Expr;

    fn fields(s: &str) -> Option<Vec<String>> {
        Expr::parse(s).unwrap().root_fields()
    }

    fn reads(s: &str) -> Option<(Vec<&'static str>, Vec<&'static str>)> {
        let r = Expr::parse(s).unwrap().reads()?;
        let leak = |v: Vec<String>| -> Vec<&'static str> {
            v.into_iter()
                .map(|s| &*Box::leak(s.into_boxed_str()))
                .collect()
        };
        Some((leak(r.paths), leak(r.lengths)))
    }

    #[test]
    fn only_root_fields_count() {
        assert_eq!(fields("a.b.c"), Some(vec!["a".into()]));
        assert_eq!(
            fields("{x: a.b, y: c[?d > `1`].e | f}"),
            Some(vec!["a".into(), "c".into()])
        );
        assert_eq!(
            fields("sort_by(items, &price)[0].name"),
            Some(vec!["items".into()])
        );
        assert_eq!(fields("length(items) > `1`"), Some(vec!["items".into()]));
        assert_eq!(fields("`1`"), Some(vec![]));
    }

    #[test]
    fn the_whole_row_means_every_column() {
        assert_eq!(fields("@"), None);
        assert_eq!(fields("*.a"), None);
        assert_eq!(fields("keys(@)"), None);
        assert_eq!(fields("a && @"), None);
        assert_eq!(fields("length(@)"), None);
        assert_eq!(fields("a | @"), Some(vec!["a".into()]));
        assert_eq!(reads("@"), None);
    }

    #[test]
    fn paths_into_structs_are_kept_whole() {
        assert_eq!(
            reads("{n: customer.name, t: upper(customer.tier), a: amount}"),
            Some((vec!["amount", "customer.name", "customer.tier"], vec![]))
        );
        // Whatever follows something that is not a plain path reads all of what it starts from.
        assert_eq!(
            reads("customer.{n: name} || items[0].sku || o.*"),
            Some((vec!["customer", "items", "o"], vec![]))
        );
        assert_eq!(
            reads("sort_by(items, &price)[0].name"),
            Some((vec!["items"], vec![]))
        );
        // A quoted name with a dot can't be told from a path: the path stops before it.
        assert_eq!(reads(r#"a."b.c""#), Some((vec!["a"], vec![])));
        assert_eq!(reads(r#""b.c""#), Some((vec!["b.c"], vec![])));
    }

    #[test]
    fn a_length_alone_reads_only_the_length() {
        assert_eq!(
            reads("{n: length(items), m: length(o.tags), d: date(ts)}"),
            Some((vec!["ts"], vec!["items", "o.tags"]))
        );
        // Read also another way: the path is listed in both, and the host sends it whole.
        assert_eq!(
            reads("length(items) > `0` && items[0].qty > `1`"),
            Some((vec!["items"], vec!["items"]))
        );
        // Inside a projection `length` applies to the elements, not to a column.
        assert_eq!(
            reads("items[*].length(tags)"),
            Some((vec!["items"], vec![]))
        );
    }

    #[test]
    fn reads_extend_and_give_roots() {
        let mut r = Reads {
            paths: vec!["b.x".into()],
            lengths: vec!["c".into()],
        };
        r.extend(Reads {
            paths: vec!["a".into(), "b.x".into()],
            lengths: vec![],
        });
        assert_eq!(r.paths, vec!["a".to_string(), "b.x".into()]);
        assert_eq!(r.roots(), vec!["a".to_string(), "b".into(), "c".into()]);
    }
}
