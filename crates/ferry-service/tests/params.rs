//! Parameter validation of the actions, in-process: unknown, missing, wrong type, out-of-range
//! values and the semantic checks of the job spec, each with its error code and the parameter
//! named; a refused create leaves no job. Flat (GET/form) parameters are converted by schema.

mod common;

use anyhow::Result;
use common::*;
use ferry_api::ParamEncoding;
use serde_json::{json, Value};

fn with(mut v: Value, path: &[&str], new: Value) -> Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = cur.get_mut(*p).expect("path");
    }
    if new.is_null() {
        cur.as_object_mut().map(|o| o.remove(path[path.len() - 1]));
    } else {
        cur[path[path.len() - 1]] = new;
    }
    v
}

#[tokio::test]
async fn bad_parameters_get_their_codes() -> Result<()> {
    let dir = data_dir("params");
    let svc = open(&dir).await?;
    let good = job_request("params", json!([{"Database": "svc_params"}]), 2, json!({}));
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(good.clone(), &["Bogus"], json!(1)),
            "UnknownParameter",
            "Bogus",
        ),
        (
            with(good.clone(), &["SrcInfo", "Bogus"], json!(1)),
            "UnknownParameter",
            "SrcInfo.Bogus",
        ),
        (
            with(good.clone(), &["JobName"], Value::Null),
            "MissingParameter",
            "JobName",
        ),
        (
            with(good.clone(), &["MigrateOption", "MigrateType"], Value::Null),
            "MissingParameter",
            "MigrateOption.MigrateType",
        ),
        (
            with(good.clone(), &["MigrateOption", "RunMode"], json!("1")),
            "InvalidParameter",
            "MigrateOption.RunMode",
        ),
        (
            with(good.clone(), &["SrcInfo", "Port"], json!("3306")),
            "InvalidParameter",
            "SrcInfo.Port",
        ),
        (
            with(good.clone(), &["MigrateOption", "MigrateType"], json!(4)),
            "InvalidParameterValue",
            "MigrateOption.MigrateType",
        ),
        (
            with(good.clone(), &["SrcInfo", "Port"], json!(70000)),
            "InvalidParameterValue",
            "SrcInfo.Port",
        ),
        (
            with(good.clone(), &["SrcDatabaseType"], json!("redis")),
            "InvalidParameterValue",
            "SrcDatabaseType",
        ),
        (
            with(good.clone(), &["Ferry", "Threads"], json!(0)),
            "InvalidParameterValue",
            "Ferry.Threads",
        ),
        (
            with(
                good.clone(),
                &["DatabaseInfo"],
                json!("[{\"Database\":\"mysql\"}]"),
            ),
            "InvalidParameterValue",
            "DatabaseInfo",
        ),
        (
            with(good.clone(), &["MigrateOption", "RunMode"], json!(2)),
            "InvalidParameterValue",
            "MigrateOption.ExpectTime",
        ),
    ];
    for (req, code, field) in cases {
        let e = call(&svc, "2018-03-30", "CreateMigrateJob", req)
            .await
            .unwrap_err();
        assert_eq!(e.code, code, "{field}: {e}");
        assert!(
            e.message.contains(field),
            "{code} should name {field}: {}",
            e.message
        );
    }
    let list = ok18(&svc, "DescribeMigrateJobs", json!({})).await?;
    assert_eq!(list["TotalCount"], 0, "a refused create leaves no job");

    for (p, code) in [
        (json!({"Limit": 0}), "InvalidParameterValue"),
        (json!({"Limit": 101}), "InvalidParameterValue"),
        (json!({"Offset": -1}), "InvalidParameterValue"),
        (json!({"Order": "Password"}), "InvalidParameterValue"),
        (json!({"OrderSeq": "UP"}), "InvalidParameterValue"),
        (json!({"Limit": "ten"}), "InvalidParameter"),
        (json!({"Filter": 1}), "UnknownParameter"),
    ] {
        let e = call(&svc, "2018-03-30", "DescribeMigrateJobs", p.clone())
            .await
            .unwrap_err();
        assert_eq!(e.code, code, "{p}");
    }
    for action in ["StartMigrateJob", "DescribeMigrateCheckJob", "DeleteMigrateJob"] {
        let e = call(&svc, "2018-03-30", action, json!({})).await.unwrap_err();
        assert_eq!(e.code, "MissingParameter", "{action}");
        let e = call(&svc, "2018-03-30", action, json!({"JobId": "dts-00000000"}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "ResourceNotFound.JobNotExist", "{action}");
    }
    let e = call(&svc, "2018-03-30", "DescribeMigrationDetail", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "InvalidAction");
    let e = call(&svc, "2017-01-01", "DescribeMigrateJobs", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "NoSuchVersion");

    // Flat parameters: strings converted by the schema; listing order and paging.
    let flat = json!({
        "JobName": "flat-b",
        "MigrateOption": {"RunMode": "1", "MigrateType": "1"},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": "127.0.0.1", "Port": "3306", "User": "u", "Password": "flat-secret"},
        "DstDatabaseType": "mysql", "DstAccessType": "cdb",
        "DstInfo": {"Ip": "127.0.0.1", "Port": "3307", "User": "u", "Password": "flat-secret"},
    });
    let a = call_enc(
        &svc,
        "2018-03-30",
        "CreateMigrateJob",
        flat.clone(),
        ParamEncoding::Flat,
    )
    .await?;
    let b = call_enc(
        &svc,
        "2018-03-30",
        "CreateMigrateJob",
        with(flat.clone(), &["JobName"], json!("flat-a")),
        ParamEncoding::Flat,
    )
    .await?;
    let e = call_enc(
        &svc,
        "2018-03-30",
        "CreateMigrateJob",
        with(flat, &["SrcInfo", "Port"], json!("x")),
        ParamEncoding::Flat,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "InvalidParameter");
    let list = call_enc(
        &svc,
        "2018-03-30",
        "DescribeMigrateJobs",
        json!({"Order": "JobName", "OrderSeq": "ASC", "Limit": "1"}),
        ParamEncoding::Flat,
    )
    .await?;
    assert_eq!(list["TotalCount"], 2);
    assert_eq!(list["JobList"][0]["JobId"], b["JobId"]);
    assert_eq!(list["JobList"][0]["SrcInfo"]["Port"], 3306);
    assert_eq!(
        list["JobList"][0]["MigrateOption"]["ExpectTime"],
        "0000-00-00 00:00:00"
    );
    assert!(!list.contains_key("Password") && !serde_json::to_string(&list)?.contains("flat-secret"));
    let list = ok18(&svc, "DescribeMigrateJobs", json!({"JobName": "flat-b"})).await?;
    assert_eq!(
        (list["TotalCount"].clone(), list["JobList"][0]["JobId"].clone()),
        (json!(1), a["JobId"].clone())
    );
    let list = ok18(&svc, "DescribeMigrateJobs", json!({"Offset": 5})).await?;
    assert_eq!(
        (list["TotalCount"].clone(), list["JobList"].clone()),
        (json!(2), json!([]))
    );
    svc.shutdown().await;
    Ok(())
}
