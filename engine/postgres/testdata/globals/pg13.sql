--
-- PostgreSQL database cluster dump
--

-- Written by hand after pg_dumpall.c of PostgreSQL 13 and 14: no
-- \restrict, grantors without grant options, passwords as MD5 hashes.

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE "app""rw";
ALTER ROLE "app""rw" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD 'md5a3556571e93b0d20722ba62be61e8c2d';
CREATE ROLE backup;
ALTER ROLE backup WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN REPLICATION NOBYPASSRLS;
COMMENT ON ROLE backup IS E'nightly\\weekly';
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVka2V5c3RvcmVka2V5c3RvcmVka2V5c3RvcmU=:c2VydmVya2V5c2VydmVya2V5c2VydmVya2V5c2Vy';

--
-- Role memberships
--

GRANT backup TO "app""rw" GRANTED BY postgres;
GRANT pg_read_all_settings TO backup GRANTED BY postgres;




--
-- PostgreSQL database cluster dump complete
--

