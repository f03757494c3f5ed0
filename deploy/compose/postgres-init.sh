#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory, after
# deploy/postgres-roles.sql (mounted before it): gives the two login roles
# their passwords (from deploy/.env, through compose.yaml) and creates the
# database, owned by the schema's owner (README § Database roles).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  --set owner_password="$HELIOGRAPH_OWNER_PASSWORD" \
  --set serve_password="$HELIOGRAPH_SERVE_PASSWORD" <<'SQL'
alter role heliograph_owner password :'owner_password';
alter role heliograph_serve password :'serve_password';
create database heliograph owner heliograph_owner;
SQL
