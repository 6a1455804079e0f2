#!/usr/bin/env bash
# Start (or reuse) the local infrastructure: PostgreSQL and Kafka. Idempotent; any cwd.
# Prints which services were started and which were reused, with timings.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$INFRA_DIR/lib/run_all.sh"
load_dotenv
run_all up
