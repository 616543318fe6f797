//! Compare tasks: CreateCompareTask (its config parsed into a `VerifyMode`), StartCompare,
//! StopCompare, DescribeCompareTasks and DescribeCompareReport.

use super::*;

/// What a compare task compares, from its stored configuration (checked again at each start):
/// `(mode, threads)`. Every accepted field changes the comparison; the others are refused by name.
pub(super) fn compare_mode(config: &Value) -> Result<(VerifyMode, usize), ApiError> {
    let options = config.get("Options").cloned().unwrap_or(json!({}));
    let method = options
        .get("Method")
        .and_then(Value::as_str)
        .unwrap_or("dataCheck");
    let threads = options.get("ThreadCount").and_then(Value::as_i64).unwrap_or(4) as usize;
    if let Some(t) = options.get("Type").and_then(Value::as_str) {
        if t != "builtin" {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter Options.Type {t:?} is not supported: Ferry's comparison is built in (builtin)"
            )));
        }
    }
    if let Some(modes) = options.get("CompareMode").and_then(Value::as_array) {
        for m in modes.iter().filter_map(Value::as_str) {
            if m != "full" {
                return Err(ApiError::invalid_parameter_value(format!(
                    "the parameter Options.CompareMode {m:?} is not supported: Ferry compares the data in full (full); \
                     while the replay runs, differing rows are re-checked after the replay has applied them"
                )));
            }
        }
    }
    for name in ["ReCheckTime", "ReCheckInterval"] {
        if options.get(name).is_some() {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter Options.{name} is not supported: while the replay runs, Ferry re-checks differing rows \
                 {} times right after the replay has applied the source up to where they were read",
                ferry_verify::live::ROUNDS
            )));
        }
    }
    let rows_percent = match method {
        "dataCheck" => 100,
        "sampleDataCheck" => {
            let rate = options.get("SampleRate").and_then(Value::as_i64).unwrap_or(100);
            if rate < 1 {
                return Err(ApiError::invalid_parameter_value(
                    "the parameter Options.SampleRate is 0: a sample comparison compares 1 to 100 percent of the rows",
                ));
            }
            rate.min(100) as u8
        }
        _ => {
            return Err(ApiError::invalid_parameter_value(
                "the parameter Options.Method rowsCount is not supported: use dataCheck or sampleDataCheck \
                 (the job's ConsistencyParams.TablesSelectCount compares row counts)",
            ))
        }
    };
    let custom = config.get("ObjectMode").and_then(Value::as_str) == Some("custom");
    let objects = config.get("Objects").cloned().unwrap_or(json!({}));
    if let Some(a) = objects.get("AdvancedObjects").and_then(Value::as_array) {
        if !a.is_empty() {
            return Err(ApiError::invalid_parameter_value(
                "the parameter Objects.AdvancedObjects is not supported (MongoDB only in Tencent's API): \
                 a sameAsMigrate task compares the routines, triggers and events of whole databases",
            ));
        }
    }
    let whole = objects.get("ObjectMode").and_then(Value::as_str) == Some("all");
    if !custom || whole {
        if objects
            .get("ObjectItems")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            return Err(ApiError::invalid_parameter_value(
                "the parameter Objects.ObjectItems needs ObjectMode custom and Objects.ObjectMode partial",
            ));
        }
        let mode = if rows_percent >= 100 {
            VerifyMode::Full
        } else {
            VerifyMode::Sample {
                rows_percent,
                tables_percent: 100,
            }
        };
        return Ok((mode, threads));
    }
    let items = objects
        .get("ObjectItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        return Err(ApiError::missing_parameter("Objects.ObjectItems"));
    }
    let (mut databases, mut tables, mut views) = (Vec::new(), Vec::new(), Vec::new());
    let mut time_zone: Option<String> = None;
    for (i, it) in items.iter().enumerate() {
        let p = format!("Objects.ObjectItems.{i}");
        let s = |k: &str| it.get(k).and_then(Value::as_str).unwrap_or_default();
        let db = s("DbName").to_string();
        if db.is_empty() {
            return Err(ApiError::missing_parameter(&format!("{p}.DbName")));
        }
        if !s("SchemaName").is_empty() {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p}.SchemaName is not supported: MySQL has no schemas within a database"
            )));
        }
        let list = |k: &str| it.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        let (db_all, table_all) = (s("DbMode") == "all", s("TableMode") == "all");
        let ts = list("Tables");
        if (db_all || table_all) && !ts.is_empty() {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p}.Tables lists tables while {p}.{} is all: use partial to compare only them",
                if db_all { "DbMode" } else { "TableMode" }
            )));
        }
        if db_all || table_all {
            databases.push(db.clone());
        }
        for (j, t) in ts.iter().enumerate() {
            let tp = format!("{p}.Tables.{j}");
            tables.push(table_scope(&db, t, &tp, &mut time_zone)?);
        }
        let vs = list("Views");
        match (s("ViewMode"), vs.is_empty()) {
            ("all", true) => views.push(ViewScope {
                db: db.clone(),
                views: None,
            }),
            ("all", false) => {
                return Err(ApiError::invalid_parameter_value(format!(
                    "the parameter {p}.Views lists views while {p}.ViewMode is all: use partial to compare only them"
                )))
            }
            ("partial", true) => {
                return Err(ApiError::missing_parameter(&format!("{p}.Views")));
            }
            ("partial", false) | ("", false) => {
                let names: Vec<String> = vs
                    .iter()
                    .filter_map(|v| v.get("ViewName").and_then(Value::as_str))
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.len() != vs.len() {
                    return Err(ApiError::missing_parameter(&format!("{p}.Views.ViewName")));
                }
                views.push(ViewScope {
                    db: db.clone(),
                    views: Some(names),
                });
            }
            _ => {}
        }
        if !db_all && !table_all && ts.is_empty() && vs.is_empty() && s("ViewMode") != "all" {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p} names no object: list Tables (TableMode partial), or set DbMode or TableMode all, or ViewMode"
            )));
        }
    }
    Ok((
        VerifyMode::Scoped {
            databases,
            tables,
            views,
            rows_percent,
            time_zone,
        },
        threads,
    ))
}

/// One `Tables[]` entry of a custom compare task: the table, its columns (`ColumnMode`,
/// `Columns`), its row filter (`FilterCondition`, checked here) and the time zone of the filter
/// (`FilterTimeZone`, one for the whole task).
pub(super) fn table_scope(
    db: &str,
    t: &Value,
    p: &str,
    time_zone: &mut Option<String>,
) -> Result<TableScope, ApiError> {
    let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default();
    let table = s("TableName").to_string();
    if table.is_empty() {
        return Err(ApiError::missing_parameter(&format!("{p}.TableName")));
    }
    let cols: Vec<Value> = t
        .get("Columns")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let columns = match (s("ColumnMode"), cols.is_empty()) {
        ("partial", true) => return Err(ApiError::missing_parameter(&format!("{p}.Columns"))),
        ("partial", false) | ("", false) => {
            let names: Vec<String> = cols
                .iter()
                .filter_map(|c| c.get("ColumnName").and_then(Value::as_str))
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            if names.len() != cols.len() {
                return Err(ApiError::missing_parameter(&format!("{p}.Columns.ColumnName")));
            }
            Some(names)
        }
        ("all", false) => {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p}.Columns lists columns while {p}.ColumnMode is all: use partial to compare only them"
            )))
        }
        _ => None,
    };
    let filter = match s("FilterCondition").trim() {
        "" => None,
        f => Some(RowFilter::parse(f).map_err(|e| {
            ApiError::invalid_parameter_value(format!("the parameter {p}.FilterCondition: {e}"))
        })?),
    };
    let tz = match s("FilterTimeZone") {
        "" => None,
        z if ferry_verify::digest::valid_offset(z) => Some(z.to_string()),
        z => {
            return Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p}.FilterTimeZone is {z:?}: give an offset such as \"+08:00\""
            )))
        }
    };
    if let Some(z) = tz {
        match time_zone {
            Some(prev) if *prev != z => {
                return Err(ApiError::invalid_parameter_value(format!(
                    "the parameter {p}.FilterTimeZone is {z}, another table's is {prev}: one compare task reads its filters in one time zone"
                )))
            }
            _ => *time_zone = Some(z),
        }
    }
    Ok(TableScope {
        db: db.to_string(),
        table,
        columns,
        filter,
    })
}

pub(super) async fn create_compare(
    mgr: &Arc<Manager>,
    m: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let job = job(mgr, &job_id).await?;
    let config = json!({
        "ObjectMode": str_of(&m, "ObjectMode").unwrap_or("sameAsMigrate"),
        "Objects": m.get("Objects").cloned().unwrap_or(json!({"ObjectMode": "all", "ObjectItems": []})),
        "Options": m.get("Options").cloned().unwrap_or(json!({"Method": "dataCheck", "SampleRate": 100, "ThreadCount": 4})),
    });
    if config["ObjectMode"] == "custom" && m.get("Objects").is_none() {
        return Err(ApiError::missing_parameter("Objects"));
    }
    compare_mode(&config)?;
    let compare_task_id = format!("{}-cmp-{}", job.job_id, random_suffix(8));
    let name = str_of(&m, "TaskName")
        .filter(|s| !s.is_empty())
        .unwrap_or(&compare_task_id)
        .to_string();
    mgr.store()
        .insert_compare(CompareRow {
            compare_task_id: compare_task_id.clone(),
            job_id,
            task_name: name,
            status: "created".into(),
            config,
            report: None,
            message: String::new(),
            created_at: now(),
            started_at: None,
            finished_at: None,
        })
        .await?;
    let mut out = Map::new();
    out.insert("CompareTaskId".into(), json!(compare_task_id));
    Ok(out)
}

pub(super) async fn compare_row(
    mgr: &Arc<Manager>,
    job_id: &str,
    compare_task_id: &str,
) -> Result<CompareRow, ApiError> {
    mgr.store()
        .compares(job_id)
        .await?
        .into_iter()
        .find(|c| c.compare_task_id == compare_task_id)
        .ok_or_else(|| {
            ApiError::new(
                "ResourceNotFound",
                format!("the compare task {compare_task_id} of job {job_id} does not exist"),
            )
        })
}

pub(super) async fn start_compare(
    mgr: &Arc<Manager>,
    m: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let cid = str_of(&m, "CompareTaskId").unwrap_or_default().to_string();
    super::continuous::refuse_control(&job_id, &cid)?;
    let job = job(mgr, &job_id).await?;
    if !Operation::Compare.allows(job.status) {
        return Err(Operation::Compare.refused(&job_id, job.status).into());
    }
    let row = compare_row(mgr, &job_id, &cid).await?;
    let (mode, threads) = compare_mode(&row.config)?;
    if !mgr
        .store()
        .update_compare(
            &cid,
            &["created", "success", "failed", "canceled"],
            CompareChange {
                status: "running".into(),
                report: None,
                message: Some(String::new()),
                started_at: Some(now()),
                finished_at: None,
            },
        )
        .await?
    {
        return Err(ApiError::not_allow_operation(format!(
            "the compare task {cid} is {}: it can be started when created, success, failed or canceled",
            row.status
        )));
    }
    mgr.spawn_compare(job, cid, mode, threads);
    Ok(Map::new())
}

pub(super) async fn stop_compare(
    mgr: &Arc<Manager>,
    m: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let cid = str_of(&m, "CompareTaskId").unwrap_or_default().to_string();
    super::continuous::refuse_control(&job_id, &cid)?;
    let row = compare_row(mgr, &job_id, &cid).await?;
    mgr.abort_compare(&cid);
    if !mgr
        .store()
        .update_compare(
            &cid,
            &["created", "running"],
            CompareChange {
                status: "canceled".into(),
                report: None,
                message: Some("stopped by StopCompare".into()),
                started_at: None,
                finished_at: Some(now()),
            },
        )
        .await?
    {
        return Err(ApiError::not_allow_operation(format!(
            "the compare task {cid} is {}: only a created or running task can be stopped",
            row.status
        )));
    }
    Ok(Map::new())
}

pub(super) fn report_of(c: &CompareRow) -> Option<VerifyReport> {
    c.report
        .as_ref()
        .and_then(|r| serde_json::from_value(r.clone()).ok())
}

pub(super) fn conclusion(c: &CompareRow) -> &'static str {
    match report_of(c) {
        Some(r) if r.consistent => "same",
        Some(_) => "different",
        None => "",
    }
}

pub(super) fn progress_json(c: &CompareRow) -> Value {
    let (status, percent) = match c.status.as_str() {
        "success" => ("success", 100),
        "failed" => ("failed", 0),
        "running" => ("running", 0),
        "canceled" => ("failed", 0),
        _ => ("notStarted", 0),
    };
    json!({"Status": status, "Percent": percent, "StepAll": 1, "StepNow": 1, "Message": c.message, "Steps": []})
}

pub(super) fn compare_item(c: &CompareRow) -> Value {
    let options = c.config.get("Options").cloned().unwrap_or(json!({}));
    json!({
        "JobId": c.job_id,
        "CompareTaskId": c.compare_task_id,
        "TaskName": c.task_name,
        "Status": c.status,
        "Config": c.config.get("Objects").cloned().unwrap_or(json!({"ObjectMode": "all", "ObjectItems": []})),
        "CheckProcess": progress_json(c),
        "CompareProcess": progress_json(c),
        "Conclusion": conclusion(c),
        "CreatedAt": t21(Some(c.created_at)),
        "StartedAt": t21(c.started_at),
        "FinishedAt": t21(c.finished_at),
        "Method": options.get("Method").and_then(Value::as_str).unwrap_or("dataCheck"),
        "Options": options,
        "Message": c.message,
    })
}

pub(super) async fn describe_compares(
    mgr: &Arc<Manager>,
    m: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let job = job(mgr, &job_id).await?;
    // The job's continuous verification first (while it has one to show), then the tasks created
    // with CreateCompareTask, newest first.
    let mut items: Vec<Value> = super::continuous::list_item(&job, &mgr.detail_of(&job), now())
        .into_iter()
        .collect();
    items.extend(
        mgr.store()
            .compares(&job_id)
            .await?
            .iter()
            .rev()
            .map(compare_item),
    );
    if let Some(cid) = str_of(&m, "CompareTaskId").filter(|s| !s.is_empty()) {
        items.retain(|c| c["CompareTaskId"] == cid);
    }
    if let Some(Value::Array(st)) = m.get("Status") {
        let want: Vec<&str> = st.iter().filter_map(Value::as_str).collect();
        if !want.is_empty() {
            items.retain(|c| c["Status"].as_str().is_some_and(|s| want.contains(&s)));
        }
    }
    let total = items.len();
    let offset = int_of(&m, "Offset").unwrap_or(0) as usize;
    let limit = int_of(&m, "Limit").unwrap_or(20) as usize;
    let items: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let mut out = Map::new();
    out.insert("TotalCount".into(), json!(total));
    out.insert("Items".into(), Value::Array(items));
    Ok(out)
}

pub(super) fn empty_list() -> Value {
    json!({"TotalCount": 0, "Items": []})
}

/// A verification report in DescribeCompareReport's item shapes: the per-table rows
/// (`FullProgress`), the differing keys (`Difference`), the tables not compared (`Skipped`) and
/// the totals. Shared by DescribeCompareReport and the console's view of a job's own
/// verification ([`crate::extras`]).
#[derive(Default)]
pub(crate) struct ReportItems {
    pub full: Vec<Value>,
    pub diffs: Vec<Value>,
    pub skipped: Vec<Value>,
    pub different_tables: u64,
    pub different_rows: u64,
    pub src_rows: u64,
    pub dst_rows: u64,
}

pub(crate) fn report_items(r: &VerifyReport, started: &str, finished: &str) -> ReportItems {
    let mut out = ReportItems::default();
    for t in &r.tables {
        let rows = t.only_in_source + t.only_in_target + t.different;
        out.src_rows += t.rows_compared;
        out.dst_rows += t.target_rows;
        if let Some(e) = &t.error {
            out.skipped
                .push(json!({"Db": t.database, "Schema": "", "Table": t.table, "Reason": e}));
            continue;
        }
        if !t.consistent() {
            out.different_tables += 1;
            out.different_rows += rows;
        }
        out.full.push(json!({
            "Db": t.database, "Schema": "", "Table": t.table,
            "Conclusion": if t.consistent() { "same" } else { "different" },
            "Status": "success", "Progress": 100, "RowCount": rows,
            "StartedAt": started, "FinishedAt": finished, "ExpectedAt": finished,
            "SrcItem": t.rows_compared.to_string(), "DstItem": t.target_rows.to_string(),
        }));
        for k in &t.keys {
            let (src, dst) = match k.kind {
                ferry_verify::DiffKind::OnlyInSource => ("present", "missing"),
                ferry_verify::DiffKind::OnlyInTarget => ("missing", "present"),
                _ => ("differs", "differs"),
            };
            let key = k.key.join(",");
            out.diffs.push(json!({
                "Db": t.database, "Schema": "", "Table": t.table, "Chunk": 0,
                "SrcItem": src, "DstItem": dst,
                "IndexName": t.key_columns.join(","),
                "LowerBoundary": key, "UpperBoundary": key,
                "CostTime": 0.0, "FinishedAt": finished,
            }));
        }
    }
    out
}

/// A DescribeCompareReport response from a verification report's items: `abstract_` gives the
/// task's own fields (`Options`, `Objects`, `Conclusion`, `Status`, `StartedAt`, `FinishedAt`),
/// the table and row totals are added from `items`, and the `Detail` lists are paged by the
/// request's filters (`DifferenceDB`, `DifferenceTable`, `DifferenceOffset`, …).
pub(super) fn report_response(
    mut abstract_: Value,
    items: ReportItems,
    total_tables: usize,
    m: &Map<String, Value>,
) -> Map<String, Value> {
    let ReportItems {
        full,
        diffs,
        skipped,
        different_tables,
        different_rows,
        src_rows,
        dst_rows,
    } = items;
    let filter =
        |items: Vec<Value>, db: Option<&str>, table: Option<&str>, off: Option<i64>, lim: Option<i64>| {
            let kept: Vec<Value> = items
                .into_iter()
                .filter(|i| db.is_none_or(|d| d.is_empty() || i["Db"] == d))
                .filter(|i| table.is_none_or(|t| t.is_empty() || i["Table"] == t))
                .collect();
            let total = kept.len();
            let page: Vec<Value> = kept
                .into_iter()
                .skip(off.unwrap_or(0) as usize)
                .take(lim.unwrap_or(20) as usize)
                .collect();
            json!({"TotalCount": total, "Items": page})
        };
    let skipped_count = skipped.len();
    if let Some(a) = abstract_.as_object_mut() {
        for (k, v) in [
            ("TotalTables", json!(total_tables)),
            ("CheckedTables", json!(total_tables.saturating_sub(skipped_count))),
            ("DifferentTables", json!(different_tables)),
            ("SkippedTables", json!(skipped_count)),
            ("NearlyTableCount", json!(total_tables)),
            ("DifferentRows", json!(different_rows)),
            ("SrcSampleRows", json!(src_rows)),
            ("DstSampleRows", json!(dst_rows)),
        ] {
            a.insert(k.into(), v);
        }
    }
    let full_count = full.len();
    let detail = json!({
        "Difference": filter(diffs, str_of(m, "DifferenceDB"), str_of(m, "DifferenceTable"), int_of(m, "DifferenceOffset"), int_of(m, "DifferenceLimit")),
        "Skipped": filter(skipped, str_of(m, "SkippedDB"), str_of(m, "SkippedTable"), int_of(m, "SkippedOffset"), int_of(m, "SkippedLimit")),
        "DifferenceAdvancedObjects": empty_list(),
        "DifferenceData": empty_list(),
        "DifferenceRow": empty_list(),
        "DifferenceSchema": empty_list(),
        "DifferenceOwner": empty_list(),
        "FullProgress": {"TotalCount": full_count, "Items": full},
        "IncDifference": empty_list(),
    });
    let mut out = Map::new();
    out.insert("Abstract".into(), abstract_);
    out.insert("Detail".into(), detail);
    out
}

pub(super) async fn compare_report(
    mgr: &Arc<Manager>,
    m: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let job_id = id(&m).to_string();
    let cid = str_of(&m, "CompareTaskId").unwrap_or_default().to_string();
    if super::continuous::is_task(&job_id, &cid) {
        return super::continuous::report(mgr, &job_id, &m).await;
    }
    let c = compare_row(mgr, &job_id, &cid).await?;
    let report = report_of(&c);
    let finished = t21(c.finished_at);
    let items = report
        .as_ref()
        .map(|r| report_items(r, &t21(c.started_at), &finished))
        .unwrap_or_default();
    let total_tables = report.as_ref().map_or(0, |r| r.tables.len());
    let abstract_ = json!({
        "Options": c.config.get("Options").cloned().unwrap_or(json!({})),
        "Objects": c.config.get("Objects").cloned().unwrap_or(json!({})),
        "Conclusion": conclusion(&c),
        "Status": match c.status.as_str() { "success" => "success", "running" | "created" => c.status.as_str(), _ => "failed" },
        "StartedAt": t21(c.started_at),
        "FinishedAt": finished,
    });
    Ok(report_response(abstract_, items, total_tables, &m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(items: Value, options: Value) -> Value {
        json!({"ObjectMode": "custom", "Objects": {"ObjectMode": "partial", "ObjectItems": items}, "Options": options})
    }

    fn refused(config: Value) -> String {
        match compare_mode(&config) {
            Ok((m, _)) => panic!("accepted: {m:?}"),
            Err(e) => format!("{}|{}", e.code, e.message),
        }
    }

    #[test]
    fn custom_tasks_carry_filters_columns_views_and_sampling() {
        let config = custom(
            json!([
                {"DbName": "d", "TableMode": "partial", "Tables": [
                    {"TableName": "t", "ColumnMode": "partial", "Columns": [{"ColumnName": "a"}],
                     "FilterCondition": "id > 10", "FilterTimeZone": "+08:00"},
                    {"TableName": "u"}]},
                {"DbName": "e", "DbMode": "all", "ViewMode": "partial", "Views": [{"ViewName": "v"}]},
            ]),
            json!({"Method": "sampleDataCheck", "SampleRate": 30, "ThreadCount": 2}),
        );
        let (mode, threads) = compare_mode(&config).expect("accepted");
        assert_eq!(threads, 2);
        let VerifyMode::Scoped {
            databases,
            tables,
            views,
            rows_percent,
            time_zone,
        } = mode
        else {
            panic!("{mode:?}")
        };
        assert_eq!(databases, vec!["e".to_string()]);
        assert_eq!(rows_percent, 30);
        assert_eq!(time_zone.as_deref(), Some("+08:00"));
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].columns, Some(vec!["a".to_string()]));
        assert_eq!(tables[0].filter.as_ref().map(|f| f.text()), Some("id > 10"));
        assert_eq!(
            (tables[1].columns.clone(), tables[1].filter.clone()),
            (None, None)
        );
        assert_eq!(
            views,
            vec![ViewScope {
                db: "e".into(),
                views: Some(vec!["v".into()])
            }]
        );
        // sameAsMigrate: full or sampled.
        let (m, _) =
            compare_mode(&json!({"Options": {"Method": "sampleDataCheck", "SampleRate": 10}})).expect("ok");
        assert_eq!(
            m,
            VerifyMode::Sample {
                rows_percent: 10,
                tables_percent: 100
            }
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        let t = |extra: Value| {
            let mut tbl = json!({"TableName": "t"});
            if let (Some(o), Some(e)) = (tbl.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            custom(
                json!([{"DbName": "d", "TableMode": "partial", "Tables": [tbl]}]),
                json!({}),
            )
        };
        assert!(refused(t(json!({"FilterCondition": "SLEEP(1) = 0"}))).contains("Tables.0.FilterCondition"));
        assert!(refused(t(json!({"FilterCondition": "a > 1; DROP TABLE t"}))).contains("semicolon"));
        assert!(refused(t(json!({"ColumnMode": "partial"}))).contains("Tables.0.Columns"));
        assert!(
            refused(t(json!({"ColumnMode": "all", "Columns": [{"ColumnName": "a"}]})))
                .contains("ColumnMode is all")
        );
        assert!(refused(t(json!({"FilterTimeZone": "Asia/Shanghai"}))).contains("FilterTimeZone"));
        let two_zones = custom(
            json!([{"DbName": "d", "TableMode": "partial", "Tables": [
                {"TableName": "t", "FilterTimeZone": "+08:00"}, {"TableName": "u", "FilterTimeZone": "+00:00"}]}]),
            json!({}),
        );
        assert!(refused(two_zones).contains("one time zone"));
        let adv = json!({"ObjectMode": "custom", "Objects": {"ObjectMode": "partial", "AdvancedObjects": ["function"],
            "ObjectItems": [{"DbName": "d", "DbMode": "all"}]}});
        assert!(refused(adv).contains("Objects.AdvancedObjects"));
        assert!(refused(custom(
            json!([{"DbName": "d", "SchemaName": "s", "DbMode": "all"}]),
            json!({})
        ))
        .contains("SchemaName"));
        assert!(
            refused(custom(json!([{"DbName": "d", "ViewMode": "partial"}]), json!({}))).contains("Views")
        );
        assert!(refused(custom(json!([{"DbName": "d"}]), json!({}))).contains("names no object"));
        assert!(refused(json!({"Options": {"Type": "independent"}})).contains("Options.Type"));
        assert!(refused(json!({"Options": {"CompareMode": ["increment"]}})).contains("Options.CompareMode"));
        assert!(refused(json!({"Options": {"ReCheckTime": 2}})).contains("Options.ReCheckTime"));
        assert!(refused(json!({"Options": {"Method": "rowsCount"}})).contains("rowsCount"));
        assert!(
            refused(json!({"Options": {"Method": "sampleDataCheck", "SampleRate": 0}}))
                .contains("SampleRate")
        );
    }
}
