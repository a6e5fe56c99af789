#!/usr/bin/env bash
# A local PostgreSQL 15 (Debian's packages) for the multi-worker sweep test, reachable as
#   postgresql://postgres:postgres@127.0.0.1:5432/postgres   (EMBEXP_TEST_PG_URL's default)
# Idempotent: installs only what is missing, creates the cluster only if there is none,
# starts it only if it is down. Needs root (CI and the dev machines run as root).
set -euo pipefail
PGVER=15
PORT=${PGPORT:-5432}
PASSWORD=${PGPASSWORD_CI:-postgres}

if [ ! -x "/usr/lib/postgresql/$PGVER/bin/postgres" ] || ! command -v pg_ctlcluster >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "postgresql-$PGVER" "postgresql-client-$PGVER" >/dev/null
fi
if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$PGVER/main"; then
  pg_createcluster "$PGVER" main --port "$PORT" >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main" {print $4}' | grep -q online; then
  pg_ctlcluster "$PGVER" main start
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p "$PORT" && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p "$PORT"
# Debian's pg_hba.conf already allows password (scram-sha-256) logins on 127.0.0.1 and ::1.
su postgres -c "psql -q -p $PORT -c \"ALTER USER postgres PASSWORD '$PASSWORD'\""
echo "PostgreSQL $PGVER ready: postgresql://postgres:$PASSWORD@127.0.0.1:$PORT/postgres"
