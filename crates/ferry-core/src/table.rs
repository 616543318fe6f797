//! The table model every engine shares: columns with their type family, and the keys that the
//! chunk planner, the replayer and the verifier use to address rows.

use serde::{Deserialize, Serialize};

/// The family of a column type: what decides how a value is read, encoded and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnKind {
    Int {
        unsigned: bool,
    },
    Decimal,
    Float,
    Double,
    Bit,
    Year,
    Date,
    DateTime,
    Timestamp,
    Time,
    Enum,
    Set,
    Json,
    /// Character strings (CHAR, VARCHAR, TEXT family), in the column's charset.
    Text,
    /// Byte strings (BINARY, VARBINARY, BLOB family).
    Binary,
    /// Spatial types: the server's internal format, copied as bytes.
    Geometry,
    /// MariaDB's type plugins UUID (10.7+), INET6 (10.5+) and INET4 (10.10+): stored as fixed
    /// binary, read and written as their canonical text form (a `_binary` literal would be taken
    /// as the 16- or 4-byte native form), compared and ordered by the type's own order.
    Plugin,
    /// Anything else (VECTOR…): copied as the bytes the server returns.
    Other,
}

impl ColumnKind {
    /// From `information_schema.COLUMNS.DATA_TYPE` and `COLUMN_TYPE`.
    pub fn from_types(data_type: &str, column_type: &str) -> ColumnKind {
        let dt = data_type.to_ascii_lowercase();
        let unsigned = column_type.to_ascii_lowercase().contains("unsigned");
        match dt.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
                ColumnKind::Int { unsigned }
            }
            "decimal" | "numeric" => ColumnKind::Decimal,
            "float" => ColumnKind::Float,
            "double" | "real" | "double precision" => ColumnKind::Double,
            "bit" => ColumnKind::Bit,
            "year" => ColumnKind::Year,
            "date" => ColumnKind::Date,
            "datetime" => ColumnKind::DateTime,
            "timestamp" => ColumnKind::Timestamp,
            "time" => ColumnKind::Time,
            "enum" => ColumnKind::Enum,
            "set" => ColumnKind::Set,
            "json" => ColumnKind::Json,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => ColumnKind::Text,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => ColumnKind::Binary,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => ColumnKind::Geometry,
            "uuid" | "inet6" | "inet4" => ColumnKind::Plugin,
            _ => ColumnKind::Other,
        }
    }

    /// True for types whose values are strings compared under a collation.
    pub fn is_collated(&self) -> bool {
        matches!(self, ColumnKind::Text | ColumnKind::Enum | ColumnKind::Set)
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `DATA_TYPE`, lower case (`int`, `varchar`, …).
    pub data_type: String,
    /// `COLUMN_TYPE` (`int(10) unsigned`, `enum('a','b')`, …).
    pub column_type: String,
    pub kind: ColumnKind,
    pub nullable: bool,
    /// Generated (virtual or stored) columns are computed by the server, never written.
    pub generated: bool,
    pub charset: Option<String>,
    pub collation: Option<String>,
}

/// A table as the engines see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    pub db: String,
    pub name: String,
    pub columns: Vec<Column>,
    /// Column indexes of the primary key, in key order.
    pub primary_key: Option<Vec<usize>>,
    /// Unique keys (name, column indexes), excluding the primary key.
    pub unique_keys: Vec<(String, Vec<usize>)>,
    pub engine: Option<String>,
    /// `TABLE_ROWS`: an estimate (exact for MyISAM, sampled for InnoDB).
    pub estimated_rows: u64,
    /// `DATA_LENGTH`: an estimate of the data size in bytes.
    pub data_length: u64,
    /// The period columns when the table is system-versioned (MariaDB `WITH SYSTEM
    /// VERSIONING`): its rows are every version, its keys end with `row_end`.
    #[serde(default)]
    pub system_time: Option<crate::versioning::SystemTime>,
}

impl TableSchema {
    /// The key that addresses rows uniquely: the primary key, else the first unique key whose
    /// columns are all NOT NULL (a nullable unique key admits several NULL rows).
    pub fn row_key(&self) -> Option<&[usize]> {
        if let Some(pk) = &self.primary_key {
            return Some(pk);
        }
        self.unique_keys
            .iter()
            .find(|(_, cols)| cols.iter().all(|&i| !self.columns[i].nullable))
            .map(|(_, cols)| cols.as_slice())
    }

    /// Columns that hold data to copy (generated columns excluded), as indexes.
    pub fn stored_columns(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&i| !self.columns[i].generated)
            .collect()
    }

    /// Index of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The `FROM` clause reading every row of the table: every version of a system-versioned
    /// one (`FOR SYSTEM_TIME ALL`).
    pub fn from_all(&self) -> String {
        crate::versioning::from_all(&self.db, &self.name, self.system_time.is_some())
    }

    /// `db.table`, unquoted, for messages.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            ColumnKind::from_types("int", "int(10) unsigned"),
            ColumnKind::Int { unsigned: true }
        );
        assert_eq!(ColumnKind::from_types("VARCHAR", "varchar(10)"), ColumnKind::Text);
        assert_eq!(ColumnKind::from_types("longblob", "longblob"), ColumnKind::Binary);
        assert_eq!(ColumnKind::from_types("uuid", "uuid"), ColumnKind::Plugin);
        assert_eq!(ColumnKind::from_types("INET6", "inet6"), ColumnKind::Plugin);
        assert_eq!(ColumnKind::from_types("inet4", "inet4"), ColumnKind::Plugin);
        assert_eq!(ColumnKind::from_types("vector", "vector(3)"), ColumnKind::Other);
        assert_eq!(ColumnKind::from_types("point", "point"), ColumnKind::Geometry);
    }
}
