// Opening and negotiating the connections a device will run on.

/// Where to dial, resolved once so that a reconnect needs no DNS lookup.
struct Dialer {
    var server: ServerAddress
    var addresses: [SocketAddress]

    init(_ server: ServerAddress) throws(ClientError) {
        self.server = server
        switch server {
        case .unix: addresses = []
        case .tcp(let host, let port):
            do { addresses = try resolve(host: host, port: port) } catch {
                throw ClientError("cannot resolve server '\(host)': \(error.description)")
            }
            if addresses.isEmpty { throw ClientError("server '\(host)' has no address") }
        }
    }

    /// A connected stream socket (TCP with TCP_NODELAY, or AF_UNIX).
    func dial() throws(ClientError) -> FileDescriptor {
        switch server {
        case .unix(let path):
            do { return try connectUnix(path: path) } catch { throw ClientError("cannot reach the server: \(error.description)") }
        case .tcp:
            var last = ClientError("cannot connect to \(server.text)")
            for a in addresses {
                do { return try connect(to: a) } catch { last = ClientError("cannot reach the server: \(error.description)") }
            }
            throw last
        }
    }
}

/// How long one read of the handshake may wait for the server.
let handshakeTimeoutSeconds: Int32 = 30

/// One negotiated connection.
struct Negotiated {
    var fd: FileDescriptor
    var export: NegotiatedExport
}

/// Dials and runs the handshake (GO, falling back to EXPORT_NAME; -g forces
/// EXPORT_NAME). With -preinit there is no handshake: size from -B, no flags.
func dialAndNegotiate(_ dialer: Dialer, _ options: ConnectOptions) throws(ClientError) -> Negotiated {
    let fd = try dialer.dial()
    if options.preinit {
        return Negotiated(fd: fd, export: NegotiatedExport(size: options.sizeOverride ?? 0, flags: .hasFlags, via: .oldstyle))
    }
    // A server that accepts and then says nothing must not hang us (nor the
    // -persist monitor) forever: bound each read during the handshake, and
    // lift the bound before the kernel gets the socket, since its receive
    // worker would take a timeout for a dead connection.
    _ = shim_set_receive_timeout(fd.rawValue, handshakeTimeoutSeconds)
    var transport = SocketTransport(fd)
    do {
        let export = try negotiate(&transport, NegotiationOptions(exportName: options.exportName, forceExportName: options.noOptGo))
        _ = shim_set_receive_timeout(fd.rawValue, 0)
        return Negotiated(fd: fd, export: export)
    } catch {
        fd.close()
        throw ClientError("negotiation with \(dialer.server.text) for export '\(options.exportName)' failed: \(describe(error))")
    }
}

/// NegotiationError with the errno spelt out.
func describe(_ e: NegotiationError) -> String {
    if case .io(let errno, let doing) = e {
        if errno == EAGAIN { return "\(doing): the server sent nothing for \(handshakeTimeoutSeconds) s" }
        return "\(doing): \(Errno(errno).description)"
    }
    return e.description
}
