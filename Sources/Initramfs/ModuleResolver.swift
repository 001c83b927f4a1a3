// Kernel module resolution at build time, as `modprobe --show-depends` does it
// (kmod's libkmod-module.c, kmod_module_get_probe_list), but over an index
// parsed from text so it can be tested without a kernel tree:
//
//   modules.dep      "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko ..."
//                    depmod lists a module's dependencies so that loading them
//                    from LAST to first loads every dependency before its user.
//   modules.softdep  "softdep ext4 pre: crypto-crc32c"   (modules to load before/after)
//   modules.alias    "alias crypto-crc32c crc32c_generic" (patterns are fnmatch globs)
//   modules.builtin  "kernel/lib/crc32.ko" (compiled in: nothing to load)
//
// Module names treat "-" and "_" alike (crc32c-intel.ko is module crc32c_intel).

/// The parsed module tables of one kernel release.
public struct ModuleIndex: Sendable {
    /// Module name -> its file (relative to lib/modules/VER) and its dependencies' files, as in modules.dep.
    public var dependencies: [String: (path: String, deps: [String])] = [:]
    /// Module name -> soft dependencies (names or aliases).
    public var softdeps: [String: (pre: [String], post: [String])] = [:]
    /// (normalized pattern, module name) in file order.
    public var aliases: [(pattern: String, module: String)] = []
    /// Names of built-in modules.
    public var builtin: Set<String> = []
    /// (normalized alias, built-in module name), from modules.builtin.modinfo.
    public var builtinAliases: [(pattern: String, module: String)] = []

    public init() {}

    /// The module name of a path or name: basename, without ".ko[.xz|.zst|.gz]", "-" as "_".
    public static func moduleName(_ pathOrName: String) -> String {
        var base = pathOrName.split(separator: "/").last.map(String.init) ?? pathOrName
        for suffix in [".ko.xz", ".ko.zst", ".ko.gz", ".ko"] where base.hasSuffix(suffix) {
            base.removeLast(suffix.count)
            break
        }
        return String(base.map { $0 == "-" ? "_" : $0 })
    }

    /// kmod's alias_normalize: "-" becomes "_" except inside [...] sets.
    public static func normalizeAlias(_ alias: String) -> String {
        var out = ""
        var inBrackets = false
        for c in alias {
            if c == "[" { inBrackets = true } else if c == "]" { inBrackets = false }
            out.append(c == "-" && !inBrackets ? "_" : c)
        }
        return out
    }

    /// Parses modules.dep.
    public mutating func parseDep(_ text: String) {
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let path = String(line[..<colon]).trimmingSpaces()
            guard !path.isEmpty, !path.hasPrefix("#") else { continue }
            let deps = line[line.index(after: colon)...].split(separator: " ").map(String.init)
            dependencies[ModuleIndex.moduleName(path)] = (path, deps)
        }
    }

    /// Parses modules.softdep (and the `softdep` lines of modprobe.d files).
    public mutating func parseSoftdep(_ text: String) {
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count >= 2, words[0] == "softdep" else { continue }
            let module = ModuleIndex.moduleName(words[1])
            var entry = softdeps[module] ?? ([], [])
            var post = false
            for w in words.dropFirst(2) {
                if w == "pre:" { post = false } else if w == "post:" { post = true }
                else if post { entry.post.append(w) } else { entry.pre.append(w) }
            }
            softdeps[module] = entry
        }
    }

    /// Parses modules.alias ("alias PATTERN MODULE").
    public mutating func parseAlias(_ text: String) {
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count == 3, words[0] == "alias" else { continue }
            aliases.append((ModuleIndex.normalizeAlias(String(words[1])), ModuleIndex.moduleName(String(words[2]))))
        }
    }

    /// Parses modules.builtin (one path per line).
    public mutating func parseBuiltin(_ text: String) {
        for line in text.split(separator: "\n") where !line.isEmpty {
            builtin.insert(ModuleIndex.moduleName(String(line)))
        }
    }

    /// Parses modules.builtin.modinfo: NUL-separated "module.key=value" strings; keeps the aliases.
    public mutating func parseBuiltinModinfo(_ bytes: [UInt8]) {
        for record in bytes.split(separator: 0) {
            guard let s = String(validating: record, as: UTF8.self),
                  let dot = s.firstIndex(of: "."), s[s.index(after: dot)...].hasPrefix("alias=") else { continue }
            let module = ModuleIndex.moduleName(String(s[..<dot]))
            let alias = s[s.index(dot, offsetBy: 7)...]
            builtin.insert(module)
            builtinAliases.append((ModuleIndex.normalizeAlias(String(alias)), module))
        }
    }
}

/// A module to put in the image and load, in load order.
public struct ResolvedModule: Equatable, Sendable {
    public var name: String
    /// Its file relative to lib/modules/VER, as in modules.dep (may end in .ko.xz etc.).
    public var path: String
    /// Parameters for finit_module ("max_part=15"), or empty.
    public var options: String
}

/// The result of a resolution.
public struct Resolution: Equatable, Sendable {
    /// Modules in load order: every dependency (hard, or soft "pre") before its user.
    public var modules: [ResolvedModule] = []
    /// Requested names satisfied by built-in modules.
    public var builtin: [String] = []
    /// Soft dependencies that could not be found (modprobe ignores them too).
    public var warnings: [String] = []
}

public enum ModuleError: Error, Equatable, CustomStringConvertible {
    case notFound(String, requiredBy: [String], release: String)
    case missingDependency(module: String, dependency: String, release: String)
    case cycle([String])

    public var description: String {
        switch self {
        case let .notFound(name, chain, rel):
            let via = chain.isEmpty ? "" : " (needed by \(chain.joined(separator: " <- ")))"
            return "module \(name)\(via) not found for kernel \(rel): not in modules.dep, modules.builtin or modules.alias; check the name (modinfo \(name)) and --module-root"
        case let .missingDependency(m, d, rel):
            return "module \(m) depends on \(d), which modules.dep of kernel \(rel) does not list; rerun depmod"
        case let .cycle(chain):
            return "modules depend on each other in a cycle: \(chain.joined(separator: " -> "))"
        }
    }
}

/// Resolves requested modules to a load order over a `ModuleIndex`.
public struct ModuleResolver {
    public let index: ModuleIndex
    /// Kernel release, for messages.
    public let release: String
    /// Module name -> parameters (like modprobe.d's "options nbd max_part=15").
    public let options: [String: String]

    public init(index: ModuleIndex, release: String, options: [String: String] = [:]) {
        self.index = index; self.release = release; self.options = options
    }

    enum Lookup: Equatable { case modules([String]), builtin, notFound }

    /// What a name or alias stands for: a module, built-in, or the modules of matching aliases.
    /// When an alias matches several modules (crypto-crc32c: crc32c_intel and crc32c_generic), all
    /// are loaded, generic implementations first: they load on any CPU, where crc32c_intel needs SSE4.2.
    func lookup(_ raw: String) -> Lookup {
        let name = ModuleIndex.moduleName(raw)
        if index.dependencies[name] != nil { return .modules([name]) }
        if index.builtin.contains(name) { return .builtin }
        let alias = ModuleIndex.normalizeAlias(raw)
        var matches: [String] = []
        for (pattern, module) in index.aliases where Glob.match(pattern, alias) && !matches.contains(module) {
            matches.append(module)
        }
        let loadable = matches.filter { index.dependencies[$0] != nil }
        if !loadable.isEmpty {
            let generic = loadable.filter { $0.hasSuffix("_generic") }
            return .modules(generic + loadable.filter { !$0.hasSuffix("_generic") })
        }
        if matches.contains(where: { index.builtin.contains($0) }) { return .builtin }
        if index.builtinAliases.contains(where: { Glob.match($0.pattern, alias) }) { return .builtin }
        return .notFound
    }

    /// Resolves `requests` (names or aliases) in order.
    public func resolve(_ requests: [String]) throws(ModuleError) -> Resolution {
        var state = State()
        for r in requests {
            switch lookup(r) {
            case .builtin: state.result.builtin.append(ModuleIndex.moduleName(r))
            case .notFound: throw .notFound(r, requiredBy: [], release: release)
            case let .modules(names): for n in names { try load(n, &state) }
            }
        }
        return state.result
    }

    struct State {
        var result = Resolution()
        var done: Set<String> = []
        var stack: [String] = []
    }

    func load(_ name: String, _ s: inout State) throws(ModuleError) {
        if s.done.contains(name) { return }
        if s.stack.contains(name) { throw .cycle(s.stack + [name]) }
        guard let entry = index.dependencies[name] else {
            throw .notFound(name, requiredBy: s.stack.reversed(), release: release)
        }
        s.stack.append(name)
        let softdep = index.softdeps[name] ?? ([], [])
        try loadSoft(softdep.pre, of: name, &s)
        for depPath in entry.deps.reversed() {
            let dep = ModuleIndex.moduleName(depPath)
            guard index.dependencies[dep] != nil else {
                throw .missingDependency(module: name, dependency: depPath, release: release)
            }
            try load(dep, &s)
        }
        s.stack.removeLast()
        s.done.insert(name)
        s.result.modules.append(ResolvedModule(name: name, path: entry.path, options: options[name] ?? ""))
        try loadSoft(softdep.post, of: name, &s)
    }

    /// Loads soft dependencies; unknown ones become warnings, and ones already being
    /// loaded further up the stack are skipped (a soft dependency is not a cycle).
    func loadSoft(_ names: [String], of user: String, _ s: inout State) throws(ModuleError) {
        for n in names {
            switch lookup(n) {
            case .builtin: continue
            case .notFound: s.result.warnings.append("softdep \(n) of \(user) not found; skipped")
            case let .modules(mods):
                for m in mods where !s.stack.contains(m) { try load(m, &s) }
            }
        }
    }
}

/// fnmatch(3) without flags, for module alias patterns: `*`, `?`, `[set]`, `[!set]`, ranges.
enum Glob {
    static func match(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        if !p.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[") }) {
            return p == t
        }
        return match(p, 0, t, 0)
    }

    private static func match(_ p: [UInt8], _ pi0: Int, _ t: [UInt8], _ ti0: Int) -> Bool {
        var pi = pi0, ti = ti0
        var starP = -1, starT = -1
        while ti < t.count {
            if pi < p.count {
                let c = p[pi]
                if c == UInt8(ascii: "*") { starP = pi; starT = ti; pi += 1; continue }
                if c == UInt8(ascii: "?") { pi += 1; ti += 1; continue }
                if c == UInt8(ascii: "["), let (ok, next) = bracket(p, pi, t[ti]) {
                    if ok { pi = next; ti += 1; continue }
                } else if c == t[ti] { pi += 1; ti += 1; continue }
            }
            if starP < 0 { return false }
            starT += 1; ti = starT; pi = starP + 1
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// Matches `c` against the set starting at `p[i] == "["`; nil if the set is unterminated.
    private static func bracket(_ p: [UInt8], _ i: Int, _ c: UInt8) -> (Bool, Int)? {
        var j = i + 1
        var negate = false
        if j < p.count && (p[j] == UInt8(ascii: "!") || p[j] == UInt8(ascii: "^")) { negate = true; j += 1 }
        var matched = false
        var first = true
        while j < p.count && (first || p[j] != UInt8(ascii: "]")) {
            first = false
            if j + 2 < p.count && p[j + 1] == UInt8(ascii: "-") && p[j + 2] != UInt8(ascii: "]") {
                if p[j] <= c && c <= p[j + 2] { matched = true }
                j += 3
            } else {
                if p[j] == c { matched = true }
                j += 1
            }
        }
        guard j < p.count else { return nil }
        return (matched != negate, j + 1)
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" || s.last == "\r" { s.removeLast() }
        return String(s)
    }
}
