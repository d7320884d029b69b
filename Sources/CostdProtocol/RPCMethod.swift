/// Every method of the protocol, by its wire name: the one list from which the dispatcher, the
/// metrics' `method` label and the checks of the Python client, the shell functions and
/// docs/PROTOCOL.md are made (`MethodListTests` fails when one of them lacks a method).
///
/// Wire names are a contract with programs outside this repository: add cases, never rename.
public enum RPCMethod: String, CaseIterable, Sendable {
    case ping
    case route
    case cacheGet
    case cacheSet
    case cacheDelete
    case cacheFlush
    case cacheRelease
    case record
    case report
    case estimate
    case tokens
    case reserve
    case releaseReservation
    case subscribe

    /// The name in snake_case, as the Python client's methods and the shell functions
    /// (`costd_<name>`) spell it: `releaseReservation` → `release_reservation`.
    public var snakeCaseName: String {
        var name = ""
        for character in rawValue {
            if character.isUppercase {
                name += "_" + character.lowercased()
            } else {
                name.append(character)
            }
        }
        return name
    }
}
