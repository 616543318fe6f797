#!/usr/bin/env bash
# The docker-compose demo, end to end: two MySQL 8.4 containers, `ferry serve`, a write load, and a
# live migration driven through Ferry's Tencent-DTS-compatible API with `ferry api`:
#
#   CreateMigrateJob (deploy/demo-job.json) → CreateMigrateCheckJob → DescribeMigrateCheckJob until
#   finished → StartMigrateJob → DescribeMigrateJobs every few seconds (status, progress, lag) →
#   the job reaches 8 ReadyComplete → the writes stop → CompleteMigrateJob → 9 Success →
#   DescribeMigrationDetail (API 2021-12-06: the cut-over position) → `ferry verify` compares
#   source and target.
#
#   scripts/compose-demo.sh                  run the demo (starts from empty demo volumes)
#   DEMO_WRITE_SECONDS=60 scripts/compose-demo.sh   keep the writes running 60 s once caught up (default 20)
#   LOADGEN_RATE=200 LOADGEN_ROWS=200000 scripts/compose-demo.sh   a heavier load (defaults 50 tx/s, 50000 rows × 4 tables)
#   DEMO_KEEP_VOLUMES=1 scripts/compose-demo.sh     do not delete the demo volumes first
#   DEMO_DOWN=1 scripts/compose-demo.sh      stop the containers and delete the volumes at the end
#
# Needs Docker with the Compose v2 plugin (`docker compose`), and python3 or jq on this machine to
# read the API's JSON answers. The demo's accounts, passwords and API keys are demo defaults
# (docker-compose.yml); the API listens on 127.0.0.1:8080 only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WRITE_SECONDS="${DEMO_WRITE_SECONDS:-20}"
POLL=3

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\ncompose-demo: %s\n' "$*" >&2; exit 1; }

if ! command -v docker >/dev/null 2>&1; then
  die "docker is not installed. Install Docker Engine and its Compose plugin (https://docs.docker.com/engine/install/), or run the demo without containers: scripts/demo.sh"
fi
if ! docker compose version >/dev/null 2>&1; then
  die "\`docker compose\` is not available (the Compose v2 plugin is missing: install the docker-compose-plugin package, or Docker Desktop). The old docker-compose v1 is not supported."
fi
if ! docker info >/dev/null 2>&1; then
  die "cannot reach the Docker engine (is the daemon running, and may this user use it?)"
fi
if command -v python3 >/dev/null 2>&1; then JSON=python3
elif command -v jq >/dev/null 2>&1; then JSON=jq
else die "python3 or jq is needed to read the API's JSON answers"
fi

# json PY_EXPR JQ_FILTER: reads a `ferry api` answer (the Response object) on stdin; r is the
# Response in the Python expression, the jq filter gets it as `.`.
json() {
  if [ "$JSON" = python3 ]; then
    python3 -c 'import json,sys
r = json.load(sys.stdin)
r = r.get("Response", r)
v = eval(sys.argv[1])
print("" if v is None else v)' "$1"
  else
    jq -r "(.Response // .) | $2 // empty"
  fi
}

dc() { docker compose "$@"; }
# `ferry api` inside the ferry container: the API keys come from its environment.
api() { dc exec -T ferry ferry api "$@"; }
# Calls an action; on an API error prints the answer and stops.
call() {
  local out
  if ! out=$(api "$@"); then
    printf '%s\n' "$out" >&2
    die "ferry api $1 failed (see the error above; docs/api.md lists the codes, docs/troubleshooting.md what to do)"
  fi
  printf '%s\n' "$out"
}

STATUS_NAMES=(- Creating Created Checking CheckPass CheckNotPass ReadyRun Running ReadyComplete Success Failed Stopping Completing)
describe_job() { call DescribeMigrateJobs --param JobId="$JOB_ID"; }
# One line: status, overall progress, current step, lag.
show_job() {
  local out="$1"
  if [ "$JSON" = python3 ]; then
    python3 -c 'import json,sys
r = json.load(sys.stdin); r = r.get("Response", r)
names = sys.argv[1].split()
j = (r.get("JobList") or [{}])[0]; d = j.get("Detail") or {}
steps = {s.get("StepNo"): s.get("StepName") for s in d.get("StepInfo") or []}
st = j.get("Status", 0)
print("  status %2s %-13s progress %3s%%  step %s/%s %-44s lag %ss, %s MB" % (
    st, names[st] if isinstance(st, int) and 0 <= st < len(names) else "?", d.get("Progress", "?"),
    d.get("StepNow", "?"), d.get("StepAll", "?"), steps.get(d.get("StepNow"), ""),
    d.get("SecondsBehindMaster", "?"), d.get("MasterSlaveDistance", "?")))' "${STATUS_NAMES[*]}" <<<"$out"
  else
    jq -r '(.Response // .) | .JobList[0] | "  status \(.Status)  progress \(.Detail.Progress)%  step \(.Detail.StepNow)/\(.Detail.StepAll)  lag \(.Detail.SecondsBehindMaster)s, \(.Detail.MasterSlaveDistance) MB"' <<<"$out"
  fi
}
job_status() { json '(r.get("JobList") or [{}])[0].get("Status")' '.JobList[0].Status' <<<"$1"; }

trap 'echo; echo "Interrupted. The containers keep running: docker compose ps / docker compose logs ferry; docker compose down -v removes them."' INT

if [ "${DEMO_KEEP_VOLUMES:-0}" != 1 ]; then
  say "Removing an earlier run of the demo (containers and the demo's volumes)"
  dc down -v --remove-orphans
fi

say "Building the ferry image and starting MySQL 8.4 source and target and ferry serve"
echo "(the first build compiles Ferry in the container: several minutes)"
dc up -d --build --wait source target ferry

say "Starting the load generator: sample tables in database demo, then ${LOADGEN_RATE:-50} transactions/s"
dc up -d loadgen
deadline=$((SECONDS + 600))
until dc logs loadgen 2>&1 | grep -q 'prepared .* tables'; do
  if [ -n "$(dc ps -a --status exited -q loadgen)" ]; then
    dc logs loadgen >&2
    die "the load generator stopped before the sample data was ready (logs above)"
  fi
  [ $SECONDS -lt $deadline ] || die "the sample data was not ready after 10 minutes: docker compose logs loadgen"
  sleep 2
done
dc logs loadgen 2>&1 | grep 'prepared' | tail -1

say "CreateMigrateJob with deploy/demo-job.json (MigrateType 3: structure, full data, incremental; full verification)"
out=$(call CreateMigrateJob --json /etc/ferry/demo-job.json)
printf '%s\n' "$out"
JOB_ID=$(json 'r.get("JobId")' '.JobId' <<<"$out")
[ -n "$JOB_ID" ] || die "CreateMigrateJob answered without a JobId"

say "CreateMigrateCheckJob: the pre-check (connectivity, grants, binlog settings, …)"
call CreateMigrateCheckJob --param JobId="$JOB_ID" >/dev/null
while :; do
  out=$(call DescribeMigrateCheckJob --param JobId="$JOB_ID")
  status=$(json 'r.get("Status")' '.Status' <<<"$out")
  echo "  check $status, $(json 'r.get("Progress")' '.Progress' <<<"$out")%"
  [ "$status" = finished ] && break
  sleep "$POLL"
done
printf '%s\n' "$out"
flag=$(json 'r.get("CheckFlag")' '.CheckFlag' <<<"$out")
# CheckFlag: 1 passed, 0 did not pass, 3 not checked (Tencent's SDK; docs/api.md).
[ "$flag" = 1 ] || die "the pre-check did not pass (CheckFlag $flag): fix what ErrorMessage above names, then run the demo again"

say "StartMigrateJob, then DescribeMigrateJobs every ${POLL}s"
call StartMigrateJob --param JobId="$JOB_ID" >/dev/null
ready_since=
while :; do
  out=$(describe_job)
  show_job "$out"
  status=$(job_status "$out")
  case "$status" in
    8)
      if [ -z "$ready_since" ]; then
        ready_since=$SECONDS
        echo "  ready to complete (caught up); the writes go on for ${WRITE_SECONDS}s: watch the lag"
      elif [ $((SECONDS - ready_since)) -ge "$WRITE_SECONDS" ]; then
        break
      fi
      ;;
    9) die "the job finished before it was completed (unexpected for MigrateType 3)" ;;
    10 | 11)
      printf '%s\n' "$out" >&2
      die "the migration failed (status $status): docker compose logs ferry, and docs/troubleshooting.md"
      ;;
  esac
  sleep "$POLL"
done

say "Cut-over: stopping the writes (docker compose stop loadgen), then CompleteMigrateJob"
dc stop loadgen
dc logs loadgen 2>&1 | tail -1
call CompleteMigrateJob --param JobId="$JOB_ID" >/dev/null
while :; do
  out=$(describe_job)
  show_job "$out"
  status=$(job_status "$out")
  [ "$status" = 9 ] && break
  if [ "$status" = 10 ]; then
    printf '%s\n' "$out" >&2
    die "completing the job failed: docker compose logs ferry"
  fi
  sleep "$POLL"
done

# The cut-over position, as the 2021-12-06 DescribeMigrationDetail reports it.
out=$(call DescribeMigrationDetail --api-version 2021-12-06 --param JobId="$JOB_ID")
echo "  incremental step: $(json 'next((s.get("StepMessage") for s in r["StepInfo"]["StepInfo"] if s.get("StepId") == "incremental"), "")' \
  '.StepInfo.StepInfo[] | select(.StepId == "incremental") | .StepMessage' <<<"$out")"

say "Verifying: ferry verify /etc/ferry/demo-job.json (exact checksums of every table on both sides)"
status=0
dc exec -T ferry ferry verify /etc/ferry/demo-job.json || status=$?
if [ "$status" = 0 ]; then say "Source and target are equal."; else say "Differences found (exit $status)."; fi

if [ "${DEMO_DOWN:-0}" = 1 ]; then
  dc down -v
else
  cat <<EOF

The containers keep running:
  docker compose exec ferry ferry api DescribeMigrateJobs        the job list (docs/api.md)
  mysql -h127.0.0.1 -P33061 -uferry -pferry-demo-pw demo          the source (33062: the target)
  docker compose down -v                                          stop everything, delete the volumes
EOF
fi
exit "$status"
