// The exports being served, shared by the accept loop (a new connection gets
// a snapshot for its handshake), the connections (which attach to the export
// they chose when transmission starts) and a SIGHUP reload (which swaps the
// set). A backend stays open while a connection uses it, even after a reload
// retired its export, and is closed when the last such connection ends.
import LinuxSys

final class ExportTable: @unchecked Sendable {
    private let monitor = Monitor()
    private var current: [Export]
    /// Connection ID -> the export it is in transmission on, and its client.
    private var users: [Int: (export: Export, client: IPAddress?)] = [:]
    /// Exports a reload replaced whose backend some connection still uses.
    private var retired: [Export] = []

    init(_ exports: [Export]) { current = exports }

    /// The exports a new connection negotiates against.
    var snapshot: [Export] { monitor.locked { current } }

    /// A connection starts transmission on `export`. Nil when it may; else
    /// why not: a reload removed or changed the export during the handshake,
    /// or the export's `maxconnections` is reached.
    func attach(_ id: Int, _ export: Export, client: IPAddress?) -> String? {
        monitor.locked {
            guard current.contains(where: { $0 === export }) else {
                return "export '\(export.spec.name)' was removed or changed by a reload during the handshake; the client may reconnect"
            }
            if let max = export.spec.policy.maxConnections {
                let n = users.values.filter { $0.export === export }.count
                if n >= max {
                    return "export '\(export.spec.name)' has \(n) connections, its maxconnections (\(max))"
                }
            }
            users[id] = (export, client)
            return nil
        }
    }

    /// A connection ended: closes retired backends nobody uses any more.
    func detach(_ id: Int) {
        monitor.locked {
            users[id] = nil
            closeUnusedRetired()
        }
    }

    /// What a reload did, for its log line.
    struct Change {
        var added: [String] = []
        var removed: [String] = []
        var changed: [String] = []
        var unchanged: [String] = []
        /// Connections to close: on removed or changed exports, or whose
        /// client the export's new allow list refuses.
        var close: [Int] = []
    }

    /// Two specs serve the same bytes the same way: everything but the
    /// description and the allow list is equal. Connections to such an
    /// export stay up across a reload.
    static func sameExport(_ a: ExportSpec, _ b: ExportSpec) -> Bool {
        var a = a, b = b
        a.description = ""
        b.description = ""
        a.policy.allow = nil
        b.policy.allow = nil
        return a == b
    }

    /// Replaces the exports by `specs`. New and changed exports are opened
    /// first (with `open`); if one fails nothing changes and the error is
    /// thrown. Only one reload runs at a time (the signal thread).
    func replace(with specs: [ExportSpec], open: (ExportSpec) throws(ServerError) -> Export) throws(ServerError) -> Change {
        let old = snapshot
        var change = Change()
        var next: [Export] = []
        var opened: [Export] = []
        for spec in specs {
            if let same = old.first(where: { $0.spec.name == spec.name && ExportTable.sameExport($0.spec, spec) }) {
                next.append(spec == same.spec ? same : Export(spec: spec, backend: same.backend))
                change.unchanged.append(spec.name)
                continue
            }
            do { let e = try open(spec); opened.append(e); next.append(e) } catch {
                opened.forEach { $0.backend.close() }
                throw error
            }
            if old.contains(where: { $0.spec.name == spec.name }) { change.changed.append(spec.name) } else { change.added.append(spec.name) }
        }
        change.removed = old.map { $0.spec.name }.filter { name in !specs.contains { $0.name == name } }
        monitor.locked {
            for (id, user) in users {
                if let kept = next.first(where: { $0.spec.name == user.export.spec.name && $0.backend === user.export.backend }) {
                    if kept.spec.policy.refusal(for: user.client) == nil {
                        users[id] = (kept, user.client)
                        continue
                    }
                }
                change.close.append(id)
            }
            let keptBackends = next.map { ObjectIdentifier($0.backend) }
            for e in current where !keptBackends.contains(ObjectIdentifier(e.backend)) { retired.append(e) }
            current = next
            closeUnusedRetired()
        }
        return change
    }

    /// Closes every backend (server stop, when no connection is left).
    func closeAll() {
        monitor.locked {
            var closed: [ObjectIdentifier] = []
            for e in current + retired where !closed.contains(ObjectIdentifier(e.backend)) {
                closed.append(ObjectIdentifier(e.backend))
                e.backend.close()
            }
            current = []
            retired = []
        }
    }

    /// Call with the monitor held. A connection being closed by a reload
    /// still counts as a user until it detaches.
    private func closeUnusedRetired() {
        retired.removeAll { e in
            let used = users.values.contains { $0.export.backend === e.backend }
            if !used { e.backend.close() }
            return !used
        }
    }
}
