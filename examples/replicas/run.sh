#!/usr/bin/env bash
# Three edgellm replicas on 23334-23336 and nginx on 8080 in front of them (Debian: apt install nginx).
#   examples/replicas/run.sh <model directory>      then: curl localhost:8080/v1/models
# Ctrl-C stops everything. In production, run the replicas under your service manager with
# `--drain-delay 5` and nginx with this file in /etc/nginx/conf.d/.
set -euo pipefail
model=${1:?usage: run.sh <model directory>}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$work"' EXIT
for port in 23334 23335 23336; do
  npx edgellm serve "$model" --host 127.0.0.1 --port "$port" --drain-delay 2 &
  pids+=($!)
done
cat > "$work/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log stderr warn;
events {}
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    include $here/edgellm.conf;
}
CONF
nginx -p "$work" -c "$work/nginx.conf" &
pids+=($!)
wait
