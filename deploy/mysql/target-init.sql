-- Target server of the docker-compose demo (MySQL 8.4). Runs once, when the container
-- initialises an empty data directory (/docker-entrypoint-initdb.d).
--
-- `ferry`: the migration account, with exactly the target grants listed in docs/operations.md
-- ("Accounts and privileges"): everything on the migrated database (`demo`) and on Ferry's
-- checkpoint schema `ferry_meta`. The demo's tables have no DEFINER (no views, routines, triggers
-- or events), so SET_USER_ID / SET_ANY_DEFINER is not needed. caching_sha2_password (MySQL 8.4's
-- default) works without TLS: see source-init.sql. Demo password only.

CREATE USER 'ferry'@'%' IDENTIFIED BY 'ferry-demo-pw';
GRANT ALL PRIVILEGES ON `demo`.* TO 'ferry'@'%';
GRANT ALL PRIVILEGES ON `ferry_meta`.* TO 'ferry'@'%';

-- `ferry_store`: the job store of the optional two-node cluster (profile `cluster`,
-- docs/cluster.md): its own database `ferry_jobs`, nothing else. Demo password only.
CREATE USER 'ferry_store'@'%' IDENTIFIED BY 'store-demo-pw';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `ferry_jobs`.* TO 'ferry_store'@'%';
