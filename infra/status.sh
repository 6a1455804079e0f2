#!/usr/bin/env bash
# One line per service: running (started by us) | reused (someone else's) | stopped.
# Exit status 0 when every service answers, 3 otherwise.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_dotenv
rc=0
bash "$INFRA_DIR/postgres.sh" status || rc=3
bash "$INFRA_DIR/kafka.sh" status || rc=3
exit $rc
