// `nbdboot overlay list|reset|commit`: argv -> NBDServer.OverlayStore.
// The overlay directory comes from --overlays DIR, or from the same --export
// text the server was started with (NAME=PATH,cow[,overlays=DIR] or
// NAME=DIR,swap,size=N), so an admin can paste it.
import ArgumentParser
import Glibc
import NBDServer

struct OverlayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overlay",
        abstract: "Manage the stations' copy-on-write overlays and swap files.",
        discussion: """
            A cow export (--export root=/srv/root.img,cow) gives each station an overlay in \
            /srv/root.img.overlays/ (or overlays=DIR): STATION.data and STATION.map; a swap export \
            (--export swap=/srv/swap,swap,size=512M) a file /srv/swap/STATION.swap. A station is \
            named by the client (export name root@STATION) or by its IP address. The on-disk format \
            is described in docs/overlays.md. reset and commit refuse while a server has the \
            station connected.
            """,
        subcommands: [List.self, Reset.self, Commit.self])

    /// --overlays DIR | --export SPEC, shared by the subcommands.
    struct Location: ParsableArguments {
        @Option(help: ArgumentHelp("The overlay (or swap) directory.", valueName: "dir"))
        var overlays: String?
        @Option(help: ArgumentHelp("The export as given to nbdboot serve: NAME=PATH,cow[,overlays=DIR] or NAME=DIR,swap,size=N.", valueName: "spec"))
        var export: String?

        /// The directory and, for a cow export, its base image.
        func resolve() throws -> (dir: String, base: String?) {
            switch (overlays, export) {
            case (let dir?, nil):
                return (dir, nil)
            case (nil, let text?):
                let spec: ExportSpec
                do { spec = try ExportSpec.parse(text) } catch { throw ValidationError(error.description) }
                switch spec.perStation {
                case .cow(let dir)?: return (dir, spec.path)
                case .swap?: return (spec.path, nil)
                case nil: throw ValidationError("--export '\(text)': not a per-station export; add ,cow (or ,swap,size=N) as when serving it")
                }
            case (nil, nil):
                throw ValidationError("say where the overlays are: --overlays DIR or --export NAME=PATH,cow")
            default:
                throw ValidationError("give either --overlays DIR or --export SPEC, not both")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the stations with an overlay or a swap file.",
            discussion: """
                One line per station: name, kind (cow or swap), data held (cow: blocks in the overlay \
                as last flushed; swap: the file's size), space used on disk, last modification (UTC), \
                in-use state (a server holds its lock) and, for cow, the base image.
                """)
        @OptionGroup var location: Location

        func run() throws {
            let (dir, _) = try location.resolve()
            let stations: [StationFiles]
            do { stations = try OverlayStore.list(dir: dir) } catch { throw fail("overlay list: \(error.description)") }
            if stations.isEmpty {
                print("no overlays or swap files in \(dir)")
                return
            }
            let rows = [["STATION", "KIND", "DATA", "ON DISK", "MODIFIED (UTC)", "STATE", "BASE"]] + stations.map { s in
                [s.station, s.kind.rawValue, human(s.logicalBytes), human(s.diskBytes), utc(s.modified),
                 s.problem != nil ? "damaged" : s.inUse ? "in-use" : "idle", s.problem ?? s.basePath]
            }
            let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for row in rows {
                let padded = row.enumerated().map { i, v in i == row.count - 1 ? v : v + String(repeating: " ", count: widths[i] - v.count) }
                print(padded.joined(separator: "  ").trimmingSuffixSpaces())
            }
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove stations' overlays and swap files (the station starts over from the base).",
            discussion: "Refuses, and removes nothing of that station, while a server has the station connected.")
        @OptionGroup var location: Location
        @Argument(help: "Station names.") var stations: [String]

        func validate() throws {
            if stations.isEmpty { throw ValidationError("name at least one station; nbdboot overlay list shows them") }
        }

        func run() throws {
            let (dir, _) = try location.resolve()
            var failed = false
            for station in stations {
                do {
                    let removed = try OverlayStore.reset(dir: dir, station: station)
                    print("\(station): removed \(removed.joined(separator: " "))")
                } catch {
                    _ = fail("overlay reset: \(error.description)")
                    failed = true
                }
            }
            if failed { throw ExitCode.failure }
        }
    }

    struct Commit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a station's view (base + overlay) into a new image file.",
            discussion: """
                The base and the overlay are only read; OUTPUT must not exist. Blocks of zeroes stay \
                holes. Serve the result as a new base (overlays made over the old base do not fit it).
                """)
        @OptionGroup var location: Location
        @Argument(help: "The station.") var station: String
        @Option(help: ArgumentHelp("The new image file.", valueName: "newbase")) var output: String

        func run() throws {
            let (dir, base) = try location.resolve()
            do {
                let r = try OverlayStore.commit(dir: dir, station: station, basePath: base, output: output)
                print("\(output): \(r.size) bytes, base \(r.basePath) with \(r.blocksFromOverlay) block(s) from the overlay of station '\(station)'")
            } catch {
                throw fail("overlay commit: \(error.description)")
            }
        }
    }
}

/// "1.5 MiB", "512 B".
private func human(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    if unit == 0 { return "\(bytes) B" }
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) \(units[unit])"
}

/// "2026-11-21 06:30:00" (gmtime_r + strftime).
private func utc(_ seconds: Int64) -> String {
    if seconds == 0 { return "-" }
    var t = time_t(seconds)
    var parts = tm()
    gmtime_r(&t, &parts)
    var buffer = [CChar](repeating: 0, count: 32)
    let n = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S", &parts)
    return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private extension String {
    func trimmingSuffixSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
