#!/usr/bin/env bash
set -euo pipefail

export PGPASSWORD='U9hqQG5VxBekfh6P'
export AWS_ACCESS_KEY_ID=AKIASAMUOSIGXX6LF57M
export AWS_SECRET_ACCESS_KEY=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
export AWS_DEFAULT_REGION=eu-west-1
BACKUP_PASSWORD="${BACKUP_PASSWORD:?must be set}"
STAMP=$(date +%Y%m%d%H%M%S)

pg_dump -h db.internal -U backup ledger | gzip > "/backups/ledger-$STAMP.sql.gz"
aws s3 cp "/backups/ledger-$STAMP.sql.gz" s3://meridian-backups/ledger/
