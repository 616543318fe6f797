"""Typed-SDK conformance: every action Ferry serves is called through the official Tencent Cloud
Python SDK's transport against `ferry serve`, and every field of every response is checked,
recursively, against the type the SDK's models declare for it (the `:type X: ...` lines of the
model classes in `tencentcloud/dts/v20180330/models.py` and `v20211206/models.py`): `str` a JSON
string, `int` an integer (not a boolean), `float` a number, `bool` a boolean, `list of T` an array
of T, a model class an object of that class. A field the models do not declare is a failure too
(the Python SDK drops it with a warning; typed SDKs ignore it). `null` is accepted (Tencent marks
many fields "may return null"; typed SDKs decode it as absent).

Environment: FERRY_ENDPOINT (HOST:PORT), FERRY_SECRET_ID, FERRY_SECRET_KEY, FERRY_JOB (a
CreateMigrateJob request as JSON, MigrateType 3, over a small database whose first table is
FERRY_TABLE). Prints one JSON line per checked response; exits non-zero listing every mismatch.
"""

import json
import os
import re
import sys
import time

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.dts.v20180330 import dts_client as dts_2018
from tencentcloud.dts.v20180330 import models as m18
from tencentcloud.dts.v20211206 import dts_client as dts_2021
from tencentcloud.dts.v20211206 import models as m21

cred = credential.Credential(os.environ["FERRY_SECRET_ID"], os.environ["FERRY_SECRET_KEY"])
profile = ClientProfile(httpProfile=HttpProfile(endpoint=os.environ["FERRY_ENDPOINT"], protocol="http", reqTimeout=120))
CLIENTS = {
    "2018-03-30": (dts_2018.DtsClient(cred, "ap-guangzhou", profile), m18),
    "2021-12-06": (dts_2021.DtsClient(cred, "ap-guangzhou", profile), m21),
}
TYPE_LINE = re.compile(r":type (\w+): (.+)")
MISMATCHES = []
CHECKED = {}


def declared(models, cls):
    """The declared field types of a model class: name -> type text."""
    c = getattr(models, cls, None)
    if c is None:
        return None
    doc = c.__init__.__doc__ or ""
    return {n: t.strip() for n, t in TYPE_LINE.findall(doc)}


def check_type(models, ty, v, path):
    if v is None:
        return
    CHECKED[path] = ty
    if ty.startswith("list of "):
        if not isinstance(v, list):
            MISMATCHES.append(f"{path}: declared {ty}, got {json.dumps(v)[:80]}")
            return
        for i, x in enumerate(v):
            check_type(models, ty[len("list of "):], x, f"{path}[{i}]")
        return
    if ty == "str":
        ok = isinstance(v, str)
    elif ty in ("int", "int non-negative"):
        ok = isinstance(v, int) and not isinstance(v, bool) and (ty == "int" or v >= 0)
    elif ty == "float":
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif ty == "bool":
        ok = isinstance(v, bool)
    else:
        cls = ty.split(".")[-1].strip("`") if ty.startswith(":class:") else ty
        fields = declared(models, cls)
        if fields is None:
            MISMATCHES.append(f"{path}: declared type {ty} is not a model class")
            return
        if not isinstance(v, dict):
            MISMATCHES.append(f"{path}: declared {cls} (an object), got {json.dumps(v)[:80]}")
            return
        for k, x in v.items():
            if k not in fields:
                MISMATCHES.append(f"{path}.{k}: not a field of {cls}")
            else:
                check_type(models, fields[k], x, f"{path}.{k}")
        return
    if not ok:
        MISMATCHES.append(f"{path}: declared {ty}, got {json.dumps(v)[:80]}")


def call(version, action, params, expect_error=None):
    """Calls an action, type-checks its response against `<Action>Response`, returns it."""
    client, models = CLIENTS[version]
    try:
        body = json.loads(client.call(action, params))
    except TencentCloudSDKException as e:
        # The SDK raises on an error envelope it could parse: the envelope was well-formed.
        body = {"Response": {"Error": {"Code": e.get_code(), "Message": e.get_message()},
                             "RequestId": e.get_request_id() or ""}}
    resp = body.get("Response", {})
    err = resp.get("Error")
    if err:
        if expect_error and err.get("Code", "").startswith(expect_error):
            if not isinstance(err.get("Message"), str) or not isinstance(resp.get("RequestId"), str):
                MISMATCHES.append(f"{version} {action}: error envelope {json.dumps(resp)[:200]}")
            print(json.dumps({"action": action, "version": version, "error": err.get("Code")}), flush=True)
            return resp
        raise SystemExit(f"{version} {action}: {err.get('Code')}: {err.get('Message')}")
    if expect_error:
        raise SystemExit(f"{version} {action}: expected {expect_error}, got {json.dumps(resp)[:300]}")
    check_type(models, f"{action}Response", resp, f"{version}:{action}")
    print(json.dumps({"action": action, "version": version, "fields": len(json.dumps(resp))}), flush=True)
    return resp


def wait(what, f, timeout=300):
    deadline = time.time() + timeout
    while True:
        r = f()
        if r:
            return r
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def jobs(**kw):
    return call("2018-03-30", "DescribeMigrateJobs", kw)


def job(job_id):
    return jobs(JobId=job_id)["JobList"][0]


def self_test():
    """The checker itself finds the mismatches it is for (the issue #13 shape included)."""
    check_type(m18, "DescribeMigrateJobsResponse",
               {"TotalCount": "1", "JobList": [{"DatabaseInfo": [], "Status": True, "Bogus": 1,
                                                "Detail": {"StepInfo": [{"StepNo": 1.5}]}}]}, "selftest")
    want = ["selftest.TotalCount", "selftest.JobList[0].DatabaseInfo", "selftest.JobList[0].Status",
            "selftest.JobList[0].Bogus", "selftest.JobList[0].Detail.StepInfo[0].StepNo"]
    got = sorted(m.split(":")[0] for m in MISMATCHES)
    if got != sorted(want):
        raise SystemExit(f"the type checker is broken: {MISMATCHES}")
    MISMATCHES.clear()
    CHECKED.clear()


def main():
    self_test()
    req = json.loads(os.environ["FERRY_JOB"])
    table = os.environ["FERRY_TABLE"]
    db = json.loads(req["DatabaseInfo"])[0]["Database"]
    req["Tags"] = [{"TagKey": "suite", "TagValue": "types"}]
    req["SrcNodeType"] = "simple"
    req["SrcInfoMulti"] = []
    req["MigrateOption"]["ConsistencyType"] = 3
    req["MigrateOption"]["ConsistencyParams"] = {"SelectRowsPerTable": 50, "TablesSelectAll": 100, "TablesSelectCount": 100}
    a = call("2018-03-30", "CreateMigrateJob", req)["JobId"]
    other = dict(req, JobName="types-other", Tags=[{"TagKey": "suite", "TagValue": "other"}])
    b = call("2018-03-30", "CreateMigrateJob", other)["JobId"]

    # DescribeMigrateJobs: the declared types, DatabaseInfo a String holding the JSON as sent, and
    # TagFilters keeping only the tagged job.
    info = job(a)
    if not isinstance(info["DatabaseInfo"], str) or json.loads(info["DatabaseInfo"]) != json.loads(req["DatabaseInfo"]):
        MISMATCHES.append(f"DatabaseInfo: {info['DatabaseInfo']!r}")
    tagged = jobs(TagFilters=[{"TagKey": "suite", "TagValue": ["types"]}])
    if [j["JobId"] for j in tagged["JobList"]] != [a]:
        MISMATCHES.append(f"TagFilters: {[j['JobId'] for j in tagged['JobList']]} instead of [{a}]")
    if len(jobs(TagFilters=[{"TagKey": "suite"}])["JobList"]) < 2:
        MISMATCHES.append("TagFilters with a key only: both jobs expected")
    call("2018-03-30", "ModifyMigrateJob", {"JobId": b, "JobName": "types-other-2", "SrcNodeType": "simple"})
    call("2018-03-30", "CreateMigrateJob", dict(req, SrcNodeType="cluster"), expect_error="InvalidParameter")
    call("2018-03-30", "DeleteMigrateJob", {"JobId": b})

    # Pre-check, through both versions.
    call("2018-03-30", "CreateMigrateCheckJob", {"JobId": a})
    wait("the check", lambda: call("2018-03-30", "DescribeMigrateCheckJob", {"JobId": a})["Status"] == "finished")
    chk = call("2021-12-06", "DescribeMigrationCheckJob", {"JobId": a})
    warn = [s["StepId"] for s in chk.get("StepInfo", []) if s["StepStatus"] == "warning"]
    if warn:
        call("2021-12-06", "SkipCheckItem", {"JobId": a, "StepIds": warn[:1]})
    else:
        call("2021-12-06", "SkipCheckItem", {"JobId": a, "StepIds": ["no-such-item"]}, expect_error="InvalidParameter")
    wait("the check", lambda: call("2018-03-30", "DescribeMigrateCheckJob", {"JobId": a})["Status"] == "finished")

    # Running: detail, rate limits, pause and resume, compare tasks.
    call("2018-03-30", "StartMigrateJob", {"JobId": a})
    call("2021-12-06", "DescribeMigrationDetail", {"JobId": a})
    wait("status 8", lambda: job(a)["Status"] == 8, timeout=600)
    call("2021-12-06", "ModifyMigrateRateLimit", {"JobId": a, "DumpThread": 2, "LoadRps": 100000, "SinkerThread": 2})
    call("2021-12-06", "PauseMigrateJob", {"JobId": a, "PauseMode": "target"})
    call("2021-12-06", "DescribeMigrationDetail", {"JobId": a})
    call("2021-12-06", "ResumeMigrateJob", {"JobId": a})
    cmp_options = {"Method": "sampleDataCheck", "SampleRate": 50, "ThreadCount": 2}
    objects = {"ObjectMode": "partial", "ObjectItems": [{"DbName": db, "TableMode": "partial", "Tables": [
        {"TableName": table, "FilterCondition": "id > 10", "ColumnMode": "all"}]}]}
    cid = call("2021-12-06", "CreateCompareTask", {"JobId": a, "TaskName": "types", "ObjectMode": "custom",
                                                    "Objects": objects, "Options": cmp_options})["CompareTaskId"]
    call("2021-12-06", "CreateCompareTask", {"JobId": a, "ObjectMode": "custom", "Objects": {"ObjectMode": "partial",
         "ObjectItems": [{"DbName": db, "TableMode": "partial", "Tables": [{"TableName": table, "FilterCondition": "SLEEP(1) = 0"}]}]}},
         expect_error="InvalidParameter")
    call("2021-12-06", "StartCompare", {"JobId": a, "CompareTaskId": cid})
    wait("the compare task", lambda: call("2021-12-06", "DescribeCompareTasks", {"JobId": a})["Items"][0]["Status"] in ("success", "failed"))
    report = call("2021-12-06", "DescribeCompareReport", {"JobId": a, "CompareTaskId": cid})
    ab = report["Abstract"]
    if ab["Status"] != "success" or ab["SrcSampleRows"] <= 0:
        MISMATCHES.append(f"compare report: {json.dumps(ab)[:400]}")
    cid2 = call("2021-12-06", "CreateCompareTask", {"JobId": a})["CompareTaskId"]
    call("2021-12-06", "StopCompare", {"JobId": a, "CompareTaskId": cid2})
    call("2021-12-06", "DescribeCompareTasks", {"JobId": a, "CompareTaskId": cid2})
    call("2021-12-06", "DescribeMigrationDetail", {"JobId": a})

    # Cut-over: CompleteMode waitForSync; immediately is refused by name.
    call("2018-03-30", "CompleteMigrateJob", {"JobId": a, "CompleteMode": "immediately"}, expect_error="InvalidParameter")
    wait("status 8 again", lambda: job(a)["Status"] == 8, timeout=600)
    call("2018-03-30", "CompleteMigrateJob", {"JobId": a, "CompleteMode": "waitForSync"})
    wait("status 9", lambda: job(a)["Status"] in (9, 10), timeout=600)
    done = job(a)
    call("2021-12-06", "DescribeMigrationDetail", {"JobId": a})
    if done["Status"] != 9:
        MISMATCHES.append(f"job ended in status {done['Status']}: {json.dumps(done.get('ErrorInfo'))}")

    # A second job, started and stopped.
    again = dict(req, JobName="types-stop", MigrateOption=dict(req["MigrateOption"], ConsistencyType=1),
                 Ferry=dict(req.get("Ferry") or {}, ExistingTables="drop"))
    c = call("2018-03-30", "CreateMigrateJob", again)["JobId"]
    call("2018-03-30", "CreateMigrateCheckJob", {"JobId": c})
    wait("the check", lambda: call("2018-03-30", "DescribeMigrateCheckJob", {"JobId": c})["Status"] == "finished")
    call("2018-03-30", "StartMigrateJob", {"JobId": c})
    wait("the run", lambda: job(c)["Status"] in (7, 8))
    call("2018-03-30", "StopMigrateJob", {"JobId": c})
    wait("the stop", lambda: job(c)["Status"] not in (6, 7, 8, 11))
    jobs()

    served = {v: set() for v in CLIENTS}
    for path in CHECKED:
        version, action = path.split(":")[0], path.split(":")[1].split(".")[0]
        served[version].add(action)
    print(json.dumps({"step": "done", "fields_checked": len(CHECKED), "actions": {v: sorted(a) for v, a in served.items()},
                      "mismatches": MISMATCHES}), flush=True)
    if MISMATCHES:
        for m in MISMATCHES:
            print("MISMATCH " + m, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
