//! Every example job file under `config/` is valid: `ferry validate` accepts it.

mod common;

#[test]
fn every_example_job_file_validates() {
    let dir = ferry_testkit::repo_root().join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("config/ exists") {
        let path = entry.expect("directory entry").path();
        let is_job = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("job-"));
        if !is_job {
            continue;
        }
        let out = common::ferry()
            .arg("validate")
            .arg(&path)
            .output()
            .expect("running ferry validate");
        assert!(out.status.success(), "{}: {}", path.display(), common::text(&out));
        seen += 1;
    }
    assert!(seen >= 2, "expected the example job files in config/");
}
