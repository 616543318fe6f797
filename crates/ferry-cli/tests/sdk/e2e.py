"""A migration end to end through the official Tencent Cloud Python SDK against `ferry serve`.

Environment: FERRY_ENDPOINT (HOST:PORT), FERRY_SECRET_ID, FERRY_SECRET_KEY, FERRY_JOB (the
CreateMigrateJob request as JSON), FERRY_WRITER_DONE (a file that exists once the test's writer
has stopped). Steps: an API error raised by the SDK, CreateMigrateJob, CreateMigrateCheckJob, DescribeMigrateCheckJob until
finished, StartMigrateJob, DescribeMigrateJobs until Status 8 (progress and SecondsBehindMaster
printed), CompleteMigrateJob once the writer is done, DescribeMigrateJobs until Status 9, then the
2021-12-06 DescribeMigrationCheckJob and DescribeMigrationDetail; a response field unknown to the
SDK's models fails the run. Prints one JSON object per step; the last line is
{"step": "done", ...}. Exits non-zero on any error.

FERRY_RAW_CREATE=1 sends the CreateMigrateJob request through the SDK's generic `call` as given
(with Ferry's `Ferry` extension, which the typed model drops). FERRY_EXPECT_CHECK_FAILURE=1
expects the check to fail: it prints the check's message and StartMigrateJob's refusal, and ends.
FERRY_CREATE_ONLY=1 ends after CreateMigrateJob (the caller drives the rest).
"""

import json
import os
import sys
import time
import warnings

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.dts.v20180330 import dts_client as dts_2018
from tencentcloud.dts.v20180330 import models as m18
from tencentcloud.dts.v20211206 import dts_client as dts_2021
from tencentcloud.dts.v20211206 import models as m21

# A response field the SDK's models do not know is a wire-compatibility bug: fail on it.
warnings.filterwarnings("error", message=".*fileds are useless.*")

cred = credential.Credential(os.environ["FERRY_SECRET_ID"], os.environ["FERRY_SECRET_KEY"])
profile = ClientProfile(httpProfile=HttpProfile(endpoint=os.environ["FERRY_ENDPOINT"], protocol="http", reqTimeout=60))
c18 = dts_2018.DtsClient(cred, "ap-guangzhou", profile)
c21 = dts_2021.DtsClient(cred, "ap-guangzhou", profile)


def emit(step, **kw):
    kw["step"] = step
    print(json.dumps(kw), flush=True)


def must(client, action, params):
    """Calls an action through the SDK's transport and fails on an API error in the body, whatever
    the Content-Type (the SDK itself only raises for exactly `application/json`)."""
    body = json.loads(client.call(action, params))
    err = body.get("Response", {}).get("Error")
    if err:
        raise SystemExit(f"{action}: {err.get('Code')}: {err.get('Message')}")
    return body["Response"]


def req(model, params):
    r = model()
    r.from_json_string(json.dumps(params))
    return r


def wait(what, check, timeout=600):
    deadline = time.time() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def job(job_id):
    must(c18, "DescribeMigrateJobs", {"JobId": job_id})
    resp = c18.DescribeMigrateJobs(req(m18.DescribeMigrateJobsRequest, {"JobId": job_id}))
    assert resp.TotalCount == 1, resp.to_json_string()
    return resp.JobList[0]


def status_is(job_id, want):
    def check():
        j = job(job_id)
        if j.Status != want and j.Status in (5, 9, 10):
            raise SystemExit(f"the job ended in status {j.Status} while waiting for {want}")
        return j if j.Status == want else None
    return check


# An API error reaches the SDK user as a TencentCloudSDKException with its code.
try:
    c18.DescribeMigrateCheckJob(req(m18.DescribeMigrateCheckJobRequest, {"JobId": "dts-00000000"}))
    raise SystemExit("DescribeMigrateCheckJob of a missing job: the SDK raised no error "
                     "(its error check needs Content-Type exactly application/json)")
except TencentCloudSDKException as e:
    if e.get_code() != "ResourceNotFound.JobNotExist":
        raise SystemExit(f"DescribeMigrateCheckJob of a missing job: {e.get_code()}: {e.get_message()}")
emit("sdk_error", code="ResourceNotFound.JobNotExist")

# The typed request model drops fields it does not know; what it sends is what a user sends.
if os.environ.get("FERRY_RAW_CREATE") == "1":
    job_id = must(c18, "CreateMigrateJob", json.loads(os.environ["FERRY_JOB"]))["JobId"]
else:
    create = req(m18.CreateMigrateJobRequest, json.loads(os.environ["FERRY_JOB"]))
    job_id = must(c18, "CreateMigrateJob", create._serialize())["JobId"]
emit("created", job_id=job_id)
if os.environ.get("FERRY_CREATE_ONLY") == "1":
    sys.exit(0)
must(c18, "CreateMigrateCheckJob", {"JobId": job_id})
check = wait("the check", lambda: (lambda r: r if r.Status == "finished" else None)(
    c18.DescribeMigrateCheckJob(req(m18.DescribeMigrateCheckJobRequest, {"JobId": job_id}))))
emit("checked", status=check.Status, check_flag=check.CheckFlag, progress=check.Progress)
if os.environ.get("FERRY_EXPECT_CHECK_FAILURE") == "1":
    if check.CheckFlag == 1:
        raise SystemExit("the check passed, but it was expected to fail")
    try:
        c18.StartMigrateJob(req(m18.StartMigrateJobRequest, {"JobId": job_id}))
        raise SystemExit("StartMigrateJob after a failed check: no error")
    except TencentCloudSDKException as e:
        refused = e.get_code()
    emit("check_failed", message=check.ErrorMessage, start_refused=refused)
    emit("done", job_id=job_id)
    sys.exit(0)
if check.CheckFlag != 1:
    raise SystemExit(f"the check did not pass: {check.ErrorMessage}")
must(c18, "StartMigrateJob", {"JobId": job_id})
emit("started")
ready = wait("status 8", status_is(job_id, 8))
emit("ready", status=ready.Status, progress=ready.Detail.Progress, step_now=ready.Detail.StepNow,
     seconds_behind_master=ready.Detail.SecondsBehindMaster, step_ids=[s.StepId for s in ready.Detail.StepInfo],
     password=ready.SrcInfo.Password)
wait("the writer", lambda: os.path.exists(os.environ["FERRY_WRITER_DONE"]))
must(c18, "CompleteMigrateJob", {"JobId": job_id})
done = wait("status 9", status_is(job_id, 9))
emit("completed", status=done.Status, progress=done.Detail.Progress, end_time=done.EndTime,
     steps={st.StepId: st.Status for st in done.Detail.StepInfo},
     errors=[e.ErrorLog for e in (done.ErrorInfo or [])])
items = c21.DescribeMigrationCheckJob(req(m21.DescribeMigrationCheckJobRequest, {"JobId": job_id}))
emit("check_items", status=items.Status, check_flag=items.CheckFlag, steps=len(items.StepInfo),
     first=items.StepInfo[0].StepId if items.StepInfo else None)
detail = c21.DescribeMigrationDetail(req(m21.DescribeMigrationDetailRequest, {"JobId": job_id}))
emit("detail", status=detail.Status, steps=[s.StepId for s in detail.StepInfo.StepInfo],
     check_steps=len(detail.CheckStepInfo.Progress.Steps), src_password=detail.SrcInfo.Info[0].Password)
emit("done", job_id=job_id)
sys.exit(0)
