//! Which top-level columns an expression reads, so a plugin can declare them and only they
//! cross into the sandbox.

use std::collections::BTreeSet;

use crate::ast::Ast;

/// The top-level fields read, or `None` when the whole row may be read.
pub(crate) fn root_fields(ast: &Ast) -> Option<Vec<String>> {
    let mut found = BTreeSet::new();
    visit(ast, true, &mut found).then(|| found.into_iter().collect())
}

/// Collects the fields read from the row when `at_root`; false when anything may be read.
fn visit(ast: &Ast, at_root: bool, found: &mut BTreeSet<String>) -> bool {
    match ast {
        Ast::Field(name) => {
            if at_root {
                found.insert(name.clone());
            }
            true
        }
        // The row itself (`@`, `*`, `keys(@)`...) may read every column.
        Ast::Current => !at_root,
        Ast::Literal(_) | Ast::Index(_) | Ast::Slice { .. } => true,
        // The right side sees what the left side yields, not the row.
        Ast::Subexpr(lhs, rhs) | Ast::Projection(lhs, rhs) | Ast::Pipe(lhs, rhs) => {
            visit(lhs, at_root, found) && visit(rhs, false, found)
        }
        Ast::ValueProjection(lhs, rhs) => visit(lhs, at_root, found) && visit(rhs, false, found),
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
    use crate::Expr;

    fn fields(s: &str) -> Option<Vec<String>> {
        Expr::parse(s).unwrap().root_fields()
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
        assert_eq!(fields("`1`"), Some(vec![]));
    }

    #[test]
    fn the_whole_row_means_every_column() {
        assert_eq!(fields("@"), None);
        assert_eq!(fields("*.a"), None);
        assert_eq!(fields("keys(@)"), None);
        assert_eq!(fields("a && @"), None);
        assert_eq!(fields("a | @"), Some(vec!["a".into()]));
    }
}
