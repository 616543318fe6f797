#!/usr/bin/env python3
"""Static checks of the docker-compose demo, the container image and the demo job.

Docker cannot run on the project's build machines, so the test suite checks here what can be
checked without it:

- docker-compose.yml parses; the services source, target, ferry and loadgen exist with their
  images or build, health checks, depends_on conditions, named volumes and bind mounts;
- every published port is bound to 127.0.0.1;
- the optional cluster (profile `cluster`): at least two `ferry serve` nodes on one MySQL store
  on the target server, each with its own node id and volume, the store's password and key from
  the environment, and the store account granted on its database only;
- the source runs with the binlog settings Ferry's pre-check requires (log-bin, ROW, FULL,
  server-id, GTID), the target has a different server-id;
- the ferry service runs `ferry serve` on 0.0.0.0:8080 with its data directory on a volume and
  the API keys taken from the environment; loadgen runs `ferry loadgen` against the source;
- the Dockerfile is multi-stage, copies every crate's manifest in its dependency layer, runs as a
  non-root user, and copies nothing that looks like a secret; .dockerignore excludes the build
  output, the test servers and .git;
- the grants of deploy/mysql/*-init.sql are exactly those docs/operations.md lists;
- config/ferry.toml (the example server configuration) parses, with its commented-out examples
  too, and names every setting; with a built binary, `ferry serve --config` accepts it;
- deploy/demo-job.json points at the compose services with the accounts the init SQL creates,
  and, when a built `ferry` binary is given, passes `ferry validate`.

Usage: scripts/check-compose.py [PATH_TO_FERRY_BINARY]
Exit status 0 when every check passes, 1 otherwise. Needs python3; PyYAML (python3-yaml) for
the full compose checks: without it a notice is printed and only the text-level checks of the
compose file run (the other checks do not need it).
"""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
OPERATIONS = ROOT / "docs" / "operations.md"
SOURCE_SQL = ROOT / "deploy" / "mysql" / "source-init.sql"
TARGET_SQL = ROOT / "deploy" / "mysql" / "target-init.sql"
DEMO_JOB = ROOT / "deploy" / "demo-job.json"
DEMO_SCRIPT = ROOT / "scripts" / "compose-demo.sh"
CONFIG_EXAMPLE = ROOT / "config" / "ferry.toml"

SERVICES = ("source", "target", "ferry", "loadgen")
SOURCE_FLAGS = {
    "log-bin": None,  # any value (or none)
    "binlog-format": "ROW",
    "binlog-row-image": "FULL",
    "gtid-mode": "ON",
    "enforce-gtid-consistency": "ON",
}
META_SCHEMA = "ferry_meta"


class Checks:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)
            print(f"FAIL  {what}")
        return cond


# ----------------------------------------------------------------------------- helpers


def flags_of(command):
    """`--name=value` / `--name value` / `--name` items of a command list → {name: value}."""
    if isinstance(command, str):
        command = shlex.split(command)
    flags = {}
    items = list(command or [])
    i = 0
    while i < len(items):
        item = str(items[i])
        if item.startswith("--"):
            name, eq, value = item[2:].partition("=")
            name = name.replace("_", "-")
            if eq:
                flags[name] = value
            elif i + 1 < len(items) and not str(items[i + 1]).startswith("--"):
                flags[name] = str(items[i + 1])
                i += 1
            else:
                flags[name] = None
        i += 1
    return flags


def command_list(service):
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def published_ports(service):
    """(host_ip, text) of every published port, short or long syntax."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append((str(port.get("host_ip", "")), json.dumps(port)))
            continue
        text = str(port)
        parts = text.split(":")
        # IP:HOST:CONTAINER has three parts; HOST:CONTAINER or CONTAINER publish on all interfaces.
        out.append((parts[0] if len(parts) == 3 else "", text))
    return out


def volume_mounts(service):
    """(source, target) of every volume entry, short or long syntax."""
    out = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out.append((str(vol.get("source", "")), str(vol.get("target", ""))))
        else:
            parts = str(vol).split(":")
            if len(parts) >= 2:
                out.append((parts[0], parts[1]))
            else:
                out.append(("", parts[0]))
    return out


def depends_condition(service, other):
    dep = service.get("depends_on") or {}
    if isinstance(dep, list):
        return "service_started" if other in dep else None
    entry = dep.get(other)
    if entry is None:
        return None
    return (entry or {}).get("condition", "service_started")


def strip_sql_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return "\n".join(line.split("--", 1)[0] if not line.lstrip().startswith("--") else ""
                     for line in text.splitlines())


GRANT_RE = re.compile(r"GRANT\s+(.+?)\s+ON\s+(\S+)\s+TO\s+'?([^'@\s]+)'?@", re.I | re.S)


def grants(sql, user="ferry"):
    """{(PRIVILEGE, scope)} granted to `user` by the GRANT statements of `sql`."""
    out = set()
    for stmt in strip_sql_comments(sql).split(";"):
        m = GRANT_RE.search(stmt)
        if not m or m.group(3) != user:
            continue
        scope = m.group(2).replace("`", "")
        for priv in m.group(1).split(","):
            out.add((" ".join(priv.upper().split()), scope))
    return out


def documented_grants():
    """The two SQL blocks of docs/operations.md "Accounts and privileges": (source, target)."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("## Accounts and privileges", 1)[-1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    if len(blocks) < 2:
        return None, None
    return grants(blocks[0]), grants(blocks[1])


def password_of(sql, user):
    m = re.search(rf"CREATE USER\s+'{re.escape(user)}'@'[^']*'\s+IDENTIFIED BY\s+'([^']*)'", sql, re.I)
    return m.group(1) if m else None


def normalise_target(grant_set):
    """Scopes other than ferry_meta are "the migrated database(s)": compare privileges only."""
    return {(p, s if s.startswith(META_SCHEMA + ".") else "<migrated>.*") for p, s in grant_set}


# ----------------------------------------------------------------------------- the checks


def check_compose_yaml(c, compose):
    services = compose.get("services") or {}
    for name in SERVICES:
        c.ok(name in services, f"docker-compose.yml: service {name!r} exists")
    if not all(name in services for name in SERVICES):
        return None
    src, dst, ferry, loadgen = (services[n] for n in SERVICES)

    # MySQL servers
    for name, svc in (("source", src), ("target", dst)):
        c.ok(str(svc.get("image", "")).startswith("mysql:8.4"), f"{name}: image is mysql:8.4")
        test = " ".join(map(str, (svc.get("healthcheck") or {}).get("test") or []))
        c.ok("mysqladmin ping" in test, f"{name}: healthcheck runs mysqladmin ping")
        c.ok(env_of(svc).get("MYSQL_ROOT_PASSWORD", "") != "", f"{name}: MYSQL_ROOT_PASSWORD is set")
    src_flags = flags_of(command_list(src))
    dst_flags = flags_of(command_list(dst))
    for flag, value in SOURCE_FLAGS.items():
        have = src_flags.get(flag, "<absent>")
        good = have != "<absent>" and (value is None or str(have).upper() == value)
        c.ok(good, f"source: --{flag}{'=' + value if value else ''} (pre-check requirement), got {have}")
    src_id, dst_id = src_flags.get("server-id"), dst_flags.get("server-id")
    c.ok(src_id not in (None, "0"), f"source: --server-id set and not 0 (got {src_id})")
    c.ok(dst_id not in (None, "0") and dst_id != src_id,
         f"target: --server-id set and different from the source's (got {dst_id})")
    mounts = {n: volume_mounts(s) for n, s in services.items()}
    for name, sql in (("source", SOURCE_SQL), ("target", TARGET_SQL)):
        rel = "./" + str(sql.relative_to(ROOT))
        c.ok(any(s == rel and t.startswith("/docker-entrypoint-initdb.d/") for s, t in mounts[name]),
             f"{name}: {rel} mounted into /docker-entrypoint-initdb.d/")

    # ferry serve
    c.ok(ferry.get("build") is not None, "ferry: built from the repository (build:)")
    build = ferry.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else (build or {}).get("dockerfile", "Dockerfile")
    c.ok((ROOT / context / dockerfile).resolve() == DOCKERFILE, "ferry: build uses ./Dockerfile")
    cmd = command_list(ferry)
    fflags = flags_of(cmd)
    c.ok(bool(cmd) and cmd[0] == "serve", f"ferry: command is `ferry serve …` (got {cmd[:1]})")
    c.ok(fflags.get("listen", "").endswith(":8080") and fflags.get("listen", "").startswith("0.0.0.0"),
         "ferry: --listen 0.0.0.0:8080 (reachable from the published port)")
    # Off loopback `ferry serve` speaks HTTPS unless asked for plain HTTP; the demo's health
    # check and `ferry api` calls use http://, which is safe only while every published port is
    # bound to 127.0.0.1 (checked below).
    c.ok("insecure-http" in fflags,
         "ferry: --insecure-http (the health check and the demo speak plain HTTP on the published 127.0.0.1 port)")
    data_dir = fflags.get("data-dir")
    c.ok(data_dir == "/var/lib/ferry", f"ferry: --data-dir /var/lib/ferry (got {data_dir})")
    named = set((compose.get("volumes") or {}).keys())
    c.ok(any(t == "/var/lib/ferry" and s in named for s, t in mounts["ferry"]),
         "ferry: a named volume declared under volumes: is mounted on /var/lib/ferry")
    env = env_of(ferry)
    for var in ("FERRY_SECRET_ID", "FERRY_SECRET_KEY"):
        c.ok(re.fullmatch(r"\$\{" + var + r":-[^}]+\}", env.get(var, "")) is not None,
             f"ferry: {var} comes from the environment with a demo default (${{{var}:-…}})")
    c.ok((ferry.get("healthcheck") or {}).get("test") is not None, "ferry: has a healthcheck")
    for dep in ("source", "target"):
        c.ok(depends_condition(ferry, dep) == "service_healthy", f"ferry: depends_on {dep}: service_healthy")
    c.ok(any(t.startswith("/etc/ferry/") and s == "./deploy/demo-job.json" for s, t in mounts["ferry"]),
         "ferry: deploy/demo-job.json is mounted (ferry verify reads it)")

    # loadgen
    c.ok(loadgen.get("image") == ferry.get("image") and loadgen.get("image") is not None,
         "loadgen: runs the same image as ferry")
    lcmd = command_list(loadgen)
    c.ok(bool(lcmd) and lcmd[0] == "loadgen", "loadgen: command is `ferry loadgen …`")
    lflags = flags_of(lcmd)
    c.ok("prepare-only" not in lflags and "no-prepare" not in lflags,
         "loadgen: prepares the tables, then writes")
    c.ok(lflags.get("duration") == "0", "loadgen: --duration 0 (writes until stopped)")
    c.ok(depends_condition(loadgen, "source") == "service_healthy", "loadgen: depends_on source: service_healthy")
    url = env_of(loadgen).get("FERRY_LOADGEN_URL", lflags.get("url", ""))
    c.ok(re.search(r"@source:3306\b", url or "") is not None, "loadgen: --url / FERRY_LOADGEN_URL points at source:3306")
    c.ok(str(loadgen.get("restart", "no")) == "no", "loadgen: not restarted (a restart would re-prepare)")

    # the optional cluster (profile `cluster`): nodes on one MySQL store, each its own id
    nodes = {n: svc for n, svc in services.items() if "cluster" in (svc.get("profiles") or [])}
    c.ok(len(nodes) >= 2, f"profile cluster: at least two ferry nodes (got {sorted(nodes)})")
    stores, ids = set(), set()
    for name, svc in nodes.items():
        ncmd = command_list(svc)
        nflags = flags_of(ncmd)
        c.ok(bool(ncmd) and ncmd[0] == "serve", f"{name}: command is `ferry serve …`")
        c.ok(svc.get("image") == ferry.get("image"), f"{name}: runs the same image as ferry")
        store = nflags.get("store", "")
        c.ok(re.fullmatch(r"mysql://[a-z_]+@target:3306/[a-z_]+", store) is not None,
             f"{name}: --store mysql://USER@target:3306/DB without a password (got {store!r})")
        stores.add(store)
        ids.add(nflags.get("node-id"))
        env = env_of(svc)
        for var in ("FERRY_SECRET_ID", "FERRY_SECRET_KEY", "FERRY_STORE_PASSWORD", "FERRY_STORE_KEY"):
            c.ok(re.fullmatch(r"\$\{" + var + r":-[^}]+\}", env.get(var, "")) is not None,
                 f"{name}: {var} comes from the environment with a demo default")
        c.ok(depends_condition(svc, "target") == "service_healthy", f"{name}: depends_on target: service_healthy")
        c.ok(any(t == "/var/lib/ferry" and s in named for s, t in mounts[name]),
             f"{name}: a named volume of its own on /var/lib/ferry")
    c.ok(len(stores) == 1, f"profile cluster: every node has the same store ({sorted(stores)})")
    c.ok(len(ids) == len(nodes) and None not in ids, f"profile cluster: a --node-id per node ({sorted(map(str, ids))})")
    if stores:
        m = re.fullmatch(r"mysql://([a-z_]+)@target:3306/([a-z_]+)", next(iter(stores)))
        if m:
            store_grants = grants(TARGET_SQL.read_text(encoding="utf-8"), m.group(1))
            c.ok(bool(store_grants) and all(sc == f"`{m.group(2)}`.*" or sc == f"{m.group(2)}.*" for _, sc in store_grants),
                 f"target-init.sql: {m.group(1)} is granted on {m.group(2)}.* only (got {sorted(store_grants)})")
    c.ok("cluster" not in (ferry.get("profiles") or []), "ferry: the default node is not in a profile")

    # ports, volumes, bind mounts
    for name, svc in services.items():
        for host_ip, text in published_ports(svc):
            c.ok(host_ip == "127.0.0.1", f"{name}: published port {text} is bound to 127.0.0.1")
        for s, t in volume_mounts(svc):
            if s.startswith(("./", "../", "/")):
                c.ok((ROOT / s).exists(), f"{name}: bind-mounted {s} exists")
            elif s:
                c.ok(s in named, f"{name}: volume {s} is declared under volumes:")
    c.ok(":8080" in " ".join(t for _, t in published_ports(ferry)), "ferry: port 8080 is published")
    return {"loadgen_db": lflags.get("database", "loadgen")}


def check_compose_text(c):
    """Without PyYAML: the checks that a plain reading of the text allows."""
    text = COMPOSE.read_text(encoding="utf-8")
    for name in SERVICES:
        c.ok(re.search(rf"^  {name}:\s*$", text, re.M) is not None, f"docker-compose.yml: service {name!r} exists")
    for flag, value in SOURCE_FLAGS.items():
        pattern = rf"--{flag}" + (rf"={value}\b" if value else "")
        c.ok(re.search(pattern, text, re.I) is not None, f"docker-compose.yml: --{flag} present")
    c.ok(text.count("mysqladmin ping") >= 2, "docker-compose.yml: mysqladmin ping health checks")
    c.ok(re.search(r'"serve"|\bserve\b', text) is not None, "docker-compose.yml: ferry serve")
    c.ok(text.count("service_healthy") >= 3, "docker-compose.yml: depends_on conditions")
    for m in re.finditer(r'^\s*-\s*"?([\d.]*:?\d+:\d+)"?\s*$', text, re.M):
        c.ok(m.group(1).startswith("127.0.0.1:"), f"docker-compose.yml: port {m.group(1)} bound to 127.0.0.1")
    m = re.search(r"--database[= ](\S+)", text)
    return {"loadgen_db": m.group(1) if m else "loadgen"}


def dockerfile_stages(text):
    stages, current = [], None
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            current = {"from": rest.split()[0], "lines": []}
            stages.append(current)
        elif current is not None:
            current["lines"].append((word, rest.strip()))
    return stages


SECRET_RE = re.compile(r"(^|/)(\.env|credentials\.toml|ferry\.db|servers\.env|id_rsa|\.ferry-test|ferry-data)"
                       r"|\.(pem|key|p12)\b", re.I)


def check_dockerfile(c):
    if not c.ok(DOCKERFILE.is_file(), "Dockerfile exists"):
        return
    stages = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))
    c.ok(len(stages) >= 2, f"Dockerfile: multi-stage ({len(stages)} stages)")
    if not stages:
        return
    final = stages[-1]
    c.ok(final["from"].startswith("debian:bookworm-slim"), f"Dockerfile: runtime stage is debian:bookworm-slim (got {final['from']})")
    users = [rest for word, rest in final["lines"] if word == "USER"]
    c.ok(bool(users) and users[-1].split(":")[0] not in ("0", "root"),
         f"Dockerfile: the runtime stage runs as a non-root USER (got {users[-1:] or 'none'})")
    c.ok(any(word == "ENTRYPOINT" and "ferry" in rest for word, rest in final["lines"]), "Dockerfile: ENTRYPOINT ferry")
    c.ok(any(word == "EXPOSE" and "8080" in rest.split() for word, rest in final["lines"]), "Dockerfile: EXPOSE 8080")
    for stage in stages:
        for word, rest in stage["lines"]:
            if word in ("COPY", "ADD"):
                args = [a for a in rest.split() if not a.startswith("--")]
                for src in args[:-1]:
                    c.ok(not SECRET_RE.search(src), f"Dockerfile: {word} {src} copies no secret")
                if word == "ADD":
                    c.ok(not re.match(r"https?://", rest), "Dockerfile: no ADD of a URL")
            if word in ("ENV", "ARG"):
                c.ok(not re.search(r"(SECRET|PASSWORD|TOKEN)", rest, re.I), f"Dockerfile: {word} {rest} holds no secret")
    copied = set(re.findall(r"COPY\s+(crates/[^/\s]+)/Cargo\.toml", DOCKERFILE.read_text(encoding="utf-8")))
    for manifest in sorted(ROOT.glob("crates/*/Cargo.toml")):
        crate = str(manifest.parent.relative_to(ROOT))
        c.ok(crate in copied, f"Dockerfile: dependency layer copies {crate}/Cargo.toml (add a COPY line for a new crate)")
    if c.ok(DOCKERIGNORE.is_file(), ".dockerignore exists"):
        entries = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
                   if line.strip() and not line.startswith("#")}
        for needed in ("target", ".ferry-test", ".git"):
            c.ok(needed in entries, f".dockerignore: excludes {needed}/")


def check_grants(c):
    src_doc, dst_doc = documented_grants()
    if not c.ok(src_doc and dst_doc, "docs/operations.md: the source and target grant blocks are found"):
        return None
    src_sql = SOURCE_SQL.read_text(encoding="utf-8")
    dst_sql = TARGET_SQL.read_text(encoding="utf-8")
    src_init, dst_init = grants(src_sql), grants(dst_sql)
    c.ok(src_init == src_doc,
         f"source-init.sql grants to ferry = docs/operations.md's (missing {sorted(src_doc - src_init)}, "
         f"extra {sorted(src_init - src_doc)})")
    c.ok(normalise_target(dst_init) == normalise_target(dst_doc),
         f"target-init.sql grants to ferry = docs/operations.md's (init {sorted(dst_init)}, docs {sorted(dst_doc)})")
    migrated = {s.split(".")[0] for _, s in dst_init if not s.startswith(META_SCHEMA + ".")}
    return {
        "src_password": password_of(src_sql, "ferry"),
        "dst_password": password_of(dst_sql, "ferry"),
        "loadgen_grants": grants(src_sql, "loadgen"),
        "target_dbs": migrated,
    }


def check_demo_job(c, facts, ferry_bin):
    try:
        job = json.loads(DEMO_JOB.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        c.ok(False, f"deploy/demo-job.json parses as JSON ({e})")
        return
    opt = job.get("MigrateOption", {})
    c.ok(opt.get("MigrateType") == 3, "demo-job.json: MigrateType 3 (full + incremental)")
    src, dst = job.get("SrcInfo", {}), job.get("DstInfo", {})
    c.ok((src.get("Ip"), src.get("Port")) == ("source", 3306), "demo-job.json: SrcInfo is source:3306")
    c.ok((dst.get("Ip"), dst.get("Port")) == ("target", 3306), "demo-job.json: DstInfo is target:3306")
    c.ok(src.get("User") == "ferry" and src.get("Password") == facts.get("src_password"),
         "demo-job.json: SrcInfo account = the ferry account of source-init.sql")
    c.ok(dst.get("User") == "ferry" and dst.get("Password") == facts.get("dst_password"),
         "demo-job.json: DstInfo account = the ferry account of target-init.sql")
    info = job.get("DatabaseInfo", "[]")
    try:
        dbs = json.loads(info) if isinstance(info, str) else info
    except ValueError:
        dbs = []
    names = {d.get("Database") for d in dbs}
    targets = {d.get("NewDatabase", d.get("Database")) for d in dbs}
    c.ok(names == {facts.get("loadgen_db")}, f"demo-job.json: migrates the loadgen database {facts.get('loadgen_db')!r}")
    c.ok(targets <= facts.get("target_dbs", set()), "demo-job.json: target databases are those granted on the target")
    c.ok(any(s == f"{facts.get('loadgen_db')}.*" for _, s in facts.get("loadgen_grants", set())),
         "source-init.sql: the loadgen account may write the loadgen database")
    if ferry_bin:
        try:
            out = subprocess.run([ferry_bin, "validate", str(DEMO_JOB)], capture_output=True, text=True, timeout=60)
            c.ok(out.returncode == 0, f"`ferry validate deploy/demo-job.json` succeeds: {out.stderr.strip() or 'ok'}")
        except OSError as e:
            c.ok(False, f"running {ferry_bin} validate ({e})")
    c.ok(DEMO_SCRIPT.is_file() and os.access(DEMO_SCRIPT, os.X_OK), "scripts/compose-demo.sh exists and is executable")


# Every setting of `ferry serve`'s configuration file (crates/ferry-api/src/config.rs).
CONFIG_KEYS = (
    "listen", "data_dir", "log.format", "log.level", "tls.cert", "tls.key",
    "credentials.secret_id", "credentials.secret_key", "limits.requests_per_second",
    "limits.describe_requests_per_second", "limits.max_body_bytes",
    "limits.signature_max_skew_seconds", "limits.max_connections", "limits.client_timeout_seconds",
    "jobs.max_running", "allowed_hosts", "insecure_http", "store.url", "cluster.node_id",
    "cluster.lease_seconds", "cluster.claim_interval_seconds",
)
COMMENTED_SETTING = re.compile(r"^#\s?(\[\[?[a-z_]+\]\]?(\s+#.*)?|[a-z_]+\s*=\s*\S.*)$")


def toml_keys(doc, prefix=""):
    keys = set()
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            keys |= toml_keys(v, name + ".")
        elif isinstance(v, list) and v and all(isinstance(i, dict) for i in v):
            for item in v:
                keys |= toml_keys(item, name + ".")
        else:
            keys.add(name)
    return keys


def check_config_example(c, ferry_bin):
    try:
        import tomllib  # noqa: PLC0415 (Python 3.11+)
    except ImportError:
        print("notice: Python < 3.11 has no tomllib; config/ferry.toml is not parsed")
        return
    text = CONFIG_EXAMPLE.read_text(encoding="utf-8")
    try:
        tomllib.loads(text)
        c.ok(True, "config/ferry.toml parses")
    except tomllib.TOMLDecodeError as e:
        c.ok(False, f"config/ferry.toml parses ({e})")
        return
    # The commented-out examples, uncommented, must parse too and name every setting.
    full = "\n".join(COMMENTED_SETTING.sub(r"\1", line) for line in text.splitlines())
    try:
        keys = toml_keys(tomllib.loads(full))
    except tomllib.TOMLDecodeError as e:
        c.ok(False, f"config/ferry.toml with its examples uncommented parses ({e})")
        return
    for key in CONFIG_KEYS:
        c.ok(key in keys, f"config/ferry.toml documents the setting {key}")
    for key in sorted(keys - set(CONFIG_KEYS)):
        c.ok(False, f"config/ferry.toml: {key} is not a setting of ferry serve")
    if ferry_bin:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                proc = subprocess.Popen(
                    [ferry_bin, "serve", "--config", str(CONFIG_EXAMPLE), "--listen", "127.0.0.1:0",
                     "--data-dir", os.path.join(tmp, "data")],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    env={k: v for k, v in os.environ.items() if not k.startswith("FERRY_")})
            except OSError as e:
                c.ok(False, f"running {ferry_bin} serve ({e})")
                return
            try:
                listening = False
                for line in proc.stdout:
                    if "listening on" in line:
                        listening = True
                        break
            finally:
                proc.terminate()
                try:
                    _, err = proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    _, err = proc.communicate()
            c.ok(listening, f"`ferry serve --config config/ferry.toml` starts: {err.strip()[-300:] or 'ok'}")


def main(argv):
    ferry_bin = argv[1] if len(argv) > 1 else None
    c = Checks()
    facts = {}
    if not c.ok(COMPOSE.is_file(), "docker-compose.yml exists"):
        return 1
    try:
        import yaml  # noqa: PLC0415 (optional dependency)
    except ImportError:
        yaml = None
        print("notice: PyYAML is not installed (apt install python3-yaml, or pip install pyyaml); "
              "only text-level checks of docker-compose.yml are run")
    if yaml is not None:
        try:
            compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            c.ok(False, f"docker-compose.yml parses as YAML ({e})")
            compose = None
        if isinstance(compose, dict):
            facts.update(check_compose_yaml(c, compose) or {})
        else:
            c.ok(False, "docker-compose.yml is a YAML mapping")
    else:
        facts.update(check_compose_text(c))
    check_dockerfile(c)
    facts.update(check_grants(c) or {})
    check_demo_job(c, facts, ferry_bin)
    check_config_example(c, ferry_bin)
    if c.failures:
        print(f"check-compose: {len(c.failures)} check(s) failed, {c.passed} passed")
        return 1
    print(f"check-compose: all {c.passed} checks passed (static checks: the demo itself needs Docker and was not run)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
