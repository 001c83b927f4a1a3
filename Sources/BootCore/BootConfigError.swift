// The one error type of the command-line parsers: it names the parameter,
// the value as given, what is wrong, and a value that would work.

/// A kernel command-line parameter that cannot be used.
public struct BootConfigError: Error, Equatable, Sendable {
    /// The parameter, e.g. "nbdroot".
    public var parameter: String
    /// The value as given, or nil when the parameter is missing.
    public var value: String?
    /// What is wrong, e.g. "the port \"x\" is not a number from 1 to 65535".
    public var problem: String
    /// A correct example, e.g. "nbdroot=10.0.2.2:10809/root".
    public var example: String

    public init(parameter: String, value: String?, problem: Message, example: Message) {
        self.parameter = parameter
        self.value = value
        self.problem = problem.text
        self.example = example.text
    }

    /// One line for the console, e.g.
    /// `nbdroot=10.0.2.2:x/root: the port "x" is not a number from 1 to 65535 (example: nbdroot=10.0.2.2:10809/root)`.
    public var description: String {
        let what = value.map { "\(parameter)=\($0)" } ?? "\(parameter)= is missing"
        return "\(what): \(problem) (example: \(example))"
    }
}
