import ArgumentParser

struct InitramfsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "initramfs", abstract: "Build and inspect initramfs images.")
    func run() throws { throw ValidationError("initramfs: not built yet") }
}
