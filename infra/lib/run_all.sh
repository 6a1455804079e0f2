# Runs "<service>.sh <action>" for every service in parallel, then prints a summary with
# outcome (started/reused/stopped/...) and wall time per service. Used by up.sh and down.sh.
# shellcheck shell=bash

SERVICES=(postgres kafka)

run_all() {  # run_all <action>
  local action=$1 tmp t0 svc
  tmp="$(mktemp -d)"
  t0=$(now_ms)
  for svc in "${SERVICES[@]}"; do
    (
      local s rc=0
      s=$(now_ms)
      INFRA_RESULT_FILE="$tmp/$svc.result" bash "$INFRA_DIR/$svc.sh" "$action" || rc=$?
      echo "$rc $(( $(now_ms) - s ))" >"$tmp/$svc.meta"
    ) &
  done
  wait
  local total=$(( $(now_ms) - t0 )) failed=0 rc ms result
  echo "---- infra $action ($(fmt_secs "$total") total) ----"
  for svc in "${SERVICES[@]}"; do
    read -r rc ms <"$tmp/$svc.meta"
    result="$(cat "$tmp/$svc.result" 2>/dev/null || true)"
    if [[ "$rc" != 0 ]]; then
      result="FAILED (exit $rc)"
      failed=1
    fi
    printf '  %-9s %-14s %s\n' "$svc" "${result:-?}" "$(fmt_secs "$ms")"
  done
  rm -rf "$tmp"
  return $failed
}
