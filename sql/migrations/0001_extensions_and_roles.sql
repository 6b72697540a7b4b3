-- Extensions and the roles PostgREST switches between.
--
-- Roles belong to the whole server, not to one database, so they are created
-- only when missing. `authenticator` logs in and has no privileges of its own:
-- PostgREST connects as it and switches to `web_anon` (no token) or to the
-- role named in a valid token (`api_user`). Its password is set by `deploy`
-- from Secrets Manager, never here.

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

-- pg_cron can only be created in the database named by `cron.database_name`
-- (the parameter group sets it to this database on RDS). Elsewhere `deploy`
-- creates it in that database when it reconciles the jobs.
DO $$
BEGIN
  IF current_setting('cron.database_name', true) = current_database() THEN
    CREATE EXTENSION IF NOT EXISTS pg_cron;
  END IF;
END
$$;

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
    CREATE ROLE authenticator LOGIN NOINHERIT NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'web_anon') THEN
    CREATE ROLE web_anon NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'api_user') THEN
    CREATE ROLE api_user NOLOGIN;
  END IF;
END
$$;

GRANT web_anon TO authenticator;
GRANT api_user TO authenticator;

-- `api` is the only schema PostgREST exposes; `platform` holds what the API
-- uses but must not offer (job bodies, the embedding seam).
CREATE SCHEMA IF NOT EXISTS api;
CREATE SCHEMA IF NOT EXISTS platform;

-- Nothing is callable or readable by default: every grant is in 0005.
-- (The `vector` type and operators stay usable from `public`; nobody but the
-- owner may create objects there.)
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- The subject of the current API token (`sub`), or NULL outside a request.
CREATE FUNCTION platform.current_subject() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
$$;
