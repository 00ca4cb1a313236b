--
-- PostgreSQL database cluster dump
--

-- Written by hand after pg_dumpall.c of PostgreSQL 16 and 17 (dumpRoles,
-- dumpRoleMembership, dumpRoleGUCPrivs, dumpTablespaces): grant options
-- and grantors are dumped from servers of version 16 and later.

\restrict 3Xq9PfjZkN1b7mHcT0aLwYv5sE2uRiDgKoBn8tQp4yMzCxV6

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE admin;
ALTER ROLE admin WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE app_owner;
ALTER ROLE app_owner WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE app_ro;
ALTER ROLE app_ro WITH NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 10 PASSWORD 'md5c4ca4238a0b923820dcc509a6f75849b' VALID UNTIL 'infinity';
COMMENT ON ROLE app_ro IS 'read-only; see "wiki"';
SECURITY LABEL FOR selinux ON ROLE app_ro IS 'system_u:object_r:sepgsql_table_t:s0';
CREATE ROLE "Ops Team";
ALTER ROLE "Ops Team" WITH NOSUPERUSER INHERIT CREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;

--
-- User Configurations
--

--
-- User Config "app_ro"
--

ALTER ROLE app_ro SET statement_timeout TO '5s';
ALTER ROLE app_ro IN DATABASE shop SET search_path TO 'shop', 'public';


--
-- Role memberships
--

GRANT app_owner TO "Ops Team" WITH ADMIN OPTION, INHERIT TRUE GRANTED BY admin;
GRANT app_owner TO app_ro WITH INHERIT FALSE, SET FALSE GRANTED BY "Ops Team";
GRANT pg_monitor TO "Ops Team" WITH INHERIT TRUE GRANTED BY admin;


--
-- Role privileges on configuration parameters
--

GRANT SET ON PARAMETER log_statement TO app_owner;


--
-- Tablespaces
--

CREATE TABLESPACE fast OWNER admin LOCATION '/srv/pg/fast';
SECURITY LABEL FOR selinux ON TABLESPACE fast IS 'system_u:object_r:sepgsql_table_t:s0';


\unrestrict 3Xq9PfjZkN1b7mHcT0aLwYv5sE2uRiDgKoBn8tQp4yMzCxV6

--
-- PostgreSQL database cluster dump complete
--

