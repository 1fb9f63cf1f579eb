-- Tousu database bootstrap: idempotent, safe to run again at any time.
--
-- Runs as a superuser with psql (needs psql 15+: \getenv, \if, \gexec), from
--   * deploy/infra.sh up    (psql -f deploy/postgres/bootstrap.sql, as the postgres OS user)
--   * docker-compose.yml    (mounted into /docker-entrypoint-initdb.d, runs once on an
--                            empty volume, connected to the image's default database)
--
-- Creates:
--   database tousu
--   per service one LOGIN role and one schema of the same name, owned by that role:
--     intake, routing, sla_monitor, feedback, analytics
--   Each role: CONNECT (+ TEMPORARY) on tousu, owns (so USAGE + CREATE on) its own
--   schema only, search_path = its own schema. No SUPERUSER, CREATEDB, CREATEROLE,
--   REPLICATION, BYPASSRLS. PUBLIC loses CONNECT on tousu and everything on schema public.
--
-- Passwords (dev defaults = the role name), overridable through the environment of
-- the psql process:
--   TOUSU_DB_PASSWORD_INTAKE, TOUSU_DB_PASSWORD_ROUTING, TOUSU_DB_PASSWORD_SLA_MONITOR,
--   TOUSU_DB_PASSWORD_FEEDBACK, TOUSU_DB_PASSWORD_ANALYTICS
-- Passwords are (re)set on every run, so changing the variable and re-running applies it.

\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

-- ---------------------------------------------------------------- passwords
\set pw_intake intake
\set pw_routing routing
\set pw_sla_monitor sla_monitor
\set pw_feedback feedback
\set pw_analytics analytics
\getenv pw_intake TOUSU_DB_PASSWORD_INTAKE
\getenv pw_routing TOUSU_DB_PASSWORD_ROUTING
\getenv pw_sla_monitor TOUSU_DB_PASSWORD_SLA_MONITOR
\getenv pw_feedback TOUSU_DB_PASSWORD_FEEDBACK
\getenv pw_analytics TOUSU_DB_PASSWORD_ANALYTICS

-- ---------------------------------------------------------------- database
SELECT 'CREATE DATABASE tousu ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tousu')
\gexec

-- ---------------------------------------------------------------- roles (cluster-wide)
SELECT format('CREATE ROLE %I LOGIN', r)
FROM unnest(ARRAY['intake', 'routing', 'sla_monitor', 'feedback', 'analytics']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)
\gexec

SELECT format(
         'ALTER ROLE %I WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE '
         'NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 PASSWORD %L',
         r, pw)
FROM (VALUES ('intake', :'pw_intake'),
             ('routing', :'pw_routing'),
             ('sla_monitor', :'pw_sla_monitor'),
             ('feedback', :'pw_feedback'),
             ('analytics', :'pw_analytics')) AS t(r, pw)
\gexec

-- Own schema first in the search path; pg_catalog is always searched implicitly.
ALTER ROLE intake      SET search_path = intake;
ALTER ROLE routing     SET search_path = routing;
ALTER ROLE sla_monitor SET search_path = sla_monitor;
ALTER ROLE feedback    SET search_path = feedback;
ALTER ROLE analytics   SET search_path = analytics;

-- ---------------------------------------------------------------- database privileges
REVOKE ALL ON DATABASE tousu FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE tousu TO intake, routing, sla_monitor, feedback, analytics;

-- ---------------------------------------------------------------- inside tousu
\connect tousu
\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

REVOKE ALL ON SCHEMA public FROM PUBLIC;

SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', r, r)
FROM unnest(ARRAY['intake', 'routing', 'sla_monitor', 'feedback', 'analytics']) AS r
\gexec

-- Re-assert ownership and drop any extra grants (e.g. made by hand) on the service
-- schemas: only the owner may use its schema.
SELECT format('ALTER SCHEMA %I OWNER TO %I', r, r)
    || format('; REVOKE ALL ON SCHEMA %I FROM PUBLIC', r)
FROM unnest(ARRAY['intake', 'routing', 'sla_monitor', 'feedback', 'analytics']) AS r
\gexec

SELECT format('REVOKE ALL ON SCHEMA %I FROM %I', s, r)
FROM unnest(ARRAY['intake', 'routing', 'sla_monitor', 'feedback', 'analytics']) AS s,
     unnest(ARRAY['intake', 'routing', 'sla_monitor', 'feedback', 'analytics']) AS r
WHERE s <> r
\gexec

\set QUIET off
\echo [bootstrap] database tousu ready: roles/schemas intake, routing, sla_monitor, feedback, analytics
