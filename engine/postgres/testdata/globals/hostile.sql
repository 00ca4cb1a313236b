-- A globals part a compromised backup host wrote: psql meta-commands,
-- server-side programs, changes to existing roles, and names that are
-- not what they seem. Nothing of it may run.
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
\! id > /tmp/coffer-canary; cat "$COFFER_IDENTITY_FILE" >> /tmp/coffer-canary
\connect postgres
\copy (SELECT 1) TO PROGRAM 'id > /tmp/coffer-canary'
COPY (SELECT 1) TO PROGRAM 'id > /tmp/coffer-canary';
DO $x$ BEGIN EXECUTE 'ALTER ROLE postgres PASSWORD NULL'; END $x$;
CREATE ROLE postgres;
ALTER ROLE postgres WITH NOSUPERUSER LOGIN PASSWORD 'md5c4ca4238a0b923820dcc509a6f75849b';
CREATE ROLE evil;
ALTER ROLE evil WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'plain text';
CREATE ROLE "x; ALTER ROLE postgres WITH NOSUPERUSER; --";
CREATE ROLE "application_name=a host=127.0.0.1 port=45999";
CREATE ROLE "line
\! id";
CREATE ROLE "esc[2J[31mred";
CREATE ROLE E'esc\x1b[2J';
CREATE ROLE evil2 SUPERUSER;
CREATE ROLE "postgresXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
GRANT pg_execute_server_program TO evil;
GRANT postgres TO evil;
GRANT evil TO postgres;
GRANT evil TO "postgresXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
ALTER ROLE evil SET session_preload_libraries = '/tmp/evil.so';
COMMENT ON ROLE evil IS 'it''s; \! id';
SELECT pg_catalog.set_config('search_path', '', false);
CREATE TABLESPACE t OWNER evil LOCATION '/etc';
GRANT evil TO evil2 \! id
;
SET standard_conforming_strings = off;
COMMENT ON ROLE evil IS 'a\'; CREATE ROLE sneaky; --';
CREATE ROLE tail
