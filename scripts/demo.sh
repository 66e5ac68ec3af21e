#!/usr/bin/env bash
# README command 1: bring up acrguard's local stack on this machine and show it at work.
#   Debian's docker-registry on 127.0.0.1 with its notifications pointed at `acrguard serve` (bubblewrap
#   sandbox, SQLite store and embedded queue under .cache/demo/), the sample image
#   samples/alpine-3.10-app.tar pushed with skopeo, its findings printed with the curl commands that query
#   them; then it keeps serving until Ctrl-C, and stops the registry and serve on the way out.
# Usage: scripts/demo.sh [--once]     --once (or ACRGUARD_DEMO_ONCE=1): exit after printing (tests, CI)
# Settings: ACRGUARD_DEMO_PORT (serve, default 7071), ACRGUARD_DEMO_REGISTRY_PORT (default 5001),
#           ACRGUARD_DEMO_DIR (default .cache/demo; emptied at start), ACRGUARD_DB (else the default database,
#           else one built from the snapshot bundled with acrguard: no network needed).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "demo: $*" >&2; exit 1; }
once=${ACRGUARD_DEMO_ONCE:-0}
for arg in "$@"; do
  case $arg in
    --once) once=1 ;;
    -h | --help) sed -n '2,10p' "$0" | cut -c3-; exit 0 ;;
    *) echo "demo: unknown argument '$arg' (usage: scripts/demo.sh [--once])" >&2; exit 2 ;;
  esac
done
port=${ACRGUARD_DEMO_PORT:-7071}
registry_port=${ACRGUARD_DEMO_REGISTRY_PORT:-5001}
dir=${ACRGUARD_DEMO_DIR:-.cache/demo}
registry=127.0.0.1:$registry_port
repo=samples/alpine-app
sample=samples/alpine-3.10-app.tar

# 1. acrguard in .venv, and the programs the stack runs (installed through the project's script if missing).
bash scripts/bootstrap.sh
py=.venv/bin/python
missing_tools() {
  local tool
  for tool in docker-registry skopeo bwrap; do command -v "$tool" >/dev/null || printf '%s ' "$tool"; done
}
missing=$(missing_tools)
if [ -n "$missing" ]; then
  echo "demo: ${missing}missing; installing through scripts/install-demo-deps.sh" >&2
  bash scripts/install-demo-deps.sh >&2 || die "could not install ${missing}(run scripts/install-demo-deps.sh as root)"
  missing=$(missing_tools)
  [ -z "$missing" ] || die "${missing}still missing after scripts/install-demo-deps.sh"
fi

# 2. Both ports must be free: a registry or serve left from an earlier run would answer in our place.
port_free() {
  "$py" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' \
    "$1" 2>/dev/null
}
port_free "$port" || die "port $port on 127.0.0.1 (acrguard serve) is taken; stop what listens there or set ACRGUARD_DEMO_PORT"
port_free "$registry_port" ||
  die "port $registry_port on 127.0.0.1 (docker-registry) is taken; stop what listens there or set ACRGUARD_DEMO_REGISTRY_PORT"

# 3. The vulnerability database: the configured one, else one built from the bundled snapshot (first run only).
db=$("$py" -c 'from scanner.vulndb.location import scan_db_path; print(scan_db_path())') ||
  die "no vulnerability database (see the error above)"
[ -f "$db" ] || die "vulnerability database $db does not exist (ACRGUARD_DB names a missing file?)"

# 4. A fresh demo directory, keys for this run, then serve and a registry that notifies it.
rm -rf "$dir"
mkdir -p "$dir/registry"
dir=$(cd "$dir" && pwd)
new_key() { "$py" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
ACRGUARD_API_KEY=${ACRGUARD_API_KEY:-$(new_key)}
ACRGUARD_FUNCTION_KEY=${ACRGUARD_FUNCTION_KEY:-$(new_key)}
# The registry's own credential: it may deliver notifications, nothing else (no reading findings).
ACRGUARD_EVENTS_TOKEN=${ACRGUARD_EVENTS_TOKEN:-$(new_key)}
export ACRGUARD_API_KEY ACRGUARD_FUNCTION_KEY ACRGUARD_EVENTS_TOKEN

pids=()
cleanup() {
  local pid
  # The registry first, so that it stops notifying; then serve, which stops its worker and timers.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

.venv/bin/acrguard serve --host 127.0.0.1 --port "$port" --runner bubblewrap --db "$db" \
  --store "$dir/store.sqlite" --queue "$dir/queue.sqlite" --insecure-registries "$registry" >"$dir/serve.log" 2>&1 &
serve_pid=$!
# The keys go in the notification's headers, never its URL (the registry logs URLs). It logs each
# endpoint's headers too, at info when it starts: hence level warn. The config is readable by this user only.
(umask 077 && cat >"$dir/registry/config.yml") <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/registry/storage
  delete:
    enabled: true
http:
  addr: $registry
notifications:
  events:
    includereferences: true
  endpoints:
    - name: acrguard
      url: http://127.0.0.1:$port/api/registry-notifications
      headers:
        Authorization: ["Bearer $ACRGUARD_EVENTS_TOKEN"]
        x-functions-key: ["$ACRGUARD_FUNCTION_KEY"]
      timeout: 5s
      threshold: 3
      backoff: 1s
EOF
docker-registry serve "$dir/registry/config.yml" >"$dir/registry.log" 2>&1 &
registry_pid=$!
pids=("$registry_pid" "$serve_pid")

# wait_ready NAME PID URL LOG: until URL answers 200, failing with the log's end if the process exits.
wait_ready() {
  "$py" - "$@" <<'EOF'
import os, sys, time, urllib.request
name, pid, url, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        with opener.open(url, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(0.2)
tail = open(log, errors="replace").read().strip().splitlines()[-5:]
sys.exit(f"demo: {name} did not start; the end of {log}:\n  " + "\n  ".join(tail))
EOF
}
wait_ready "acrguard serve" "$serve_pid" "http://127.0.0.1:$port/api/health" "$dir/serve.log"
wait_ready docker-registry "$registry_pid" "http://$registry/v2/" "$dir/registry.log"
echo "demo: acrguard serve on http://127.0.0.1:$port (log $dir/serve.log), docker-registry on $registry"

# 5. Push the sample; the registry notifies serve, which queues a scan run by the sandboxed job.
skopeo copy --quiet --dest-tls-verify=false --digestfile "$dir/digest" \
  "docker-archive:$sample" "docker://$registry/$repo:3.10" >&2 || die "skopeo could not push $sample to $registry"
digest=$(cat "$dir/digest")
echo "demo: pushed $sample as $registry/$repo:3.10 ($digest); waiting for its findings"

# 6. Wait for the stored findings, print them and the curl commands that query them.
"$py" - "$port" "$registry" "$repo" "$digest" "$serve_pid" "$dir/serve.log" <<'EOF'
import json, os, sys, time, urllib.error, urllib.request
port, registry, repo, digest, pid, log = sys.argv[1:7]
key, function_key = os.environ["ACRGUARD_API_KEY"], os.environ["ACRGUARD_FUNCTION_KEY"]
base = f"http://127.0.0.1:{port}/api"
headers = {"x-functions-key": function_key, "x-api-key": key}
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(path: str):
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with opener.open(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise


deadline = time.monotonic() + 180
image = None
while time.monotonic() < deadline:
    image = get(f"/images/{registry}/{digest}")
    scan = (image or {}).get("lastScan") or {}
    if scan.get("status") in ("succeeded", "failed"):
        break
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        sys.exit(f"demo: acrguard serve exited; see {log}")
    time.sleep(0.3)
else:
    sys.exit(f"demo: no scan result for {digest} within 180 s; see {log}")
if image["lastScan"]["status"] != "succeeded":
    sys.exit(f"demo: the scan of {digest} failed; see {log}")

counts = (image.get("summary") or {}).get("by_severity", {})
summary = ", ".join(f"{n} {severity}" for severity, n in counts.items() if n) or "none"
print(f"\n{registry}/{repo}:3.10 is {image['health']}: {len(image['findings'])} finding(s) ({summary})")
# Highest risk first (the API's order): severity and who rated it, CISA KEV and FIRST EPSS where they apply.
print(f"  {'RISK':>5}  {'SEVERITY':<9}{'RATED BY':<18}{'ID':<24}{'PACKAGE':<20}{'INSTALLED':<11}{'FIXED':<11}SIGNALS")
for f in image["findings"]:
    kev, epss = f.get("kev"), f.get("epss")
    marks = [f"KEV since {kev['date_added']}"] if kev else []
    if epss:
        marks.append(f"EPSS {epss['score']:.1%} (top {max(1 - epss['percentile'], 0.001):.1%})")
    signals = " ".join(marks) or "-"
    package = f["package"]["name"] + (" [base]" if f.get("origin") == "base" else "")
    print(
        f"  {f.get('risk', 0):>5.1f}  {f['severity']:<9}{f['severity_source']:<18}{f['id']:<24}{package:<20}"
        f"{f['installed_version']:<11}{f.get('fixed_version') or 'no fix':<11}{signals}"
    )

cve = next((a for f in image["findings"] for a in [f["id"], *f.get("aliases", [])] if a.startswith("CVE-")), None)
sub = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
    f"Microsoft.ContainerRegistry/registries/{registry}/providers/Microsoft.Security/assessments/"
    "dbd0cb49-b563-45e7-9724-889e799fa648/subAssessments"
)
auth = f"-H 'x-functions-key: {function_key}' -H 'x-api-key: {key}'"
print("\nQuery the findings (function key and API key of this run):")
print(f"  curl -s {auth} '{base}/images?registry={registry}'")
print(f"  curl -s {auth} '{base}/images/{registry}/{digest}'")
print(f"  curl -s {auth} '{base}{sub}'")
if cve:
    print(f"  curl -s {auth} '{base}/vulnerabilities/{cve}/images'")
print(f"  OpenAPI: {base}/openapi.json")
print(f"\nDashboard: {base}/dashboard/images/{registry}/{digest}")
print(f"  open {base}/dashboard and sign in with this run's API key: {key}")
EOF

if [ "$once" = 1 ]; then
  exit 0
fi
echo
echo "demo: serving until Ctrl-C. Push more: skopeo copy --dest-tls-verify=false SOURCE docker://$registry/REPO:TAG"
set +e
wait "$serve_pid"
status=$?
set -e
# Ctrl-C reaches serve too (same process group); a signalled serve ends with 0 and this script with 130.
[ "$status" -eq 0 ] || die "acrguard serve stopped (exit $status); see $dir/serve.log"
echo "demo: stopped"
