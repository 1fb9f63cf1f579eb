-- Tousu: the audit logs leave the service roles' hands. Idempotent; run as a superuser with
-- psql after every service's migrations (`make migrate` runs `deploy/infra.sh harden`).
--
-- Each service's <schema>.audit_log (with its identity sequence, indexes, triggers and the
-- audit_log_* functions) is owned by tousu_audit, a NOLOGIN role nobody signs in as. The
-- service role keeps INSERT and SELECT only: no UPDATE, DELETE, TRUNCATE, ALTER, trigger
-- control or ownership. Its migrations run as that role, so they cannot move the table
-- back, and no migration may change audit_log afterwards (the superuser does, here).
-- A schema owner may drop any object in its schema: an event trigger refuses to drop an
-- audit_log object (a DROP TABLE, DROP FUNCTION ... CASCADE or DROP SCHEMA ... CASCADE)
-- unless a superuser does it.

\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

SELECT 'CREATE ROLE tousu_audit NOLOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tousu_audit')
\gexec
ALTER ROLE tousu_audit WITH NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE
  NOREPLICATION NOBYPASSRLS;

\connect tousu
\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

SELECT format('ALTER TABLE %I.audit_log OWNER TO tousu_audit', s)
    || format('; REVOKE ALL ON TABLE %I.audit_log FROM PUBLIC, %I', s, s)
    || format('; GRANT SELECT, INSERT ON TABLE %I.audit_log TO %I', s, s)
FROM unnest(ARRAY['intake', 'routing', 'sla_monitor', 'feedback', 'analytics']) AS s
WHERE to_regclass(format('%I.audit_log', s)) IS NOT NULL
\gexec

-- The trigger functions (append-only, the hash chain and its digest): owned by tousu_audit
-- too, so the service role can neither replace nor drop them.
SELECT format('ALTER FUNCTION %s OWNER TO tousu_audit', p.oid::regprocedure)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('intake', 'routing', 'sla_monitor', 'feedback', 'analytics')
  AND p.proname LIKE 'audit\_log\_%'
\gexec

CREATE OR REPLACE FUNCTION public.tousu_keep_audit_logs() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    dropped record;
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = current_user AND rolsuper) THEN
        RETURN;
    END IF;
    FOR dropped IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
        IF dropped.object_identity LIKE '%audit\_log%' THEN
            RAISE EXCEPTION 'permission denied: % belongs to the audit log (superuser only)',
                dropped.object_identity;
        END IF;
    END LOOP;
END $$;

SELECT 'CREATE EVENT TRIGGER tousu_keep_audit_logs ON sql_drop '
       'EXECUTE FUNCTION public.tousu_keep_audit_logs()'
WHERE NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'tousu_keep_audit_logs')
\gexec
ALTER EVENT TRIGGER tousu_keep_audit_logs ENABLE;

\set QUIET off
\echo [harden] audit logs owned by tousu_audit; service roles may INSERT and SELECT only
