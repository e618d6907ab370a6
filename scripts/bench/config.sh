# shellcheck shell=bash
# The configuration of the sts under measurement, shared by scripts/bench.sh
# and scripts/rss-exchange.sh: SQLite, one pool trusting the bench issuer,
# rate limits checked on every request but never binding.
#
#   bench_config PORT WORKDIR [REDIS_URL] > sts.yaml
bench_config() {
	cat <<YAML
listen: 127.0.0.1:$1
issuer: http://127.0.0.1:$1   # required with PostgreSQL; the default otherwise
data_dir: $2/data
storage: {type: sqlite}
log: {level: warn, format: json}
# Limits stay on (every request is checked) but never bind at this load.
rate_limits:
  redis_url: "${3:-}"
  per_ip: {rate: 1000000, burst: 1000000}
  per_client: {rate: 1000000, burst: 1000000}
  per_pool: {rate: 1000000, burst: 1000000}
organizations:
  - {id: acme, name: Acme, tier: enterprise}
pools:
  - id: ci
    organization: acme
    condition: 'assertion.repository_owner == "acme"'
    mapping: {subject: 'assertion.sub', attributes: {repo: 'assertion.repository'}}
    scopes: [read, write]
    max_token_lifetime: 1h
    allow_unauthenticated: true   # the floor authenticates no client either
    providers:
      - id: bench
        issuer: https://bench.sts.invalid
        audiences: [sts]
        jwks_file: $2/jwks.json
YAML
}
