-- The app's database and its owner, created once by the postgres image when its data volume is
-- first initialised (docker-compose.yml mounts this file into /docker-entrypoint-initdb.d/; it runs
-- as the superuser). As README's "Using an external PostgreSQL" says: the owner is no superuser; it
-- owns the database, so its public schema, where the migrations create everything; it may SET ROLE
-- subscriptions_app, the role each request's transaction runs as, under row-level security; and it
-- has BYPASSRLS for the key lookup (authenticate_api_key is SECURITY DEFINER). The password is the
-- db service's APP_DB_PASSWORD, the one in the app services' DATABASE_URL.
\getenv app_password APP_DB_PASSWORD
CREATE ROLE subscriptions_app NOLOGIN;
CREATE ROLE subscriptions LOGIN PASSWORD :'app_password' BYPASSRLS;
GRANT subscriptions_app TO subscriptions;
CREATE DATABASE subscriptions OWNER subscriptions;
