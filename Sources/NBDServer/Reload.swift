// SIGHUP: re-read the configuration (the file given with --config, combined
// with the command line again) and apply it to new connections:
//   - added exports appear, removed ones disappear (LIST, INFO, GO);
//   - a changed export (other path, readonly, filesize, flags, maxconnections)
//     is reopened, and the connections to it are closed so that their clients
//     reconnect to the new one (the kernel's nbd-client -persist does);
//   - an unchanged export keeps its open file and its connections; a new
//     description or allow list applies at once, and a connection whose
//     client the new allow list refuses is closed;
//   - max_connections, nbdboot_max_per_client, nbdboot_handshake_timeout and
//     allowlist apply to new connections; listen addresses, user and group
//     need a restart (a line in the log says so).
// A file that does not parse, or an export that cannot be opened, is logged
// and the old configuration stays in force entirely.
import LinuxSys

extension Server {
    /// Re-reads the configuration through `reloadSource` and applies it.
    /// Returns false (logged) when it could not.
    @discardableResult
    public func reload() -> Bool {
        guard let source = reloadSource else {
            log("SIGHUP: no configuration file to re-read (start with --config FILE); nothing changed")
            return false
        }
        let loaded: LoadedConfig
        do throws(ConfigError) { loaded = try source() } catch {
            log("SIGHUP: reload failed, the previous configuration stays in force: \(error.message)")
            return false
        }
        return apply(loaded)
    }

    /// Applies a new configuration (see the top of this file).
    @discardableResult
    public func apply(_ loaded: LoadedConfig) -> Bool {
        loaded.warnings.forEach { log($0) }
        let new = loaded.config
        let change: ExportTable.Change
        do throws(ServerError) {
            change = try table.replace(with: new.exports) { (spec) throws(ServerError) -> Export in
                do throws(SysError) { return try Export(spec: spec) } catch { throw .export(spec, error) }
            }
        } catch {
            log("SIGHUP: reload failed, the previous configuration stays in force: \(error.description)")
            return false
        }
        let restartNeeded: [String] = monitor.locked {
            var needs: [String] = []
            if new.listeners != config.listeners { needs.append("listen addresses") }
            if new.oldstyle != config.oldstyle { needs.append("--oldstyle") }
            config.exports = new.exports
            config.limits = new.limits
            config.listAllowed = new.listAllowed
            for id in change.close { connections[id]?.abort() }
            return needs
        }
        for name in change.added + change.changed {
            if let e = table.snapshot.first(where: { $0.spec.name == name }) { Server.logExport(e, log) }
        }
        func names(_ list: [String]) -> String { list.isEmpty ? "none" : list.map { "'\($0)'" }.joined(separator: ", ") }
        log("SIGHUP: configuration reloaded: added \(names(change.added)), changed \(names(change.changed)), removed \(names(change.removed)), unchanged \(names(change.unchanged)); closed \(change.close.count) connection(s)")
        if !restartNeeded.isEmpty {
            log("SIGHUP: \(restartNeeded.joined(separator: " and ")) changed; they take effect at the next restart")
        }
        return true
    }
}
