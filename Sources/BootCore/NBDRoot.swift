// Where the root filesystem lives: `nbdroot=`, `root=` and `nbddev=`.
//
// The forms are Debian's (nbd-client's initramfs script
// scripts/local-top/nbd, see shared/research/initramfs-anchors.md 1.2), with
// one fix: the 2-field comma form `HOST,NAME` means server and export name
// (Debian reads the second field as a port and then fails).
//
//   nbdroot=HOST/NAME              10.0.2.2/root
//   nbdroot=HOST:PORT/NAME         10.0.2.2:10810/root
//   nbdroot=HOST:/PATH             10.0.2.2:/opt/ltsp/i386 (the name keeps its /)
//   nbdroot=[V6]:PORT/NAME         [2001:db8::1]:10810/root, [fe80::1]:/img
//   nbdroot=HOST,NAME[,nbdN]       10.0.2.2,root,nbd1
//   nbdroot=/NAME, nbdroot=dhcp,NAME   host from DHCP (the server's address)
//   nbdroot=dhcp, nbdroot=         the whole value from DHCP option 17 (root-path)
//   root=/dev/nbdN[pM]             device and partition to mount (default /dev/nbd0)
//   root=LABEL=x, root=UUID=y      the filesystem on the disk or a partition
//   root=nbd:..., root=nbd://...   dracut's form, an NBD URI (NBDServerForms.swift)
//   netroot=nbd:..., netroot=nbd://...   the same; root= wins, then netroot=, then nbdroot=
//   root=dhcp, netroot=dhcp        the whole value from DHCP option 17, any form
//   nbddev=/dev/nbdN               device when root= does not name one

/// The default NBD port (IANA "nbd", 10809).
public let defaultNBDPort: UInt16 = 10809

/// The server and export to connect to.
public struct NBDServerSpec: Equatable, Sendable {
    /// Address or name; IPv6 literals without brackets. Empty when
    /// `hostFromDHCP`.
    public var host: String
    public var port: UInt16
    public var exportName: String
    /// The host was empty or `dhcp`: use the DHCP server (ROOTSERVER).
    public var hostFromDHCP: Bool
    /// Block size for the client's `-b` (dracut's `bs=` option), or nil.
    public var blockSize: Int?
    /// Request timeout in seconds for the client's `-t` (dracut's `timeout=`), or nil.
    public var timeoutSeconds: Int?

    public init(host: String, port: UInt16 = defaultNBDPort, exportName: String, hostFromDHCP: Bool = false,
                blockSize: Int? = nil, timeoutSeconds: Int? = nil) {
        self.host = host
        self.port = port
        self.exportName = exportName
        self.hostFromDHCP = hostFromDHCP
        self.blockSize = blockSize
        self.timeoutSeconds = timeoutSeconds
    }

    /// `host:port/name` for messages, IPv6 in brackets.
    public var text: String {
        let h = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]" : host
        return "\(h):\(port)/\(exportName)"
    }

    /// The same spec with the host filled in from DHCP when it was left to it.
    public func with(server: String) -> NBDServerSpec {
        guard hostFromDHCP else { return self }
        var s = self
        s.host = server
        s.hostFromDHCP = false
        return s
    }
}

/// An NBD device node: /dev/nbdN, or partition M of it (/dev/nbdNpM).
public struct NBDDevice: Equatable, Sendable {
    public var index: Int
    public var partition: Int?

    public init(index: Int, partition: Int? = nil) {
        self.index = index
        self.partition = partition
    }

    /// Accepts `/dev/nbd0`, `nbd0`, `/dev/nbd0p1`, `nbd0p1`.
    public init?(_ text: String) {
        var b = Array(text.utf8)
        let dev = Array("/dev/".utf8)
        if b.starts(with: dev) { b.removeFirst(dev.count) }
        let nbd = Array("nbd".utf8)
        guard b.starts(with: nbd) else { return nil }
        b.removeFirst(nbd.count)
        let rest = String(decoding: b, as: UTF8.self)
        let parts = splitFields(rest, "p")
        guard parts.count <= 2, let i = parseDecimal(parts[0], max: 65535) else { return nil }
        index = i
        if parts.count == 2 {
            guard let p = parseDecimal(parts[1], max: 255), p > 0 else { return nil }
            partition = p
        } else {
            partition = nil
        }
    }

    /// `nbd0`: the name under /sys/block.
    public var blockName: String { "nbd\(index)" }
    /// `/dev/nbd0`: the device nbd-client connects.
    public var wholeDevice: String { "/dev/nbd\(index)" }
    /// `/dev/nbd0` or `/dev/nbd0p1`: the device to mount.
    public var path: String { partition.map { "/dev/nbd\(index)p\($0)" } ?? wholeDevice }
    /// The same device without the partition.
    public var whole: NBDDevice { NBDDevice(index: index) }
}

/// Which filesystem to mount once the NBD disk is connected.
public enum RootSelector: Equatable, Sendable {
    /// `root=/dev/nbdN[pM]`, `nbddev=`, or the default /dev/nbd0.
    case device
    /// `root=LABEL=x`: the disk or the partition whose filesystem label is x.
    case label(String)
    /// `root=UUID=y`: the same by filesystem UUID (compared case-insensitively).
    case uuid(String)
}

/// Everything the command line says about the root device.
public struct NBDRoot: Equatable, Sendable {
    /// nil when the whole value comes from DHCP's root-path (option 17):
    /// `nbdroot=dhcp`, `nbdroot=`, `root=dhcp` or `netroot=dhcp`.
    public var server: NBDServerSpec?
    /// The device to mount (its `whole` is the one to connect); with a
    /// LABEL=/UUID= selector only `whole` counts.
    public var device: NBDDevice
    public var selector: RootSelector
    /// dracut's FSTYPE and FLAGS fields, when the server came in that form.
    public var fsType: String?
    public var flags: String?
    /// Where the server came from, for messages: `root=`, `netroot=`,
    /// `nbdroot=` or `the DHCP root-path`.
    public var source: String

    public init(server: NBDServerSpec?, device: NBDDevice, selector: RootSelector = .device,
                fsType: String? = nil, flags: String? = nil, source: String = "nbdroot=") {
        self.server = server
        self.device = device
        self.selector = selector
        self.fsType = fsType
        self.flags = flags
        self.source = source
    }

    /// Reads `nbdroot=`, `root=`, `netroot=` and `nbddev=` (nil when absent).
    /// The server comes from root=nbd:/nbd:// (dracut: root= wins), else
    /// netroot=nbd:..., else nbdroot=; `dhcp` (or an empty nbdroot=) leaves
    /// it to DHCP's root-path. The device is taken from root=/dev/nbd*,
    /// else nbddev=, else the third comma field, else /dev/nbd0, as Debian
    /// does; root=LABEL=x and root=UUID=y pick a filesystem on that disk.
    public static func parse(nbdroot: String?, root: String?, nbddev: String?, netroot: String? = nil) throws(BootConfigError) -> NBDRoot {
        var device = NBDDevice(index: 0)
        var out = NBDRoot(server: nil, device: device)
        var value: NBDServerValue? = nil
        var fromDHCP = false
        if let root, NBDServerValue.isNBDForm(root) {
            value = try NBDServerValue.parse(root, parameter: "root")
            out.source = "root="
        } else if let netroot, NBDServerValue.isNBDForm(netroot) {
            value = try NBDServerValue.parse(netroot, parameter: "netroot")
            out.source = "netroot="
        } else if root == "dhcp" || netroot == "dhcp" {
            fromDHCP = true
        } else if let nbdroot {
            if nbdroot.isEmpty || nbdroot == "dhcp" {
                fromDHCP = true
            } else {
                value = try NBDServerValue.parse(nbdroot, parameter: "nbdroot", dracut: false)
            }
        } else if let netroot {
            throw BootConfigError(parameter: "netroot", value: netroot,
                                  problem: "is not an NBD root (nbd:SRV:PORT|NAME, nbd://HOST/NAME or dhcp)",
                                  example: "netroot=nbd:10.0.2.2:10809")
        }
        if fromDHCP { out.source = "the DHCP root-path" }
        guard value != nil || fromDHCP else {
            throw BootConfigError(parameter: "nbdroot", value: nil,
                                  problem: "the kernel command line does not say which NBD server holds the root filesystem (nor does root=nbd:..., root=nbd://... or root=dhcp)",
                                  example: "nbdroot=10.0.2.2:10809/root")
        }
        if let v = value {
            out.server = v.server
            if let d = v.device { device = d }
            out.fsType = v.fsType
            out.flags = v.flags
        }
        if let nbddev {
            guard let d = NBDDevice(nbddev) else {
                throw BootConfigError(parameter: "nbddev", value: nbddev,
                                      problem: "not an NBD device name", example: "nbddev=/dev/nbd0")
            }
            device = d
        }
        if let root {
            if root.hasPrefix("/dev/nbd") {
                guard let d = NBDDevice(root) else {
                    throw BootConfigError(parameter: "root", value: root,
                                          problem: "not an NBD device or partition name",
                                          example: "root=/dev/nbd0 or root=/dev/nbd0p1")
                }
                device = d
            } else if root.hasPrefix("LABEL=") || root.hasPrefix("UUID=") {
                let isLabel = root.hasPrefix("LABEL=")
                let text = String(decoding: Array(root.utf8).dropFirst(isLabel ? 6 : 5), as: UTF8.self)
                guard !text.isEmpty else {
                    throw BootConfigError(parameter: "root", value: root, problem: "the \(isLabel ? "label" : "UUID") is empty",
                                          example: "root=LABEL=nbdroot or root=UUID=0f0e0d0c-...")
                }
                out.selector = isLabel ? .label(text) : .uuid(text)
            }
        }
        out.device = device
        return out
    }

    /// Parses a server value (`nbdroot=` or a DHCP root-path); returns the
    /// device of the comma form's third field when there is one.
    public static func parseServer(_ value: String, parameter: String) throws(BootConfigError) -> (NBDServerSpec, NBDDevice?) {
        func fail(_ problem: Message) -> BootConfigError {
            BootConfigError(parameter: parameter, value: value, problem: problem,
                            example: "\(parameter)=10.0.2.2:10809/root or \(parameter)=10.0.2.2,root")
        }
        if value.utf8.contains(UInt8(ascii: ",")) && !value.hasPrefix("[") {
            let f = splitFields(value, ",")
            guard f.count == 2 || f.count == 3 else {
                throw fail("the comma form has \(f.count) fields; it takes HOST,NAME or HOST,NAME,nbdN")
            }
            guard !f[1].isEmpty else { throw fail("the export name (second field) is empty") }
            var device: NBDDevice? = nil
            if f.count == 3 {
                guard let d = NBDDevice(f[2]), d.partition == nil else {
                    throw fail("the third field \"\(f[2])\" is not an NBD device such as nbd0")
                }
                device = d
            }
            let fromDHCP = f[0].isEmpty || f[0] == "dhcp"
            return (NBDServerSpec(host: fromDHCP ? "" : f[0], exportName: f[1], hostFromDHCP: fromDHCP), device)
        }
        // [HOST][:PORT]/NAME, HOST:/PATH, [V6]:PORT/NAME
        let b = Array(value.utf8)
        var host: [UInt8]
        var rest: ArraySlice<UInt8>
        if b.first == UInt8(ascii: "[") {
            guard let close = b.firstIndex(of: UInt8(ascii: "]")) else {
                throw fail("the IPv6 address has no closing ]")
            }
            host = Array(b[1..<close])
            guard !host.isEmpty else { throw fail("the IPv6 address between [ ] is empty") }
            rest = b[(close + 1)...]
        } else {
            let end = b.firstIndex { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "/") } ?? b.endIndex
            host = Array(b[..<end])
            rest = b[end...]
        }
        var port = defaultNBDPort
        var name: ArraySlice<UInt8>
        if rest.first == UInt8(ascii: ":") {
            rest = rest.dropFirst()
            if rest.first == UInt8(ascii: "/") {
                name = rest  // HOST:/path keeps the leading slash (LTSP's convention)
            } else {
                let slash = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
                let portText = String(decoding: rest[..<slash], as: UTF8.self)
                guard let p = parseDecimal(portText, max: 65535), p > 0 else {
                    throw fail("the port \"\(portText)\" is not a number from 1 to 65535")
                }
                port = UInt16(p)
                guard slash < rest.endIndex else { throw fail("there is no /NAME after the port") }
                name = rest[(slash + 1)...]
            }
        } else if rest.first == UInt8(ascii: "/") {
            name = rest.dropFirst()
        } else {
            throw fail("there is no export name: write HOST/NAME, HOST:PORT/NAME or HOST,NAME")
        }
        guard !name.isEmpty else { throw fail("the export name after / is empty") }
        let hostText = String(decoding: host, as: UTF8.self)
        let fromDHCP = hostText.isEmpty || hostText == "dhcp"
        return (NBDServerSpec(host: fromDHCP ? "" : hostText, port: port,
                              exportName: String(decoding: name, as: UTF8.self), hostFromDHCP: fromDHCP), nil)
    }
}

/// Why the NBD server could not be worked out from DHCP.
public struct ServerResolutionError: Error, Equatable, Sendable {
    public var what: String
    public var hint: String

    public init(what: Message, hint: Message) {
        self.what = what.text
        self.hint = hint.text
    }
}

extension NBDRoot {
    /// The server to connect to, applying Debian's DHCP rules: an empty or
    /// `dhcp` host means the boot server (`rootServer`: DHCP siaddr or server
    /// id, or ip='s server field); no server at all (nbdroot=dhcp, root=dhcp)
    /// means the whole value comes from DHCP option 17 (`rootPath`), in any
    /// accepted form (Debian's, dracut's nbd:, an NBD URI). The result
    /// carries dracut's FSTYPE/FLAGS when the root-path had them.
    public func resolveServer(rootServer: IPAddress?, rootPath: String) throws(ServerResolutionError) -> NBDServerValue {
        var value: NBDServerValue
        if let s = server {
            value = NBDServerValue(server: s, fsType: fsType, flags: flags)
        } else {
            guard !rootPath.isEmpty else {
                throw ServerResolutionError(
                    what: "the root is to come from the DHCP root-path (option 17; nbdroot=dhcp, root=dhcp or an empty nbdroot=), but the DHCP server sent none",
                    hint: "set option 17 on the DHCP server, or give the server on the command line: nbdroot=10.0.2.2:10809/root")
            }
            do { value = try NBDServerValue.parse(rootPath, parameter: "root-path") } catch {
                throw ServerResolutionError(what: "the DHCP root-path cannot be used: \(error.description)",
                                            hint: "fix option 17 on the DHCP server")
            }
        }
        guard value.server.hostFromDHCP else { return value }
        guard let s = rootServer, s != .v4(.any), s != .v6(.any) else {
            throw ServerResolutionError(
                what: "the NBD server's address is left to DHCP, but no boot server is known (no DHCP siaddr or server id, no server field in ip=)",
                hint: "write the server in nbdroot=, e.g. nbdroot=10.0.2.2:10809/\(value.server.exportName)")
        }
        value.server = value.server.with(server: s.text)
        return value
    }
}
