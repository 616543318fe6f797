//! Table models for unit tests that need a [`TableSchema`] without a server: a table `d.t` of
//! `INT` columns whose first column is the primary key.

use ferry_core::{Column, ColumnKind, TableSchema};

/// An `INT` column.
pub fn int_column(name: &str, nullable: bool) -> Column {
    Column {
        name: name.into(),
        data_type: "int".into(),
        column_type: "int(11)".into(),
        kind: ColumnKind::Int { unsigned: false },
        nullable,
        generated: false,
        charset: None,
        collation: None,
    }
}

/// The table `d.t` of `INT` columns named `cols`, the first one its primary key.
pub fn int_table(cols: &[&str], nullable: bool) -> TableSchema {
    TableSchema {
        db: "d".into(),
        name: "t".into(),
        columns: cols.iter().map(|c| int_column(c, nullable)).collect(),
        primary_key: Some(vec![0]),
        unique_keys: vec![],
        engine: None,
        estimated_rows: 0,
        data_length: 0,
        system_time: None,
    }
}
