-- Source server of the docker-compose demo (MySQL 8.4). Runs once, when the container
-- initialises an empty data directory (/docker-entrypoint-initdb.d).
--
-- `ferry`: the migration account, with exactly the source grants listed in docs/operations.md
-- ("Accounts and privileges"). `loadgen`: the account of the load generator, which creates and
-- writes the sample tables in `demo`.
--
-- MySQL 8.4 creates these accounts with caching_sha2_password (its default; mysql_native_password
-- is disabled). Ferry connects without TLS and completes caching_sha2_password by requesting the
-- server's RSA public key (the server generates its key pair at initialisation:
-- caching_sha2_password_auto_generate_rsa_keys is ON by default), so no TLS setting and no
-- legacy authentication plugin is needed. Demo passwords only: change them for anything else.

CREATE USER 'ferry'@'%' IDENTIFIED BY 'ferry-demo-pw';
-- structure and full data
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON *.* TO 'ferry'@'%';
-- the global lock that opens the consistent snapshot, and the binlog position
GRANT RELOAD, REPLICATION CLIENT ON *.* TO 'ferry'@'%';
-- incremental phase (reading the binlog as a replica)
GRANT REPLICATION SLAVE ON *.* TO 'ferry'@'%';

CREATE DATABASE IF NOT EXISTS demo DEFAULT CHARACTER SET utf8mb4;
CREATE USER 'loadgen'@'%' IDENTIFIED BY 'loadgen-demo-pw';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON demo.* TO 'loadgen'@'%';
