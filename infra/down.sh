#!/usr/bin/env bash
# Stop the local infrastructure that infra/up.sh started (reused servers are left alone).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$INFRA_DIR/lib/run_all.sh"
load_dotenv
run_all down
