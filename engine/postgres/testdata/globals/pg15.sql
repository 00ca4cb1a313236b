--
-- PostgreSQL database cluster dump
--

\restrict cuhedeeYBYwZjsdFQa8tXs3QdcKdtul7cPsPni3sy9fIucaIKeH0SNkLaSWy3F2

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE "sample we""ird
name;é";
ALTER ROLE "sample we""ird
name;é" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE sample_app;
ALTER ROLE sample_app WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD 'SCRAM-SHA-256$4096:5i2pF58IpLDOrcJg+lJA+g==$IBRrnAflEJTX9Xq29md0MW4R4+pROAOqbI5Xt0wxa3c=:JRUAvDUmIiqKT+BtBn53Yb1AQCLyhsmrnDkKG4eAw5o=' VALID UNTIL '2031-01-01 00:00:00+00';
COMMENT ON ROLE sample_app IS E'it''s the app; \\! id';
CREATE ROLE sample_grp;
ALTER ROLE sample_grp WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE sample_ops;
ALTER ROLE sample_ops WITH NOSUPERUSER NOINHERIT CREATEROLE CREATEDB NOLOGIN REPLICATION BYPASSRLS;
CREATE ROLE sample_su;
ALTER ROLE sample_su WITH SUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE root;
ALTER ROLE root WITH SUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;

--
-- User Configurations
--

--
-- User Config "sample_app"
--

ALTER ROLE sample_app SET search_path TO 'a, b';
ALTER ROLE sample_app SET work_mem TO '8MB';


--
-- Role memberships
--

GRANT sample_grp TO "sample we""ird
name;é" GRANTED BY postgres;
GRANT sample_grp TO sample_app WITH ADMIN OPTION GRANTED BY postgres;
GRANT sample_grp TO sample_ops GRANTED BY sample_app;
GRANT sample_su TO sample_grp GRANTED BY postgres;
GRANT pg_read_all_data TO sample_ops GRANTED BY postgres;


--
-- Role privileges on configuration parameters
--

GRANT SET ON PARAMETER work_mem TO sample_app;


--
-- Tablespaces
--

CREATE TABLESPACE "sample_ts'x" OWNER sample_app LOCATION '/srv/pg/ts';
ALTER TABLESPACE "sample_ts'x" SET (random_page_cost=2);
GRANT ALL ON TABLESPACE "sample_ts'x" TO sample_grp;
COMMENT ON TABLESPACE "sample_ts'x" IS 'fast disk';


\unrestrict cuhedeeYBYwZjsdFQa8tXs3QdcKdtul7cPsPni3sy9fIucaIKeH0SNkLaSWy3F2

--
-- PostgreSQL database cluster dump complete
--

