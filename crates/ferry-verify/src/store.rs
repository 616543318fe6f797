//! The verification results kept on the target, in `ferry_meta.verify_table`: one row per job and
//! source table with the last comparison's counts, so ConsistencyType 4 ("re-verify the tables
//! found inconsistent") knows which tables to compare again.

use ferry_core::selection::META_SCHEMA;
use ferry_core::sql::quote_ident;
use ferry_core::Endpoint;
use mysql_async::prelude::Queryable;

use crate::error::{Ctx, VerifyError};
use crate::report::VerifyReport;

fn table() -> String {
    format!("{}.`verify_table`", quote_ident(META_SCHEMA))
}

async fn ensure(conn: &mut mysql_async::Conn) -> Result<(), VerifyError> {
    Ok(ferry_core::meta::ensure(conn).await?)
}

/// Records a report's per-table results for a job (replacing earlier results of the same tables).
pub async fn store_results(dst: &Endpoint, job: &str, report: &VerifyReport) -> Result<(), VerifyError> {
    let mut conn = dst.connect(vec!["SET time_zone = '+00:00'".into()]).await?;
    ensure(&mut conn).await?;
    let sql = format!(
        "REPLACE INTO {} (job_name, source_db, source_table, target_db, target_table, consistent, method, \
         rows_compared, only_in_source, only_in_target, different, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        table()
    );
    for t in &report.tables {
        conn.exec_drop(
            sql.as_str(),
            vec![
                job.into(),
                t.database.clone().into(),
                t.table.clone().into(),
                t.target_database.clone().into(),
                t.target_table.clone().into(),
                u8::from(t.consistent()).into(),
                t.method.clone().into(),
                t.rows_compared.into(),
                t.only_in_source.into(),
                t.only_in_target.into(),
                t.different.into(),
                t.error.clone().into(),
            ] as Vec<mysql_async::Value>,
        )
        .await
        .ctx(|| format!("recording the verification of {}.{}", t.database, t.table))?;
    }
    let _ = conn.disconnect().await;
    Ok(())
}

/// The source tables the job's last verification found inconsistent; `None` when the job was never
/// verified.
pub async fn previous_inconsistent(
    dst: &Endpoint,
    job: &str,
) -> Result<Option<Vec<(String, String)>>, VerifyError> {
    let mut conn = dst.connect(vec!["SET time_zone = '+00:00'".into()]).await?;
    let exists: Option<u8> = conn
        .exec_first(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'verify_table'",
            (META_SCHEMA,),
        )
        .await
        .ctx(|| "looking for ferry_meta.verify_table on the target".into())?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows: Vec<(String, String, u8)> = conn
        .exec(
            format!(
                "SELECT source_db, source_table, consistent FROM {} WHERE job_name = ? ORDER BY 1, 2",
                table()
            ),
            (job,),
        )
        .await
        .ctx(|| "reading ferry_meta.verify_table on the target".into())?;
    let _ = conn.disconnect().await;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .filter(|r| r.2 == 0)
            .map(|(d, t, _)| (d, t))
            .collect(),
    ))
}
