import Testing

@testable import CostdCore

@Suite struct AccessTests {
    let access = AccessSettings(adminUsers: ["ann"], adminGroups: ["ops"])

    @Test func rootTheDaemonsUserNamedUsersAndGroupMembersAreAdmins() {
        #expect(access.isAdmin(uid: 0, userName: "root", daemonUID: 990) { [] })
        #expect(access.isAdmin(uid: 990, userName: "costd", daemonUID: 990) { [] })
        #expect(access.isAdmin(uid: 1000, userName: "ann", daemonUID: 990) { [] })
        #expect(access.isAdmin(uid: 1001, userName: "bob", daemonUID: 990) { ["bob", "ops"] })
        #expect(!access.isAdmin(uid: 1001, userName: "bob", daemonUID: 990) { ["bob", "users"] })
        #expect(!AccessSettings().isAdmin(uid: 1001, userName: "bob", daemonUID: 990) { ["ops"] })
    }

    @Test func groupsAreLookedUpOnlyWhenTheyDecide() {
        var lookedUp = 0
        _ = access.isAdmin(uid: 0, userName: "root", daemonUID: 990) {
            lookedUp += 1
            return []
        }
        _ = AccessSettings(adminUsers: ["ann"]).isAdmin(uid: 1001, userName: "bob", daemonUID: 990) {
            lookedUp += 1
            return []
        }
        #expect(lookedUp == 0)
    }

    @Test func meIsTheCallersOwnNamespace() throws {
        let mine = try CacheNamespace.resolve("@me", defaultNamespace: "", callerUID: 1000)
        #expect(mine == CacheNamespace(name: "@uid:1000", owner: 1000))
        let byDefault = try CacheNamespace.resolve(nil, defaultNamespace: "@me", callerUID: 1001)
        #expect(byDefault == CacheNamespace(name: "@uid:1001", owner: 1001))
        let named = try CacheNamespace.resolve("@uid:1000", defaultNamespace: "", callerUID: 1001)
        #expect(named.owner == 1000)
        let shared = try CacheNamespace.resolve(nil, defaultNamespace: "team", callerUID: 1000)
        #expect(shared == CacheNamespace(name: "team", owner: nil))
    }

    @Test(arguments: ["@all", "@uid:", "@uid:01000", "@uid:x", "@"])
    func otherNamesStartingWithAtAreReserved(_ name: String) {
        #expect(throws: CacheNamespace.Problem.reserved(name)) {
            try CacheNamespace.resolve(name, defaultNamespace: "", callerUID: 1000)
        }
    }

    @Test func meNeedsACallerTheKernelNamed() {
        #expect(throws: CacheNamespace.Problem.noCallerForPrivate) {
            try CacheNamespace.resolve("@me", defaultNamespace: "", callerUID: nil)
        }
    }

    @Test func theConfigNamesAdminsAndThePrivateDefault() throws {
        let configuration = try Configuration(
            toml: """
                [access]
                admin_users = ["ann", "bob"]
                admin_groups = ["ops"]
                [cache]
                default_namespace = "@me"
                """)
        #expect(configuration.access == AccessSettings(adminUsers: ["ann", "bob"], adminGroups: ["ops"]))
        #expect(configuration.cache.defaultNamespace == "@me")
        #expect(throws: ConfigError.self) { try Configuration(toml: "[cache]\ndefault_namespace = \"@everyone\"\n") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "[access]\nadmin_users = \"ann\"\n") }
        #expect(throws: ConfigError.self) { try Configuration(toml: "[access]\nadmins = [\"ann\"]\n") }
    }
}
