# Shared by the client's tests (sourced): helpers for servers on 127.0.0.1.

# free_port FIRST LAST: the first TCP port in FIRST..LAST nobody listens on
# (two copies of a test, e.g. a worktree and main, may run at once).
free_port() {
  local p
  for p in $(seq "$1" "$2"); do
    if ! ss -Hltn "sport = :$p" | grep -q .; then echo "$p"; return 0; fi
  done
  echo "no free port in $1-$2" >&2
  return 1
}

# wait_pidfile FILE: wait (up to 5 s) for a server's pid file.
wait_pidfile() {
  local _
  for _ in $(seq 50); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "no pid file $1 after 5 s" >&2
  return 1
}
