#!/usr/bin/env bash
# Ferry demo: two throwaway local MariaDB servers, a sample shop database on the source, and a
# zero-downtime migration: structure + full data + incremental replay while a write load runs on
# the source, with live progress and lag; cut-over once the writes stop; then `ferry verify`.
#
#   scripts/demo.sh                      run the demo (installs mariadb-server with apt if needed)
#   DEMO_ROWS=2000000 scripts/demo.sh    a bigger sample (default 300000 orders)
#   DEMO_WRITE_SECONDS=60 scripts/demo.sh  how long the write load runs (default 20)
#   DEMO_RATE=1000 scripts/demo.sh       transactions per second of the write load (default 300)
#   DEMO_KEEP=1 scripts/demo.sh          leave the servers running afterwards
#
# The servers live under .ferry-demo/ (ignored by git) and are separate from the test servers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export FERRY_TEST_DIR="$ROOT/.ferry-demo"
ROWS="${DEMO_ROWS:-300000}"
WRITE_SECONDS="${DEMO_WRITE_SECONDS:-20}"
RATE="${DEMO_RATE:-300}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Building ferry (release)"
cargo build --release -p ferry-cli --quiet
FERRY="$ROOT/target/release/ferry"

say "Starting two local servers (source with binlog, target)"
scripts/servers.sh start
eval "$(scripts/servers.sh env)"
if [ "${DEMO_KEEP:-0}" != 1 ]; then trap 'scripts/servers.sh stop' EXIT; fi
src_port=${FERRY_TEST_SOURCE_URL##*:}; dst_port=${FERRY_TEST_TARGET_URL##*:}
CLIENT=mariadb; command -v mariadb >/dev/null || CLIENT=mysql
SQL_SRC=("$CLIENT" --no-defaults -h127.0.0.1 -P"$src_port" -uferry -pferry-test-pw)
SQL_DST=("$CLIENT" --no-defaults -h127.0.0.1 -P"$dst_port" -uferry -pferry-test-pw)

say "Creating sample data on the source: database demo_shop ($ROWS orders)"
"${SQL_SRC[@]}" <<SQL
DROP DATABASE IF EXISTS demo_shop;
CREATE DATABASE demo_shop DEFAULT CHARACTER SET utf8mb4;
USE demo_shop;
CREATE TABLE customers (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, email VARCHAR(190) NOT NULL UNIQUE,
  name VARCHAR(100) NOT NULL, country CHAR(2) NOT NULL, created_at DATETIME(6) NOT NULL, KEY k_country (country));
CREATE TABLE products (sku VARCHAR(32) PRIMARY KEY, title VARCHAR(200) NOT NULL, price DECIMAL(10,2) NOT NULL,
  weight_kg FLOAT, attrs JSON);
CREATE TABLE orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, customer_id INT UNSIGNED NOT NULL,
  sku VARCHAR(32) NOT NULL, qty SMALLINT NOT NULL, amount DECIMAL(12,2) NOT NULL, status ENUM('new','paid','shipped','returned') NOT NULL,
  placed_at TIMESTAMP(3) NOT NULL, note TEXT, KEY k_customer (customer_id), KEY k_placed (placed_at),
  CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT fk_sku FOREIGN KEY (sku) REFERENCES products (sku));
CREATE VIEW revenue_by_country AS SELECT c.country, SUM(o.amount) AS revenue FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.country;
INSERT INTO customers (email, name, country, created_at)
  SELECT CONCAT('user', seq, '@example.com'), CONCAT('Customer ', seq), ELT(1 + seq % 5, 'DE', 'FR', 'JP', 'BR', 'US'),
         '2023-01-01' + INTERVAL seq MINUTE FROM seq_1_to_$(( ROWS / 10 + 1 ));
INSERT INTO products SELECT CONCAT('SKU-', LPAD(seq, 6, '0')), CONCAT('Product ', seq, ' – ünïcödé ✓'), ROUND(1 + RAND(seq) * 500, 2),
  RAND(seq + 1) * 20, JSON_OBJECT('color', ELT(1 + seq % 3, 'red', 'green', 'blue'), 'size', seq % 50) FROM seq_1_to_2000;
INSERT INTO orders (customer_id, sku, qty, amount, status, placed_at, note)
  SELECT 1 + seq % $(( ROWS / 10 + 1 )), CONCAT('SKU-', LPAD(1 + seq % 2000, 6, '0')), 1 + seq % 5, ROUND(RAND(seq) * 1000, 2),
         ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'returned'), '2024-01-01' + INTERVAL seq SECOND,
         IF(seq % 10 = 0, NULL, REPEAT('note ', 1 + seq % 20)) FROM seq_1_to_$ROWS;
SQL

"$FERRY" loadgen --url "$FERRY_TEST_SOURCE_URL" --database demo_shop --tables 4 --rows 25000 --prepare-only

mkdir -p "$FERRY_TEST_DIR"
JOB="$FERRY_TEST_DIR/demo-job.json"
cat >"$JOB" <<JSON
{
  "JobName": "demo",
  "MigrateOption": {"RunMode": 1, "MigrateType": 3, "MigrateObject": 2, "ConsistencyType": 2},
  "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
  "SrcInfo": {"Ip": "127.0.0.1", "Port": $src_port, "User": "ferry", "Password": "ferry-test-pw"},
  "DstDatabaseType": "mysql", "DstAccessType": "extranet",
  "DstInfo": {"Ip": "127.0.0.1", "Port": $dst_port, "User": "ferry", "Password": "ferry-test-pw"},
  "DatabaseInfo": "[{\"Database\": \"demo_shop\"}]",
  "Ferry": {"Threads": 4, "ChunkRows": 20000, "ExistingTables": "drop"}
}
JSON

say "Starting a write load on the source for ${WRITE_SECONDS}s: ferry loadgen, ${RATE} transactions/s"
"$FERRY" loadgen --url "$FERRY_TEST_SOURCE_URL" --database demo_shop --tables 4 --rows 25000 --no-prepare \
  --duration "$WRITE_SECONDS" --rate "$RATE" >"$FERRY_TEST_DIR/loadgen.out" 2>"$FERRY_TEST_DIR/loadgen.log" &
WRITER_PID=$!

say "Running the migration (full + incremental): $FERRY run $JOB"
echo "(the cut-over is requested with SIGUSR1 once the write load stops; you could also type 'complete')"
"$FERRY" run "$JOB" --restart </dev/null &
FERRY_PID=$!
wait "$WRITER_PID" || true
cat "$FERRY_TEST_DIR/loadgen.out" >&2
sleep 1
kill -USR1 "$FERRY_PID" 2>/dev/null || true
status=0
wait "$FERRY_PID" || status=$?
if [ "$status" != 0 ]; then say "The migration failed (exit $status)."; exit "$status"; fi

say "Verifying: $FERRY verify $JOB"
status=0
"$FERRY" verify "$JOB" || status=$?
if [ "$status" = 0 ]; then say "Source and target are equal."; else say "Differences found (exit $status)."; fi
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  echo "Servers left running: source $FERRY_TEST_SOURCE_URL, target $FERRY_TEST_TARGET_URL (stop: FERRY_TEST_DIR=.ferry-demo scripts/servers.sh stop)"
fi
exit $status
