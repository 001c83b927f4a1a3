// `nbdboot`: the host tool. Each subcommand lives in its own file and calls
// into a library (NBDServer, Initramfs); this file only lists them.
import ArgumentParser

@main
struct Nbdboot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nbdboot",
        abstract: "Boot diskless Linux stations from root images over NBD.",
        discussion: """
            Serve root images with `nbdboot serve`; build the stations' initramfs \
            (static init + static nbd-client + kernel modules) with `nbdboot initramfs build`.
            """,
        subcommands: [ServeCommand.self, InitramfsCommand.self]
    )
}
