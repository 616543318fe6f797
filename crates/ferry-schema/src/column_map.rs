//! The target structure of a table with a column mapping (`Ferry.DbList` `column`): the source's
//! CREATE TABLE (indexes kept inline), then one `ALTER TABLE … DROP COLUMN …, RENAME COLUMN … TO …`
//! on the target, so the server itself drops the columns from (or drops) the plain indexes over
//! them and renames the columns inside indexes. What would change meaning is refused by name
//! before anything is created: a unique key using a dropped column (it would become a different
//! key; the row key itself is refused by the job's check), and a foreign key naming a dropped or
//! renamed column (on the mapped table, or referencing it).

use ferry_core::lexer::tokenize;
use ferry_core::mapping::TableMapping;
use ferry_core::sql::quote_ident;
use ferry_core::TableSchema;

/// The source columns the mapping drops and renames (source name, target name).
pub fn changes(t: &TableSchema, m: &TableMapping) -> (Vec<String>, Vec<(String, String)>) {
    let mut dropped = Vec::new();
    let mut renamed = Vec::new();
    for c in &t.columns {
        match m.target_column(&c.name) {
            None => dropped.push(c.name.clone()),
            Some(n) if n != c.name => renamed.push((c.name.clone(), n.to_string())),
            Some(_) => {}
        }
    }
    (dropped, renamed)
}

/// The `ALTER TABLE` that turns the source's structure into the mapped one, `None` when the
/// mapping keeps every column under its name. Refuses unique keys over dropped columns.
pub fn mapping_alter(
    t: &TableSchema,
    m: &TableMapping,
    target_table: &str,
) -> Result<Option<String>, String> {
    let (dropped, renamed) = changes(t, m);
    for (name, cols) in &t.unique_keys {
        if let Some(&i) = cols.iter().find(|&&i| dropped.contains(&t.columns[i].name)) {
            return Err(format!(
                "the unique key {name} uses {}, which column drops: keep the column, or drop the key on \
                 the source",
                t.columns[i].name
            ));
        }
    }
    if dropped.is_empty() && renamed.is_empty() {
        return Ok(None);
    }
    let mut parts: Vec<String> = dropped
        .iter()
        .map(|d| format!("DROP COLUMN {}", quote_ident(d)))
        .collect();
    parts.extend(
        renamed
            .iter()
            .map(|(a, b)| format!("RENAME COLUMN {} TO {}", quote_ident(a), quote_ident(b))),
    );
    Ok(Some(format!(
        "ALTER TABLE {} {}",
        quote_ident(target_table),
        parts.join(", ")
    )))
}

/// Refuses a foreign key definition that names one of `changed` (dropped or renamed columns):
/// its text would not fit the mapped table.
pub fn check_foreign_key(fk: &str, changed: &[String]) -> Result<(), String> {
    for tok in tokenize(fk) {
        if let Some(id) = tok.ident() {
            if let Some(c) = changed.iter().find(|c| c.eq_ignore_ascii_case(id)) {
                return Err(format!(
                    "the foreign key `{}` uses {c}, which the column mapping drops or renames: keep it \
                     under its name, or drop the foreign key on the source",
                    fk.chars().take(80).collect::<String>()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::mapping::ColumnMap;
    use ferry_core::{Column, ColumnKind};

    fn col(n: &str) -> Column {
        Column {
            name: n.into(),
            data_type: "int".into(),
            column_type: "int".into(),
            kind: ColumnKind::Int { unsigned: false },
            nullable: true,
            generated: false,
            charset: None,
            collation: None,
        }
    }

    #[test]
    fn drops_renames_and_refusals() {
        let t = TableSchema {
            db: "d".into(),
            name: "t".into(),
            columns: vec![col("id"), col("a"), col("b"), col("c")],
            primary_key: Some(vec![0]),
            unique_keys: vec![("u".into(), vec![3, 0])],
            engine: None,
            estimated_rows: 0,
            data_length: 0,
            system_time: None,
        };
        let map = |cols: &[(&str, &str)]| TableMapping {
            columns: Some(
                cols.iter()
                    .map(|(a, b)| ColumnMap {
                        name: a.to_string(),
                        target: b.to_string(),
                    })
                    .collect(),
            ),
            ..TableMapping::default()
        };
        let m = map(&[("id", "id"), ("a", "x"), ("c", "c")]);
        assert_eq!(
            mapping_alter(&t, &m, "t2").unwrap().as_deref(),
            Some("ALTER TABLE `t2` DROP COLUMN `b`, RENAME COLUMN `a` TO `x`")
        );
        assert_eq!(
            mapping_alter(&t, &map(&[("id", "id"), ("a", "a"), ("b", "b"), ("c", "c")]), "t").unwrap(),
            None
        );
        let e = mapping_alter(&t, &map(&[("id", "id"), ("a", "a")]), "t").unwrap_err();
        assert!(e.contains("unique key u") && e.contains(" c,"), "{e}");
        assert!(check_foreign_key(
            "CONSTRAINT `f` FOREIGN KEY (`a`) REFERENCES `p` (`id`)",
            &["a".into()]
        )
        .is_err());
        assert!(check_foreign_key(
            "CONSTRAINT `f` FOREIGN KEY (`z`) REFERENCES `p` (`id`)",
            &["a".into()]
        )
        .is_ok());
    }
}
