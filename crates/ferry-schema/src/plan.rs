//! Turns a [`Catalog`] into ordered DDL for the target.
//!
//! Before the data: databases, tables (secondary indexes and FKs split off), functions and
//! procedures, views in dependency order. After the data: secondary indexes (one ALTER per table,
//! FULLTEXT ones one per ALTER), foreign keys, triggers (so they do not fire during the load),
//! events. Every text is the source's `SHOW CREATE …` output with identifier tokens spliced in;
//! nothing is re-printed.

use ferry_core::lexer::{next_significant, splice, tokenize, Token};
use ferry_core::sql::{quote_ident, quote_str};
use ferry_core::Selection;

use crate::catalog::{Catalog, ObjectDef};
use crate::column_map;
use crate::definer::definer_edit;
use crate::error::SchemaError;
use crate::names::{chain_at, find_keyword, object_name_edit, view_body_start, view_order, Edit, NameMap};
use crate::table_ddl::{split_create_table, TableNames};
use crate::{Ddl, IndexTiming, ObjectKind, StructureOptions, StructurePlan};

fn ddl(kind: ObjectKind, db: &str, name: &str, sql: String) -> Ddl {
    Ddl {
        kind,
        db: db.to_string(),
        name: name.to_string(),
        sql,
        sql_mode: None,
        time_zone: None,
    }
}

/// Plans the structure copy. Objects whose database or table is not selected are skipped.
pub fn plan(
    catalog: &Catalog,
    sel: &Selection,
    opts: &StructureOptions,
) -> Result<StructurePlan, SchemaError> {
    let known = catalog
        .tables
        .iter()
        .map(|t| (t.db.clone(), t.name.clone()))
        .chain(catalog.views.iter().map(|v| (v.db.clone(), v.name.clone())));
    let names = NameMap::new(sel, known);
    let mut out = StructurePlan::default();

    let mut created_dbs: Vec<String> = Vec::new();
    for d in &catalog.databases {
        let Some(tdb) = sel.target_db(&d.name) else {
            continue;
        };
        if created_dbs.contains(&tdb) {
            continue;
        }
        let sql = format!(
            "CREATE DATABASE IF NOT EXISTS {} DEFAULT CHARACTER SET {} COLLATE {}",
            quote_ident(&tdb),
            quote_str(&d.charset),
            quote_str(&d.collation)
        );
        out.pre_data.push(ddl(ObjectKind::Database, &tdb, &tdb, sql));
        created_dbs.push(tdb);
    }

    for q in &catalog.sequences {
        let Some((tdb, tname)) = sel.target_table(&q.db, &q.name) else {
            continue;
        };
        let sql = crate::sequences::rename(&q.create_sql, &q.name, &tname).map_err(|reason| {
            SchemaError::Rewrite {
                kind: ObjectKind::Sequence,
                name: format!("{}.{}", q.db, q.name),
                reason,
            }
        })?;
        out.pre_data.push(ddl(ObjectKind::Sequence, &tdb, &tname, sql));
    }

    // Tables whose column mapping drops or renames columns: (target db, target table) → those
    // source columns (foreign keys naming them are refused).
    let mut changed: Vec<((String, String), Vec<String>)> = Vec::new();
    for t in &catalog.tables {
        if let (Some(m), Some(target)) = (sel.mapping(&t.db, &t.name), sel.target_table(&t.db, &t.name)) {
            let (dropped, renamed) = column_map::changes(&t.schema, m);
            let cols: Vec<String> = dropped
                .into_iter()
                .chain(renamed.into_iter().map(|(a, _)| a))
                .collect();
            if !cols.is_empty() {
                changed.push((target, cols));
            }
        }
    }
    let mut fks = Vec::new();
    for t in &catalog.tables {
        let Some((tdb, tname)) = sel.target_table(&t.db, &t.name) else {
            continue;
        };
        let rewrite_err = |reason| SchemaError::Rewrite {
            kind: ObjectKind::Table,
            name: format!("{}.{}", t.db, t.name),
            reason,
        };
        // A mapped table keeps its indexes inline: the mapping's ALTER then drops or renames their
        // columns with the table's.
        let mapping = sel.mapping(&t.db, &t.name).filter(|m| m.columns.is_some());
        let split = split_create_table(
            &t.create_sql,
            &TableNames {
                source_db: &t.db,
                target_table: &tname,
                names: &names,
            },
            opts.index_timing == IndexTiming::AfterData && mapping.is_none(),
        )
        .map_err(rewrite_err)?;
        out.pre_data
            .push(ddl(ObjectKind::Table, &tdb, &tname, split.create));
        if let Some(m) = mapping {
            if let Some(alter) = column_map::mapping_alter(&t.schema, m, &tname).map_err(rewrite_err)? {
                out.pre_data.push(ddl(ObjectKind::Table, &tdb, &tname, alter));
            }
        }
        for fk in &split.foreign_keys {
            for ((cdb, ctable), cols) in &changed {
                let names_it = tokenize(fk)
                    .iter()
                    .any(|tok| tok.ident() == Some(ctable.as_str()));
                if (cdb == &tdb && ctable == &tname) || names_it {
                    column_map::check_foreign_key(fk, cols).map_err(rewrite_err)?;
                }
            }
        }
        let alter = format!("ALTER TABLE {}", quote_ident(&tname));
        if !split.indexes.is_empty() {
            let adds: Vec<String> = split.indexes.iter().map(|i| format!("ADD {i}")).collect();
            out.post_data.push(ddl(
                ObjectKind::Index,
                &tdb,
                &tname,
                format!("{alter} {}", adds.join(", ")),
            ));
        }
        for ft in &split.fulltext {
            out.post_data
                .push(ddl(ObjectKind::Index, &tdb, &tname, format!("{alter} ADD {ft}")));
        }
        if !split.foreign_keys.is_empty() {
            let adds: Vec<String> = split.foreign_keys.iter().map(|i| format!("ADD {i}")).collect();
            fks.push(ddl(
                ObjectKind::ForeignKey,
                &tdb,
                &tname,
                format!("{alter} {}", adds.join(", ")),
            ));
        }
    }
    out.post_data.extend(fks);

    for r in &catalog.routines {
        let Some(tdb) = sel.target_db(&r.db) else { continue };
        let kw = if r.kind == ObjectKind::Function {
            "FUNCTION"
        } else {
            "PROCEDURE"
        };
        let sql = rewrite_object(r, &names, opts, kw, &r.name, |_, _, _| Ok(None))?;
        out.pre_data
            .push(with_session(ddl(r.kind, &tdb, &r.name, sql), r));
    }

    for i in view_order(&catalog.views) {
        let v = &catalog.views[i];
        let Some((tdb, tname)) = sel.target_table(&v.db, &v.name) else {
            continue;
        };
        let sql = rewrite_object(v, &names, opts, "VIEW", &tname, |sql, tokens, _| {
            Ok(view_body_start(sql, tokens).map(|b| (b, Vec::new())))
        })?;
        out.pre_data.push(ddl(ObjectKind::View, &tdb, &tname, sql));
    }

    for t in &catalog.triggers {
        let Some(table) = &t.table else { continue };
        let Some((tdb, ttable)) = sel.target_table(&t.db, table) else {
            continue;
        };
        let sql = rewrite_object(t, &names, opts, "TRIGGER", &t.name, |sql, tokens, name_end| {
            // The table after ON: the statement runs in the target db, so an unqualified name.
            let on = find_keyword(tokens, name_end, "ON").ok_or("no ON <table> in the trigger")?;
            let chain = chain_at(sql, tokens, on + 1).ok_or("no table after ON")?;
            let names = chain.names(tokens);
            let mut edits = Vec::new();
            if names.len() > 1 || names.first() != Some(&ttable.as_str()) {
                edits.push((chain.range(tokens), quote_ident(&ttable)));
            }
            let body = chain.parts.last().map_or(on + 1, |l| l + 1);
            Ok(Some((body, edits)))
        })?;
        out.post_data
            .push(with_session(ddl(ObjectKind::Trigger, &tdb, &t.name, sql), t));
    }

    for e in &catalog.events {
        let Some(tdb) = sel.target_db(&e.db) else { continue };
        let sql = rewrite_object(e, &names, opts, "EVENT", &e.name, |_, _, _| Ok(None))?;
        out.post_data
            .push(with_session(ddl(ObjectKind::Event, &tdb, &e.name, sql), e));
    }
    Ok(out)
}

fn with_session(mut d: Ddl, o: &ObjectDef) -> Ddl {
    d.sql_mode = o.sql_mode.clone();
    d.time_zone = o.time_zone.clone();
    d
}

/// What a per-kind hook returns: where the body starts (token index) and extra edits.
type Hook = Option<(usize, Vec<Edit>)>;

/// Rewrites a view/routine/trigger/event text: DEFINER per policy, the object name after `kw`,
/// the hook's edits, and table references in the body (from the hook's start, or right after the
/// name). Views become `CREATE OR REPLACE` so that a re-run of the structure phase succeeds.
fn rewrite_object(
    o: &ObjectDef,
    names: &NameMap<'_>,
    opts: &StructureOptions,
    kw: &str,
    new_name: &str,
    hook: impl Fn(&str, &[Token], usize) -> Result<Hook, &'static str>,
) -> Result<String, SchemaError> {
    let sql = &o.create_sql;
    let err = |reason: &str| SchemaError::Rewrite {
        kind: o.kind,
        name: format!("{}.{}", o.db, o.name),
        reason: reason.to_string(),
    };
    let tokens = tokenize(sql);
    let mut edits: Vec<Edit> = Vec::new();
    if let Some(e) = definer_edit(sql, &tokens, opts.definer) {
        edits.push(e);
    }
    let (chain, name_edit) = object_name_edit(sql, &tokens, kw, new_name)
        .ok_or_else(|| err(&format!("no object name after {kw}")))?;
    let cur = chain.names(&tokens);
    if chain.parts.len() > 1 || cur.first() != Some(&new_name) {
        edits.push(name_edit);
    }
    let name_end = chain.parts.last().map_or(0, |l| l + 1);
    if o.kind == ObjectKind::View {
        if let Some(first) = next_significant(&tokens, 0) {
            if tokens[first].is_keyword("CREATE") {
                let after = next_significant(&tokens, first + 1);
                if !after.is_some_and(|a| tokens[a].is_keyword("OR")) {
                    edits.push((tokens[first].range(), "CREATE OR REPLACE".to_string()));
                }
            }
        }
    }
    let body = match hook(sql, &tokens, name_end).map_err(err)? {
        Some((body, extra)) => {
            edits.extend(extra);
            body
        }
        None => name_end,
    };
    edits.extend(names.body_edits(sql, &tokens, body, &o.db));
    Ok(splice(sql, &edits))
}
