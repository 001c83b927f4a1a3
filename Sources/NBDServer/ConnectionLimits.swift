// The per-client-address connection cap (--max-connections-per-client,
// config `nbdboot_max_per_client`): one address may hold at most N
// connections at once, handshakes included, so one misbehaving host cannot
// use up the server-wide --max-connections that every station shares.
// Unix-socket clients are local and not counted. A refused connection is
// closed right after accept(2), before the greeting, like one over the
// total cap; the log line about it is rate-limited to one a second.

/// Counts events and lets one log line through per second.
struct RateLimitedNote {
    private var suppressed = 0
    private var last = -1.0

    /// The number of events since the last line (this one included) when a
    /// line may be written now, nil when it must wait.
    mutating func tick() -> Int? {
        suppressed += 1
        let now = monotonicSeconds()
        guard now - last >= 1 else { return nil }
        last = now
        defer { suppressed = 0 }
        return suppressed
    }
}

extension Server {
    /// Why a new connection from `client` is over its address's cap, or nil.
    /// Call with `monitor` held.
    func perClientRefusal(_ client: IPAddress?) -> String? {
        let cap = config.limits.maxPerClient
        guard cap > 0, let client else { return nil }
        let open = connections.values.reduce(0) { $0 + ($1.client == client ? 1 : 0) }
        guard open >= cap else { return nil }
        return "\(open) connections from \(client) are open, the limit set by --max-connections-per-client (\(cap))"
    }

    /// Logs (rate-limited) a connection refused by `perClientRefusal`. Call with `monitor` held.
    func refusedPerClient(_ peer: String, _ why: String) {
        if let count = perClientNote.tick() {
            log("refusing connection from \(peer): \(why); \(count) refused since the last such line")
        }
    }
}
