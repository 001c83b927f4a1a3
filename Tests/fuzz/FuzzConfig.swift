// Target 2: configuration text. The input is at once the config file, an
// included *.conf and an authfile; parsing must succeed or throw
// ConfigError, and a parsed IP address must print and parse back to itself.
enum FuzzConfig {
    static func run(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        let source = ConfigSource(
            read: { path in path == "/missing" ? .failure(ConfigError("No such file or directory")) : .success(text) },
            listConf: { _ in .success(["a.conf", "b.conf"]) })
        _ = try? ConfigFile.load("/etc/nbd-server/config", from: source)
        _ = try? AllowList.parse(text, source: "fuzz.allow")
        for line in text.split(separator: "\n").prefix(16) {
            let word = String(line)
            if let a = IPAddress(word) {
                fuzzCheck(a.bytes.count == 16, "an address of \(a.bytes.count) bytes")
                fuzzCheck(IPAddress(a.description) == a, "'\(word)' prints as '\(a.description)', which parses differently")
            }
            if let r = AddressRange(word) {
                fuzzCheck(r.contains(r.address), "range \(r) does not contain its own address")
            }
            _ = try? ConfigValue(text: word, key: "k", location: "f:1").size()
        }
    }
}
