#!/bin/bash
set -euo pipefail
export VAULT_TOKEN=hvs.XUBgt539epbWCzaqFzvxiREySuOl1d3NDQHrV2ftN9YtMzHnNpzTObvBzH-bkDmdtVBS0e2r4s8AamS4Vlt3kBHv6S
export DOPPLER_TOKEN=dp.st.prd.nP6b6EfvSiuVYfkMigV164bFw0paGDfTC6n1tBzQ
curl -u deploy:ey0p6rDHd84khaXP https://nexus.internal/repository/releases/
curl -H 'Authorization: Bearer dop_v1_a2b5de424341c1c52a32b9033db15fcc439aca5714223746038bb1169c83c06e' https://api.digitalocean.com/v2/droplets
curl -H "Authorization: Bearer $API_TOKEN" https://api.example.com/v1/ping
