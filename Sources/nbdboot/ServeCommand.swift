import ArgumentParser

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve exports over NBD.")
    func run() throws { throw ValidationError("serve: not built yet") }
}
