"""Calls `ferry serve` with the official Tencent Cloud Python SDK, once per signing method.

Environment: FERRY_ENDPOINT (HOST:PORT), FERRY_SECRET_ID, FERRY_SECRET_KEY.
Prints one JSON object per call: {"api", "sign", "method", "code", "request_id", "total"}; "code"
is "Success" or the API error code. Exits non-zero only when the SDK itself fails (not when the
server answers an API error).
"""

import json
import os
import sys

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.dts.v20180330 import dts_client as dts_client_2018
from tencentcloud.dts.v20180330 import models as models_2018
from tencentcloud.dts.v20211206 import dts_client as dts_client_2021
from tencentcloud.dts.v20211206 import models as models_2021

endpoint = os.environ["FERRY_ENDPOINT"]
cred = credential.Credential(os.environ["FERRY_SECRET_ID"], os.environ["FERRY_SECRET_KEY"])


def call(api, sign, method):
    http = HttpProfile(endpoint=endpoint, protocol="http", reqMethod=method, reqTimeout=30)
    profile = ClientProfile(httpProfile=http, signMethod=sign)
    if api == "2018-03-30":
        client = dts_client_2018.DtsClient(cred, "ap-guangzhou", profile)
        req = models_2018.DescribeMigrateJobsRequest()
        req.from_json_string(json.dumps({"Limit": 10, "Offset": 0}))
        do = client.DescribeMigrateJobs
    else:
        client = dts_client_2021.DtsClient(cred, "ap-guangzhou", profile)
        req = models_2021.DescribeMigrationJobsRequest()
        req.from_json_string(json.dumps({"Limit": 10}))
        do = client.DescribeMigrationJobs
    out = {"api": api, "sign": sign, "method": method}
    try:
        resp = json.loads(do(req).to_json_string())
        out.update(code="Success", request_id=resp.get("RequestId"), total=resp.get("TotalCount"))
    except TencentCloudSDKException as e:
        if not e.get_request_id() and e.get_code() in ("ClientNetworkError", "ServerNetworkError"):
            raise
        out.update(code=e.get_code(), request_id=e.get_request_id(), message=e.get_message())
    print(json.dumps(out), flush=True)


for api in ("2018-03-30", "2021-12-06"):
    for sign, method in (
        ("TC3-HMAC-SHA256", "POST"),
        ("TC3-HMAC-SHA256", "GET"),
        ("HmacSHA256", "POST"),
        ("HmacSHA1", "POST"),
        ("HmacSHA256", "GET"),
    ):
        call(api, sign, method)
sys.exit(0)
