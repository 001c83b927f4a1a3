// `nbdboot`: the host tool. Each subcommand lives in its own file and calls
// into a library (NBDServer, Initramfs); this file only lists them.
import ArgumentParser
import Glibc

@main
struct Nbdboot: ParsableCommand {
    /// Like ParsableCommand's main, but a command line that does not parse
    /// exits 2, as nbd-server, nbd-client and most Unix tools do (the
    /// argument parser's default is 64).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                let text = fullMessage(for: error) + "\n"
                _ = text.withCString { write(2, $0, strlen($0)) }
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "nbdboot",
        abstract: "Boot diskless Linux stations from root images over NBD.",
        discussion: """
            Serve root images with `nbdboot serve`; build the stations' initramfs \
            (static init + static nbd-client + kernel modules) with `nbdboot initramfs build`.
            """,
        subcommands: [ServeCommand.self, InitramfsCommand.self, OverlayCommand.self]
    )
}
